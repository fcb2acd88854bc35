"""A key's contribution kept ready for its next event.

``contribution(ChildHistory(events), as_of, calendar)`` reads a key's whole history every time.
Most events, though, arrive in order: dated after everything the key already has, neither an
amendment nor a void, and changing no earlier event's standing under the cross-event rules. For
those the walk over the history can simply go on from where it stopped, and only the parts that
depend on "today" (stocks, live clocks, and the clocks' completed flows) are read off again.

:class:`RunningContribution` is that walk kept open. ``accepts(event)`` says whether ``event`` is
such an in-order event; ``extend(event)`` walks it; ``result(as_of)`` gives exactly what
``contribution`` gives for the same events (the tests compare the two on every scenario and on
random arrival orders). Whatever it does not accept, the caller computes the whole way.

:class:`DailyContribution` is the other way round: one history that does not change, read on
day after day (the Prometheus backfill). Its flows and clocks do not depend on the day and are
made once; the walk goes forward only as far as each day's events; the stocks are read off on the
days they can change, and the maxima that grow by a working day a day (drift, unallocation,
overdue clocks) are handed on as their start (``Contribution.growing``) instead of making the key
due every day.
"""
from __future__ import annotations

from datetime import date
from typing import Mapping

from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.clocks import _Walk, compute_clocks
from casewatch.domain.events import kept_field
from casewatch.domain.history import VOID, ChildHistory, Event
from casewatch.domain.indicators import (_CLOCK_FLOW, DRIFT_WORKDAYS_DEFAULT, Contribution, _feed, _labels,
                                         _State, _stocks, contribution)

__all__ = ["RunningContribution", "DailyContribution"]

# The cross-event rules (history.py): a start event's reference, and the later-stage events that
# name it. A first start for a reference already named earlier would put those earlier events
# before their start (rejected): not an in-order event.
# (Field names checked against the event table at import; read with getattr, so a field the type
# does not keep raises.)
_START_REF = {t: kept_field(t, name) for t, name in (
    ("s47.started", "s47_ref"), ("cp_plan.started", "plan_ref"), ("assessment.started", "assessment_ref"))}
_NAMES_REF = {t: kept_field(t, name) for t, name in (
    ("icpc.held", "s47_ref"), ("s47.completed", "s47_ref"), ("cp_review.held", "plan_ref"),
    ("cp_plan.ended", "plan_ref"), ("assessment.completed", "assessment_ref"))}
_BEFORE_FIRST_PERIOD = frozenset({"lac_review.held", "lac.ended"})


def _plain_ref(value) -> bool:
    return value is None or isinstance(value, (str, int))


