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

from casewatch.domain.aggregate import Aggregate, combine_samples
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, compact
from casewatch.domain.indicators import Contribution, contribution


@dataclass
class KeyState:
    events: list[dict]
    contribution: Contribution | None = None


@dataclass
class PartitionFigures:
    aggregate: Aggregate
    keys: dict[str, KeyState] = field(default_factory=dict)


class Outcome:
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class PartitionedFigures:
    """The figures of the partitions this worker owns, kept per partition so a revoked partition's
    series disappear with it (no stale series after a rebalance)."""

    def __init__(self, calendar: WorkingDayCalendar, today: Callable[[], date]):
        self.calendar = calendar
        self.today = today
        self.as_of = today()
        self.partitions: dict[int, PartitionFigures] = {}

    # -- events --------------------------------------------------------------------------------
    def partition(self, p: int) -> PartitionFigures:
        figures = self.partitions.get(p)
        if figures is None:
            figures = self.partitions[p] = PartitionFigures(Aggregate(self.calendar, self.as_of))
        return figures

    def apply(self, p: int, key: str, event: dict, stored: list[dict] | None) -> tuple[str, list[dict] | None,
                                                                                   list[tuple[str, str]]]:
        """Apply one event for ``key``. ``stored`` is the key's events from the durable table (or
        None). Returns (outcome, events to store or None when unchanged, rejections)."""
        figures = self.partition(p)
        state = figures.keys.get(key)
        if state is None:
            state = KeyState(events=list(stored or []))
            if state.events:
                state.contribution = self._contribution(state.events)[0]
                figures.aggregate.apply(None, state.contribution)
            figures.keys[key] = state
        event_id = event.get("event_id")
        if any(e.get("event_id") == event_id for e in state.events):
            return Outcome.DUPLICATE, None, []
        candidate = [*state.events, compact(event)]
        new_contribution, rejections = self._contribution(candidate)
        if any(eid == event_id for eid, _ in rejections):
            # The event breaks a cross-event rule (e.g. an ICPC before its S47): it is kept in
            # the history so a later correction can fix it, but it counts nowhere.
            pass
        figures.aggregate.apply(state.contribution, new_contribution)
        state.events = candidate
        state.contribution = new_contribution
        outcome = Outcome.REJECTED if any(eid == event_id for eid, _ in rejections) else Outcome.APPLIED
        return outcome, candidate, [r for r in rejections if r[0] == event_id]

    def _contribution(self, events: list[dict]) -> tuple[Contribution, list[tuple[str, str]]]:
        history = ChildHistory(events)
        return contribution(history, self.as_of, self.calendar), list(history.rejections)

    # -- rebalance -----------------------------------------------------------------------------
    def keep_only(self, assigned: Iterable[int]) -> None:
        assigned = set(assigned)
        for p in list(self.partitions):
            if p not in assigned:
                del self.partitions[p]

    def rebuild(self, p: int, items: Iterable[tuple[str, list[dict]]]) -> None:
        """Recompute partition ``p`` from the durable table (after recovery or assignment)."""
        figures = PartitionFigures(Aggregate(self.calendar, self.as_of))
        for key, events in items:
            state = KeyState(events=list(events))
            state.contribution = self._contribution(state.events)[0]
            figures.aggregate.apply(None, state.contribution)
            figures.keys[key] = state
        self.partitions[p] = figures

    # -- time ----------------------------------------------------------------------------------
    def advance(self) -> bool:
        """Move "today" forward when the day changed; recompute the keys whose snapshot figures
        may have changed (their ``stable_until`` has come). Returns True when the day changed."""
        today = self.today()
        if today == self.as_of:
            return False
        self.as_of = today
        for figures in self.partitions.values():
            figures.aggregate.set_as_of(today)
            for state in figures.keys.values():
                old = state.contribution
                if old is not None and old.stable_until is not None and old.stable_until <= today:
                    new = self._contribution(state.events)[0]
                    figures.aggregate.apply(old, new)
                    state.contribution = new
        return True

    # -- exposition ----------------------------------------------------------------------------
    def samples(self) -> Iterator[tuple[str, tuple[tuple[str, str], ...], float]]:
        """Every series over this worker's partitions: sums, except the maxima (the longest
        unallocation, the most overdue clock), which take the largest value."""
        totals = combine_samples(f.aggregate.samples() for f in self.partitions.values())
        for (metric, labels), value in totals.items():
            yield metric, labels, value

    @property
    def keys_tracked(self) -> int:
        return sum(len(f.keys) for f in self.partitions.values())


def state_size_bytes(events: list[dict[str, Any]]) -> int:
    import json
    return len(json.dumps(events, separators=(",", ":"), default=str))
