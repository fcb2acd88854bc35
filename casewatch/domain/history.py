"""One key's effective event history: de-duplicated, corrected, ordered, checked.

A key is a child (``child_ref``) or a workforce team (``wf:<la>:<team>``). ``ChildHistory`` is
built from the key's events in any order and with any repeats, and always gives the same result:

* **Duplicates**: events with the same ``event_id`` count once.
* **Amendments**: an ordinary event with ``correction_of = X`` replaces X. An amendment of an
  amendment belongs to the same original. When an original has several amendments, the one with
  the latest ``recorded_at`` wins, then the greatest ``event_id``; any amendment beats the
  original, whatever the arrival order (an amendment that arrives before its original already
  stands for it).
* **Voids**: ``event.voided`` with ``correction_of = Y`` removes Y and every amendment made
  through Y. A void that names another void is ignored.
* **Order**: effective events sort by their date (the event's own main date field, else
  ``effective_date``), then by a fixed event-type precedence (the order things happen in a case on
  one day: a referral before its outcome, an S47 before its ICPC, a plan start before its review,
  ``case.unallocated`` before ``case.allocated`` so a same-day reallocation ends allocated), then
  ``event_id``. Main date fields and precedence are the event table's (``casewatch.domain.events``).
* **Cross-event rules**: an event that breaks one is reported in ``rejections`` as
  ``(event_id, reason)`` (reasons: ``casewatch.domain.rejections``) and counts nowhere (it stays stored, so a later correction can mend it):

  ``icpc_before_s47``     an ICPC dated before the start of the S47 it names (``s47_ref``)
  ``review_before_plan``  a CP review before the start of the plan it names (``plan_ref``), or a
                          LAC review dated before any period of care in the history began
  ``end_before_start``    an S47 completion, CP plan end or assessment completion dated before
                          the start event with the same reference; a LAC end before any period began

``compact(event)`` keeps only the fields the indicators read, so a key's stored state stays small
(≈ 100–150 bytes per event as JSON). ``ChildHistory`` accepts full or compacted events alike, with
dates as ``datetime.date`` or ISO strings; an event's date is parsed once, when its ``Event``
is made (``casewatch.domain.events``).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable, Mapping

from casewatch.domain.events import (ENVELOPE_KEEP, EVENT_PRECEDENCE, MAIN_DATE_FIELD, OWN_KEEP, TYPED_EVENTS,
                                     VOID, Event)
from casewatch.domain.rejections import END_BEFORE_START, ICPC_BEFORE_S47, REVIEW_BEFORE_PLAN

__all__ = ["ChildHistory", "Event", "compact", "MAIN_DATE_FIELD", "EVENT_PRECEDENCE"]

# The per-type knowledge (main date field, same-day precedence, kept fields) and the parsed Event
# with its typed fields are the domain's event table, casewatch.domain.events; these names stay
# importable from here.


def _json_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def compact(event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``event`` the indicators need, JSON-ready (dates as ISO strings).

    Dropped: ``child_ref`` (the key already is the child), ``worker_ref`` (except on
    ``case.allocated``, where O12 counts distinct workers; a pseudonym, never published),
    ``episode_ref`` (except on referrals, where it can name the referral), ``occurred_at``, ``source_system``,
    ``schema_version``, ``collection_year``, free text and fields no figure reads. ``recorded_at``
    is kept only on amendments (it decides which amendment wins). ``effective_date`` is kept only
    when the event has no main date field of its own."""
    event_type = event.get("event_type")
    out: dict[str, Any] = {}
    for name in ENVELOPE_KEEP:
        value = event.get(name)
        if value is not None:
            out[name] = value
    if event.get("correction_of") is not None and event.get("recorded_at") is not None:
        out["recorded_at"] = _json_value(event["recorded_at"])
    main = MAIN_DATE_FIELD.get(event_type)
    if main and event.get(main) is not None:
        out[main] = _json_value(event[main])
    elif event.get("effective_date") is not None:
        out["effective_date"] = _json_value(event["effective_date"])
    elif event.get("occurred_at") is not None:
        out["effective_date"] = str(_json_value(event["occurred_at"]))[:10]
    for name in OWN_KEEP.get(event_type, ()):
        value = event.get(name)
        if value is not None:
            out[name] = _json_value(value)
    return out


def _sort_key(ev: Event) -> tuple:
    return ev._sort


def _recorded_key(ev: Event) -> tuple[float, str]:
    raw = ev.recorded_at
    stamp = float("-inf")
    if raw is not None:
        try:
            when = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            stamp = when.timestamp()
        except (TypeError, ValueError):
            pass
    return stamp, ev.event_id