class RunningContribution:
    __slots__ = ("calendar", "drift_limits", "walk", "state", "flows", "last_sort", "latest_date", "starts", "named",
                 "period_started", "period_events_seen", "clocks_seen", "running_clocks", "added", "handed")

    def __init__(self, calendar: WorkingDayCalendar, drift_limits: Mapping[str, int] = DRIFT_WORKDAYS_DEFAULT):
        self.calendar = calendar
        self.drift_limits = drift_limits
        self.walk = _Walk(calendar)
        self.state = _State()
        self.flows: dict = {}
        self.last_sort: tuple | None = None
        self.latest_date: date | None = None
        self.starts: set[tuple[str, object]] = set()
        self.named: set[tuple[str, object]] = set()
        self.period_started = False
        self.period_events_seen = False
        # Clocks are only ever completed or stopped as the walk goes on, never reopened: a
        # completed clock's flows are added to ``flows`` once, and only the clocks still running
        # (no stop yet) can be open on any day after the latest event.
        self.clocks_seen = 0
        self.running_clocks: list = []
        # The flows added since the last result, and those the last result handed on
        # (``Contribution.added``; the next result ``follows`` them). Not the results themselves: a
        # result holding the one before would hold every earlier one.
        self.added: dict = {}
        self.handed: dict | None = None

    @classmethod
    def of(cls, history: ChildHistory, events: list[Event], calendar: WorkingDayCalendar,
           drift_limits: Mapping[str, int] = DRIFT_WORKDAYS_DEFAULT) -> "RunningContribution | None":
        """The walk over ``history`` (built from ``events``), or None when the history is not
        plain: it holds amendments or voids, an event broke a cross-event rule, or a reference
        is not a plain value."""
        if history.rejections:
            return None
        for ev in events:
            if ev.event_type == VOID or ev.correction_of is not None:
                return None
        running = cls(calendar, drift_limits)
        for ev in history.events:
            if not running._plain(ev):
                return None
            running.extend(ev)
        return running

    def _plain(self, ev: Event) -> bool:
        field = _START_REF.get(ev.event_type) or _NAMES_REF.get(ev.event_type)
        return field is None or _plain_ref(getattr(ev, field))

    def accepts(self, ev: Event) -> bool:
        """True when ``ev`` is an in-order event this walk can take."""
        if ev.date is None or ev.event_type == VOID or ev.correction_of is not None:
            return False
        if self.last_sort is not None and ev._sort <= self.last_sort:
            return False
        if not self._plain(ev):
            return False
        field = _START_REF.get(ev.event_type)
        if field is not None:
            ref = (field, getattr(ev, field))
            if ref[1] is not None and ref not in self.starts and ref in self.named:
                return False
        if ev.event_type == "lac.started" and not self.period_started and self.period_events_seen:
            return False
        return True

    def extend(self, ev: Event) -> None:
        """Walk ``ev`` (the caller checked ``accepts``, or this is the history being built)."""
        if self.last_sort is None or ev._sort > self.last_sort:
            self.last_sort = ev._sort
        t = ev.event_type
        field = _START_REF.get(t)
        if field is not None:
            value = getattr(ev, field)
            if value is not None:
                self.starts.add((field, value))
        field = _NAMES_REF.get(t)
        if field is not None:
            value = getattr(ev, field)
            if value is not None:
                self.named.add((field, value))
        if t == "lac.started":
            self.period_started = True
        elif t in _BEFORE_FIRST_PERIOD:
            self.period_events_seen = True
        d = ev.date
        if d is None:
            return
        if self.latest_date is None or d > self.latest_date:
            self.latest_date = d
        self.walk.feed(ev)
        self.state.latest = ev
        _feed(self.state, ev, d, self._flow)

    def _flow(self, metric: str, labels, d: date, amount: float = 1.0) -> None:
        key = (metric, labels, d)
        flows = self.flows
        flows[key] = flows.get(key, 0.0) + amount
        added = self.added
        added[key] = added.get(key, 0.0) + amount

    def result(self, as_of: date) -> Contribution | None:
        """The contribution as of ``as_of``; None when an event is dated after ``as_of`` (the
        whole computation handles future-dated events)."""
        if self.latest_date is not None and self.latest_date > as_of:
            return None
        clocks = self.walk.clocks
        unsettled = self.running_clocks + clocks[self.clocks_seen:]
        self.clocks_seen = len(clocks)
        running = []
        flow = self._flow
        for clock in unsettled:
            if clock.completed:  # (clock flows are other metrics than the events' own flows)
                ev = clock.stop_event
                done, in_time = _CLOCK_FLOW[clock.process]
                labels = _labels(ev.la, ev.team)
                flow(done, labels, ev.date)
                if clock.in_time:
                    flow(in_time, labels, ev.date)
            elif clock.stop is None:
                running.append(clock)
        self.running_clocks = running
        stocks: dict = {}
        candidates: list[date] = []
        _stocks(self.state, running, as_of, self.calendar, stocks, candidates, self.drift_limits)
        stable = min((c for c in candidates if c > as_of), default=None)
        result = Contribution(dict(self.flows), stocks, stable, follows=self.handed, added=self.added)
        self.handed = self.added
        self.added = {}
        return result


def _no_flow(metric, labels, d, amount=1.0) -> None:
    """The flows of the walk to a day are not wanted: they were all counted once, up front."""


class DailyContribution:
    """One unchanged history's contribution on successive days: ``at(day)`` with days that never
    go back gives what ``contribution(history, day, calendar, drift_limits)`` gives, except that
    the growing maxima are in ``growing`` (their value on ``day`` is ``calendar.elapsed(start,
    day)``) and ``stable_until`` leaves their daily growth out. Every result shares one ``flows``
    mapping (so ``Aggregate.apply`` skips comparing them)."""

    __slots__ = ("calendar", "drift_limits", "clocks", "flows", "events", "state", "fed", "as_of")

    def __init__(self, history: ChildHistory, calendar: WorkingDayCalendar,
                 drift_limits: Mapping[str, int] = DRIFT_WORKDAYS_DEFAULT, clocks: list | None = None):
        self.calendar = calendar
        self.drift_limits = drift_limits
        self.clocks = compute_clocks(history, calendar) if clocks is None else clocks
        # The flows are the same on every day: the whole computation's, once (on the first day
        # there is: its stocks are not used).
        self.flows = contribution(history, date.min, calendar, drift_limits, self.clocks).flows
        self.events = history.events
        self.state = _State()
        self.fed = 0          # the events walked so far (those dated on or before ``as_of``)
        self.as_of: date | None = None

    def at(self, as_of: date) -> Contribution:
        if self.as_of is not None and as_of < self.as_of:
            raise ValueError(f"DailyContribution goes forward only: {as_of} is before {self.as_of}")
        self.as_of = as_of
        events, st, i = self.events, self.state, self.fed
        n = len(events)
        while i < n:
            ev = events[i]
            d = ev.date
            if d is not None:
                if d > as_of:
                    break
                st.latest = ev
                _feed(st, ev, d, _no_flow)
            i += 1
        self.fed = i
        # (events are in date order: the next one, if any, is the first dated after as_of)
        candidates: list[date] = [events[i].date] if i < n else []
        stocks: dict = {}
        growing: dict = {}
        _stocks(st, self.clocks, as_of, self.calendar, stocks, candidates, self.drift_limits, growing)
        stable = min((c for c in candidates if c > as_of), default=None)
        return Contribution(self.flows, stocks, stable, growing)
