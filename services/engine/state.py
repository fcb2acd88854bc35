"""What one engine worker knows: per-partition aggregates of per-key contributions.

No Faust or Kafka here: the Faust agent (``app.py``) hands decoded events to
:class:`PartitionedFigures` and the exporter reads it. Every figure is the sum, over keys (children,
or workforce teams), of that key's *contribution*, recomputed from the key's whole de-duplicated
event history. So a repeated event changes nothing, an out-of-order or corrected event gives the
same figures as the clean stream, and a restarted worker rebuilds exactly what it had from the
table's changelog.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable, Iterator

from casewatch.domain.aggregate import Aggregate, combine_series
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, Event, compact
from casewatch.domain.indicators import Contribution, contribution


class KeyState:
    """One key's stored events, kept parsed (``Event.f`` is the stored, compacted dict) so a new
    event does not re-parse the older ones, and the set of its event ids."""

    __slots__ = ("parsed", "ids", "contribution")

    def __init__(self, events: Iterable[dict] = ()):
        self.parsed: list[Event] = [Event(e) for e in events if isinstance(e, dict) and e.get("event_id") is not None]
        self.ids: set = {e.f.get("event_id") for e in self.parsed}
        self.contribution: Contribution | None = None

    @property
    def events(self) -> list[dict]:
        return [e.f for e in self.parsed]


@dataclass
class PartitionFigures:
    aggregate: Aggregate
    keys: dict[str, KeyState] = field(default_factory=dict)


@dataclass
class Applied:
    """What applying a message did: the events newly applied, how many were repeats, the key's
    stored history now (None when nothing changed), the compacted new events (appended at the end
    of that history) and the cross-event rule breaks among the new."""
    events: list[dict]
    duplicates: int
    history: list[Event] | None
    rejections: list[tuple[str, str]]
    appended: list[dict] = field(default_factory=list)

    @property
    def to_store(self) -> list[dict] | None:
        """The key's events to store (its whole history, compacted), or None."""
        return None if self.history is None else [e.f for e in self.history]


class PartitionedFigures:
    """The figures of the partitions this worker owns, kept per partition so a revoked partition's
    series disappear with it (no stale series after a rebalance)."""

    def __init__(self, calendar: WorkingDayCalendar, today: Callable[[], date]):
        self.calendar = calendar
        self.today = today
        self.as_of = today()
        self.partitions: dict[int, PartitionFigures] = {}
        self.version = 0  # changes whenever any figure may have changed (exposition cache key)

    # -- events --------------------------------------------------------------------------------
    def partition(self, p: int) -> PartitionFigures:
        figures = self.partitions.get(p)
        if figures is None:
            figures = self.partitions[p] = PartitionFigures(Aggregate(self.calendar, self.as_of))
        return figures

    def apply(self, p: int, key: str, events: list[dict], stored: list[dict] | None) -> "Applied":
        """Apply one or more events of ``key`` (a Kafka message may carry a batch of one child's
        events). ``stored`` is the key's events from the durable table, read only the first time
        the key is seen since the partition was built. The key's contribution is recomputed once
        for the whole batch."""
        figures = self.partition(p)
        state = figures.keys.get(key)
        if state is None:
            state = KeyState(stored or [])
            if state.parsed:
                state.contribution = self._contribution(state.parsed)[0]
                figures.aggregate.apply(None, state.contribution)
            figures.keys[key] = state
        known = state.ids
        new: list[dict] = []
        new_ids: set = set()
        duplicates = 0
        for event in events:  # (nothing is changed until the events are applied)
            event_id = event.get("event_id")
            if event_id in known or event_id in new_ids:
                duplicates += 1
                continue
            new.append(event)
            new_ids.add(event_id)
        if not new:
            return Applied([], duplicates, None, [])
        appended = [compact(e) for e in new]
        candidate = [*state.parsed, *(Event(e) for e in appended)]
        new_contribution, rejections = self._contribution(candidate)
        known |= new_ids
        figures.aggregate.apply(state.contribution, new_contribution)
        self.version += 1
        state.parsed = candidate
        state.contribution = new_contribution
        # A rejected event (e.g. an ICPC before its S47) stays in the history so that a later
        # correction can mend it, but it counts nowhere; it is reported for the dead-letter topic.
        return Applied(new, duplicates, candidate, [r for r in rejections if r[0] in new_ids], appended)

    def _contribution(self, events: list) -> tuple[Contribution, list[tuple[str, str]]]:
        history = ChildHistory(events)
        return contribution(history, self.as_of, self.calendar), list(history.rejections)

    # -- rebalance -----------------------------------------------------------------------------
    def keep_only(self, assigned: Iterable[int]) -> None:
        assigned = set(assigned)
        for p in list(self.partitions):
            if p not in assigned:
                del self.partitions[p]
                self.version += 1

    def rebuild(self, p: int, items: Iterable[tuple[str, list[dict]]]) -> None:
        """Recompute partition ``p`` from the durable table (after recovery or assignment)."""
        figures = PartitionFigures(Aggregate(self.calendar, self.as_of))
        for key, events in items:
            state = KeyState(events)
            state.contribution = self._contribution(state.parsed)[0]
            figures.aggregate.apply(None, state.contribution)
            figures.keys[key] = state
        self.partitions[p] = figures
        self.version += 1

    # -- time ----------------------------------------------------------------------------------
    def advance(self) -> bool:
        """Move "today" forward when the day changed; recompute the keys whose snapshot figures
        may have changed (their ``stable_until`` has come). Returns True when the day changed."""
        today = self.today()
        if today == self.as_of:
            return False
        self.as_of = today
        self.version += 1
        for figures in self.partitions.values():
            figures.aggregate.set_as_of(today)
            for state in figures.keys.values():
                old = state.contribution
                if old is not None and old.stable_until is not None and old.stable_until <= today:
                    new = self._contribution(state.parsed)[0]
                    figures.aggregate.apply(old, new)
                    state.contribution = new
        return True

    # -- exposition ----------------------------------------------------------------------------
    def samples(self) -> Iterator[tuple[str, tuple[tuple[str, str], ...], float]]:
        """Every series over this worker's partitions: sums, except the maxima (the longest
        unallocation, the most overdue clock), which take the largest value."""
        totals = combine_series(f.aggregate.series() for f in self.partitions.values())
        for (metric, labels), value in totals.items():
            yield metric, labels, value

    @property
    def keys_tracked(self) -> int:
        return sum(len(f.keys) for f in self.partitions.values())


def state_size_bytes(events: list[dict[str, Any]]) -> int:
    import json
    return len(json.dumps(events, separators=(",", ":"), default=str))
