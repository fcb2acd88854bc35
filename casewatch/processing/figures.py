"""What one engine worker knows: per-partition aggregates of per-key contributions.

No Faust or Kafka here: the Faust agent (``app.py``) hands decoded events to
:class:`PartitionedFigures` and the exporter reads it. Every figure is the sum, over keys (children,
or workforce teams), of that key's *contribution*, recomputed from the key's whole de-duplicated
event history. So a repeated event changes nothing, an out-of-order or corrected event gives the
same figures as the clean stream, and a restarted worker rebuilds exactly what it had from the
table's changelog.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Iterable, Iterator, Mapping

from casewatch.domain.aggregate import Aggregate, combine_series
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, Event, compact
from casewatch.domain.indicators import DRIFT_WORKDAYS_DEFAULT, Contribution, contribution
from casewatch.domain.incremental import RunningContribution


class KeyState:
    """One key's stored events, kept parsed (``Event.f`` is the stored, compacted dict) so a new
    event does not re-parse the older ones, and the set of its event ids."""

    __slots__ = ("parsed", "ids", "contribution", "running")

    def __init__(self, events: Iterable[dict] = ()):
        self.parsed: list[Event] = [Event.of(e) for e in events if isinstance(e, dict) and e.get("event_id") is not None]
        self.ids: set = {e.event_id for e in self.parsed}
        self.contribution: Contribution | None = None
        self.running: RunningContribution | None = None  # kept for recently active keys only

    @property
    def events(self) -> list[dict]:
        return [e.f for e in self.parsed]


@dataclass
class PartitionState:
    """One partition's share of the worker's figures: its aggregate and each key's state (the
    whole worker's figures, partition by partition, are :class:`PartitionedFigures`)."""
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

    def __init__(self, calendar: WorkingDayCalendar, today: Callable[[], date], running_keys: int = 20_000,
                 drift_limits: Mapping[str, int] = DRIFT_WORKDAYS_DEFAULT):
        self.calendar = calendar
        self.today = today
        self.drift_limits = drift_limits  # working days per case type (Settings.drift_limits)
        self.as_of = today()
        self.partitions: dict[int, PartitionState] = {}
        self.version = 0  # changes whenever any figure may have changed (exposition cache key)
        # The keys whose RunningContribution is kept (most recently used last): a bounded number,
        # so memory stays proportional to recent activity, not to every child ever seen.
        self.running_keys = running_keys
        self._running: OrderedDict[tuple[int, str], KeyState] = OrderedDict()
        self.fast_path_events = 0  # events applied by extending a kept walk (tests check the fast path runs)

    # -- events --------------------------------------------------------------------------------
    def partition(self, p: int) -> PartitionState:
        figures = self.partitions.get(p)
        if figures is None:
            figures = self.partitions[p] = PartitionState(Aggregate(self.calendar, self.as_of))
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
        parsed_new = [Event.of(e) for e in appended]
        candidate = [*state.parsed, *parsed_new]
        new_contribution = self._extended(p, key, state, parsed_new)
        if new_contribution is not None:
            rejections: list[tuple[str, str]] = []
        else:
            history = ChildHistory(candidate)
            rejections = list(history.rejections)
            # A plain history is walked once, kept open for the key's next in-order event.
            running = RunningContribution.of(history, candidate, self.calendar, self.drift_limits)
            new_contribution = running.result(self.as_of) if running is not None else None
            if new_contribution is None:
                running = None
                new_contribution = contribution(history, self.as_of, self.calendar, self.drift_limits)
            self._keep_running(p, key, state, running)
        known |= new_ids
        figures.aggregate.apply(state.contribution, new_contribution)
        self.version += 1
        state.parsed = candidate
        state.contribution = new_contribution
        # A rejected event (e.g. an ICPC before its S47) stays in the history so that a later
        # correction can mend it, but it counts nowhere; it is reported for the dead-letter topic.
        return Applied(new, duplicates, candidate, [r for r in rejections if r[0] in new_ids], appended)

    def _extended(self, p: int, key: str, state: KeyState, parsed_new: list[Event]) -> Contribution | None:
        """The key's contribution with ``parsed_new`` by extending its kept walk, or None when it
        has none or the events are not all in order (the caller then computes the whole way)."""
        running = state.running
        if running is None:
            return None
        try:
            result = None
            for ev in sorted(parsed_new, key=lambda e: e._sort):
                if not running.accepts(ev):
                    break
                running.extend(ev)
            else:
                result = running.result(self.as_of)
        except Exception:
            self._keep_running(p, key, state, None)
            raise
        if result is None:  # the walk may hold part of the events now: drop it
            self._keep_running(p, key, state, None)
            return None
        self._running.move_to_end((p, key))
        self.fast_path_events += len(parsed_new)
        return result

    def _keep_running(self, p: int, key: str, state: KeyState, running: RunningContribution | None) -> None:
        state.running = running
        if running is None:
            self._running.pop((p, key), None)
            return
        self._running[(p, key)] = state
        self._running.move_to_end((p, key))
        while len(self._running) > self.running_keys:
            _, oldest = self._running.popitem(last=False)
            oldest.running = None

    def _forget_running(self, partitions: set[int]) -> None:
        for p, key in [k for k in self._running if k[0] in partitions]:
            self._running.pop((p, key)).running = None

    def _contribution(self, events: list) -> tuple[Contribution, list[tuple[str, str]]]:
        history = ChildHistory(events)
        return contribution(history, self.as_of, self.calendar, self.drift_limits), list(history.rejections)

    # -- rebalance -----------------------------------------------------------------------------
    def keep_only(self, assigned: Iterable[int]) -> None:
        assigned = set(assigned)
        self.drop({p for p in self.partitions if p not in assigned})

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the figures of ``partitions`` (revoked: their series disappear at once)."""
        dropped = {p for p in partitions if p in self.partitions}
        for p in dropped:
            del self.partitions[p]
            self.version += 1
        self._forget_running(dropped)

    def rebuild(self, p: int, items: Iterable[tuple[str, list[dict]]]) -> None:
        """Recompute partition ``p`` from the durable table (after recovery or assignment)."""
        self._forget_running({p})
        figures = PartitionState(Aggregate(self.calendar, self.as_of))
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

