"""What the domain knows about each event type, in one table (docs/events.md).

Per event type: its **main date field** (the date of the event for every figure; the wire model's
``effective_date`` defaults to it), its **same-day precedence** (the order things happen in a case
on one day: a referral before its outcome, an S47 before its ICPC, a plan start before its review,
``case.unallocated`` before ``case.allocated`` so a same-day reallocation ends allocated), the
**own fields the indicators read** (what ``history.compact`` keeps besides the envelope and the
main date), and whether it is about a child at all (``workforce.snapshot`` is about a team).

And the **partition key**: the Kafka key every event is published under and the key the engine
groups a history by: the child's pseudonym, or ``wf:<la_code>:<team>`` for an event about no
child (a workforce snapshot, or the void of one).

The wire models (``schemas/events.py``) read this table; the domain never imports ``schemas``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["EventType", "EVENT_TABLE", "VOID", "MAIN_DATE_FIELD", "EVENT_PRECEDENCE", "ENVELOPE_KEEP",
           "OWN_KEEP", "WORKFORCE_KEY_PREFIX", "partition_key", "event_partition_key"]

VOID = "event.voided"
WORKFORCE_KEY_PREFIX = "wf:"


@dataclass(frozen=True)
class EventType:
    """One row of the table. ``precedence`` is the row's place in :data:`EVENT_TABLE`."""

    name: str
    main_date: str | None
    keeps: tuple[str, ...] = ()
    about_a_child: bool = True


# In same-day precedence order.
_ROWS: tuple[EventType, ...] = (
    EventType("contact.received", "contact_date", ("outcome", "early_help_active")),
    EventType("referral.received", "referral_date", ("source", "referral_nfa", "referral_ref", "episode_ref")),
    EventType("referral.outcome", "outcome_date", ("outcome", "referral_ref")),
    EventType("early_help.opened", "start_date", ("lead_agency",)),
    EventType("assessment.started", "start_date", ("assessment_ref", "referral_ref")),
    EventType("strategy_discussion.held", "date", ("decision",)),
    EventType("s47.started", "start_date", ("s47_ref",)),
    EventType("assessment.completed", "authorisation_date", ("assessment_ref", "factors")),
    EventType("s47.completed", "end_date", ("s47_ref", "icpc_not_required", "outcome")),
    EventType("icpc.held", "date", ("s47_ref", "resulted_in_cpp", "transfer_in", "child_participation")),
    EventType("cp_plan.started", "start_date", ("plan_ref", "initial_category", "previous_plans")),
    EventType("cp_plan.category_changed", "date", ("plan_ref", "latest_category")),
    EventType("cp_review.held", "date", ("plan_ref", "due_date", "child_participation")),
    EventType("cp_plan.ended", "end_date", ("plan_ref", "end_route")),
    EventType("lac.started", "decom", ("legal_status", "rne", "began_before_data", "birth_month")),
    EventType("lac.legal_status_changed", "date", ("rne", "legal_status")),
    EventType("placement.changed", "date", ("rne",)),
    EventType("statutory_visit.held", "date", ("due_date",)),
    EventType("lac_review.held", "date", ("due_date", "participation")),
    EventType("lac.ended", "dec", ("reason_ceased",)),
    EventType("court.application", "court_app_date", ("order_sought",)),
    EventType("court.final_order", "final_order_date", ("order_made",)),
    EventType("case.unallocated", "allocation_date", ("case_type",)),
    EventType("case.allocated", "allocation_date", ("case_type", "worker_ref")),
    EventType("care_leaver.status", "date", ("age_band", "in_touch", "activity", "accommodation")),
    EventType("early_help.closed", "end_date", ()),
    EventType("cin_episode.closed", "closure_date", ("reason", "episode_ref")),
    EventType("workforce.snapshot", "date", ("establishment_fte", "inpost_fte", "vacancy_fte", "agency_fte",
                                             "case_holding_fte", "leavers_fte"), about_a_child=False),
    EventType(VOID, None, ()),
)

EVENT_TABLE: dict[str, EventType] = {row.name: row for row in _ROWS}

# Views of the table, for the domain's hot paths.
MAIN_DATE_FIELD: dict[str, str] = {row.name: row.main_date for row in _ROWS if row.main_date}
EVENT_PRECEDENCE: dict[str, int] = {row.name: i for i, row in enumerate(_ROWS)}
OWN_KEEP: dict[str, tuple[str, ...]] = {row.name: row.keeps for row in _ROWS}
ENVELOPE_KEEP: tuple[str, ...] = ("event_id", "event_type", "la_code", "team", "correction_of")


def partition_key(child_ref: str | None, la_code: Any, team: Any) -> str:
    """The key of an event: its child, else ``wf:<la_code>:<team>`` (an event about no child)."""
    if child_ref is not None:
        return child_ref
    return f"{WORKFORCE_KEY_PREFIX}{la_code}:{team}"


def event_partition_key(event: Mapping[str, Any]) -> str:
    """:func:`partition_key` of an event given as a dict (wire or compacted form)."""
    return partition_key(event.get("child_ref"), event.get("la_code"), event.get("team"))