class ChildHistory:
    """The effective, ordered, checked events of one key. ``events`` excludes rejected events."""

    __slots__ = ("events", "rejections", "_by_type")

    def __init__(self, events: Iterable[Mapping[str, Any]]):
        by_id: dict[str, Event] = {}
        typed = TYPED_EVENTS  # (Event.of, inlined: one call less per event on the engine's path)
        for raw in events:
            if isinstance(raw, Event):  # already parsed (the engine keeps a key's events parsed)
                if raw.event_id not in by_id:
                    raw.root_id = raw.event_id
                    by_id[raw.event_id] = raw
                continue
            if raw.get("event_id") is None:
                continue
            eid = str(raw["event_id"])
            if eid not in by_id:
                by_id[eid] = typed.get(raw.get("event_type"), Event)(raw)

        if not any(ev.event_type == VOID or ev.correction_of is not None for ev in by_id.values()):
            # The usual case: no amendments and no voids, every event is effective.
            effective = sorted(by_id.values(), key=_sort_key)
            self._finish(effective)
            return

        voided: set[str] = set()
        ordinary: list[Event] = []
        for ev in by_id.values():
            if ev.event_type == VOID:
                target = ev.correction_of
                if target is not None and not (target in by_id and by_id[target].event_type == VOID):
                    voided.add(str(target))
            else:
                ordinary.append(ev)

        # Group each event with its original (the root of its correction chain).
        groups: dict[str, list[Event]] = {}
        for ev in ordinary:
            chain_hit_void = ev.event_id in voided
            node = ev
            root = ev.event_id
            seen = {root}
            while True:
                target = node.correction_of
                if target is None:
                    break
                target = str(target)
                if target in voided:
                    chain_hit_void = True
                root = target
                if target in seen:  # a cycle: stop
                    break
                seen.add(target)
                node = by_id.get(target)
                if node is None or node.event_type == VOID:
                    break
            if chain_hit_void:
                continue
            groups.setdefault(root, []).append(ev)

        effective: list[Event] = []
        for root, members in groups.items():
            if len(members) == 1:
                winner = members[0]
            else:
                amendments = [m for m in members if m.correction_of is not None]
                winner = max(amendments, key=_recorded_key) if amendments else max(members, key=lambda m: m.event_id)
            winner.root_id = root
            effective.append(winner)
        effective.sort(key=_sort_key)
        self._finish(effective)

    def _finish(self, effective: list[Event]) -> None:
        self.rejections: list[tuple[str, str]] = _check_cross_event_rules(effective)
        if self.rejections:
            rejected = {eid for eid, _ in self.rejections}
            effective = [e for e in effective if e.event_id not in rejected]
        self.events: list[Event] = effective
        self._by_type: dict[str, list[Event]] | None = None

    def of_type(self, event_type: str) -> list[Event]:
        if self._by_type is None:
            by_type: dict[str, list[Event]] = {}
            for ev in self.events:
                by_type.setdefault(ev.event_type, []).append(ev)
            self._by_type = by_type
        return self._by_type.get(event_type, [])

    def __len__(self) -> int:
        return len(self.events)


def _check_cross_event_rules(events: list[Event]) -> list[tuple[str, str]]:
    s47_start: dict[str, date] = {}
    plan_start: dict[str, date] = {}
    assessment_start: dict[str, date] = {}
    first_decom: date | None = None
    for ev in events:
        t = ev.event_type
        if ev.date is None:
            continue
        if t == "s47.started":
            if ev.s47_ref is not None:
                s47_start.setdefault(ev.s47_ref, ev.date)
        elif t == "cp_plan.started":
            if ev.plan_ref is not None:
                plan_start.setdefault(ev.plan_ref, ev.date)
        elif t == "assessment.started":
            if ev.assessment_ref is not None:
                assessment_start.setdefault(ev.assessment_ref, ev.date)
        elif t == "lac.started" and first_decom is None:
            first_decom = ev.date
    rejections: list[tuple[str, str]] = []
    for ev in events:
        t = ev.event_type
        d = ev.date
        if d is None:
            continue
        reason = None
        if t == "icpc.held":
            start = s47_start.get(ev.s47_ref)
            if start is not None and d < start:
                reason = ICPC_BEFORE_S47
        elif t == "cp_review.held":
            start = plan_start.get(ev.plan_ref)
            if start is not None and d < start:
                reason = REVIEW_BEFORE_PLAN
        elif t == "lac_review.held":
            if first_decom is not None and d < first_decom:
                reason = REVIEW_BEFORE_PLAN
        elif t == "s47.completed":
            start = s47_start.get(ev.s47_ref)
            if start is not None and d < start:
                reason = END_BEFORE_START
        elif t == "cp_plan.ended":
            start = plan_start.get(ev.plan_ref)
            if start is not None and d < start:
                reason = END_BEFORE_START
        elif t == "assessment.completed":
            start = assessment_start.get(ev.assessment_ref)
            if start is not None and d < start:
                reason = END_BEFORE_START
        elif t == "lac.ended":
            if first_decom is not None and d < first_decom:
                reason = END_BEFORE_START
        if reason:
            rejections.append((ev.event_id, reason))
    return rejections
