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

And the **parsed event** the domain reads, :class:`Event`: the envelope as plain attributes
(``event_id``, ``event_type``, ``date`` (the main date, parsed), ``la``, ``team``,
``correction_of``) and, per event type, one attribute per kept field of its row (``ev.plan_ref``
on a ``cp_plan.started``, ``ev.in_touch`` on a ``care_leaver.status``; ``None`` when the event
does not carry it). ``Event.of(raw)`` makes the class of ``raw``'s type (:data:`TYPED_EVENTS`,
generated from the table), so reading a field the type does not keep, or a misspelt one, raises
``AttributeError`` instead of giving ``None``. The raw dict stays as ``ev.f``: it is the stored
(compacted) form, written back unchanged.

The wire models (``schemas/events.py``) read this table; the domain never imports ``schemas``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Mapping

from casewatch.domain.calendar import as_date

__all__ = ["EventType", "EVENT_TABLE", "VOID", "MAIN_DATE_FIELD", "EVENT_PRECEDENCE", "ENVELOPE_KEEP",
           "OWN_KEEP", "WORKFORCE_KEY_PREFIX", "partition_key", "event_partition_key", "Event",
           "TYPED_EVENTS", "kept_field", "types_keeping"]

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


# -- the parsed event ----------------------------------------------------------------------------

UNKNOWN_PRECEDENCE = len(EVENT_PRECEDENCE)  # an event type outside the table sorts after the known


class Event:
    """One event as the domain reads it (see the module docstring). Made with :meth:`Event.of`:
    the class of a known type is its row's subclass in :data:`TYPED_EVENTS`; an unknown type gets
    this class, with no fields."""

    __slots__ = ("event_id", "event_type", "date", "la", "team", "correction_of", "f", "root_id", "_sort")

    ROW: ClassVar[EventType | None] = None
    FIELDS: ClassVar[tuple[str, ...]] = ()  # the row's kept fields: this class's own attributes

    # __init__(self, raw) is generated per class from the row (_init_source below). There is no
    # __new__ choosing the class: a Python-level __new__ would cost every event a second call.

    @staticmethod
    def of(raw: Mapping[str, Any]) -> "Event":
        """The event ``raw`` (a wire or stored dict), as the class of its type."""
        return TYPED_EVENTS.get(raw.get("event_type"), Event)(raw)

    @property
    def recorded_at(self) -> Any:
        """When the event was recorded (kept on amendments only: it decides which one wins)."""
        return self.f.get("recorded_at")

    def __repr__(self) -> str:  # no field values: they may identify a child
        return f"Event({self.event_type}, {self.date})"


# The constructor of every class, written out per row: the envelope, the main date parsed once (the
# row's main date field, else effective_date, else the date part of occurred_at), then one plain
# attribute per kept field. Generated (as dataclasses generate theirs) so the per-event work stays
# a few dict reads and slot writes: the engine builds one per event and walks them per event.
_INIT = """\
def __init__(self, raw):
    get = raw.get
    self.event_id = event_id = str(raw["event_id"])
    self.event_type = {event_type}
    self.f = raw
    value = {main_date}
    if value is None:
        value = get("effective_date")
        if value is None:
            value = get("occurred_at")
            if value is not None:
                value = str(value)[:10]
    if value is None:
        day = None
    elif value.__class__ is str:
        day = fromisoformat(value[:10])
    else:
        day = as_date(value)
    self.date = day
    self.la = get("la_code") or ""
    self.team = get("team") or "unassigned"
    self.correction_of = get("correction_of")
    self.root_id = event_id
    self._sort = (day.toordinal() if day is not None else 0, {precedence}, event_id)
"""


# Event(raw) itself is for a type outside the table only: a known type read through it would lose
# its fields, so that is refused.
_UNTYPED = """\
    if self.event_type in TYPED_EVENTS:
        raise TypeError(f"{self.event_type} events are made with Event.of(raw), which gives their fields")
"""


def _init_source(row: EventType | None) -> str:
    if row is None:  # an event type outside the table: no main date, no fields, sorts last on its day
        return _INIT.format(event_type='get("event_type", "")', main_date="None",
                            precedence=UNKNOWN_PRECEDENCE) + _UNTYPED
    main = f"get({row.main_date!r})" if row.main_date else "None"
    source = _INIT.format(event_type=repr(row.name), main_date=main, precedence=EVENT_PRECEDENCE[row.name])
    return source + "".join(f"    self.{name} = get({name!r})\n" for name in row.keeps)


def _with_init(cls: type, row: EventType | None) -> type:
    namespace: dict[str, Any] = {"as_date": as_date, "fromisoformat": date.fromisoformat}
    exec(_init_source(row), namespace)  # noqa: S102 (source built above from the table's names)
    namespace["TYPED_EVENTS"] = TYPED_EVENTS
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__name__}.__init__"
    cls.__init__ = init
    return cls


def _class_name(event_type: str) -> str:
    """``cp_plan.started`` -> ``CpPlanStartedEvent`` (the wire model is ``CpPlanStarted``)."""
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_")) + "Event"


def _event_class(row: EventType) -> type[Event]:
    taken = [name for name in row.keeps if not name.isidentifier() or hasattr(Event, name)]
    if taken:  # a kept field would shadow the envelope (or is no attribute name): rename it in the table
        raise ValueError(f"{row.name}: kept fields {taken} clash with the Event envelope or are no names")
    cls = type(_class_name(row.name), (Event,), {"__slots__": row.keeps, "ROW": row, "FIELDS": row.keeps,
                                                  "__module__": __name__, "__doc__": f"A ``{row.name}`` event."})
    return _with_init(cls, row)


TYPED_EVENTS: dict[str, type[Event]] = {}
_with_init(Event, None)
TYPED_EVENTS.update((row.name, _event_class(row)) for row in _ROWS)


def kept_field(event_type: str, name: str) -> str:
    """``name``, checked to be a kept field of ``event_type`` (so a table of field names read by
    name, e.g. ``{"icpc.held": "child_participation"}``, fails at import when it names a field the
    type does not keep)."""
    if name not in EVENT_TABLE[event_type].keeps:
        raise ValueError(f"{event_type} keeps no field {name!r} (the event table, casewatch.domain.events)")
    return name


def types_keeping(name: str) -> tuple[type[Event], ...]:
    """The event classes that keep ``name`` (for ``isinstance``); at least one, else ValueError."""
    classes = tuple(cls for cls in TYPED_EVENTS.values() if name in cls.FIELDS)
    if not classes:
        raise ValueError(f"no event type keeps a field {name!r} (the event table, casewatch.domain.events)")
    return classes
