"""The kept walk (casewatch.domain.incremental.RunningContribution) against the whole computation
(casewatch.domain.indicators.contribution) on generated histories, and ``stable_until`` against
the figures of the days that follow."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings, strategies as st

from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, Event, compact
from casewatch.domain.indicators import contribution
from casewatch.domain.incremental import RunningContribution
from tests.support.generated_histories import arrival, as_of_dates, dates, some_history

CAL = WorkingDayCalendar()
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a, b) -> bool:
    return (a.flows, a.stocks, a.stable_until) == (b.flows, b.stocks, b.stable_until)


@SETTINGS
@given(some_history(max_events=16, corrections=False), st.data())
def test_the_kept_walk_gives_the_whole_computation_after_every_event(events, data):
    """Events arrive one at a time (in date order, or shuffled with repeats); the walk is extended
    when it accepts the event and rebuilt when it does not, as the engine does. After every event
    and for every later "today", its result equals the whole computation's."""
    if data.draw(st.booleans()):
        events = sorted(events, key=lambda e: Event.of(e)._sort)
    else:
        events = data.draw(arrival(events))
    latest = max(Event.of(e).date for e in events)
    days = [latest + timedelta(days=n) for n in sorted(data.draw(st.lists(st.integers(0, 400), min_size=1, max_size=3)))]
    seen: dict[str, Event] = {}
    running = None
    extended = 0
    for raw in events:
        if raw["event_id"] in seen:
            continue
        ev = Event.of(compact(raw))
        seen[ev.event_id] = ev
        parsed = list(seen.values())
        if running is not None and running.accepts(ev):
            running.extend(ev)
            extended += 1
        else:
            history = ChildHistory(parsed)
            running = RunningContribution.of(history, parsed, CAL)
        whole = ChildHistory(parsed)
        if running is None:
            assert whole.rejections  # only a history breaking a rule is left to the whole computation
            continue
        as_of = max(ev.date for ev in parsed)
        kept = running.result(as_of)
        assert kept is not None and same(kept, contribution(whole, as_of, CAL))
    if running is not None:
        whole = ChildHistory(list(seen.values()))
        for day in days:  # "today" moves on: the kept walk is read again
            assert same(running.result(day), contribution(whole, day, CAL))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(some_history(max_events=16), as_of_dates(), st.integers(1, 400))
def test_no_figure_changes_before_stable_until_without_a_new_event(events, as_of, horizon):
    """``stable_until`` is the first day the figures can change with no new event: on each of the
    following days, a snapshot figure that differs from the day before was announced by the day
    before's ``stable_until`` (never later than the change), and flows never depend on the day."""
    history = ChildHistory([compact(e) for e in events])
    before = contribution(history, as_of, CAL)
    for n in range(1, horizon + 1):
        day = as_of + timedelta(days=n)
        now = contribution(history, day, CAL)
        if before.stable_until is not None:
            assert before.stable_until > day - timedelta(days=1)
        if now.stocks != before.stocks:
            assert before.stable_until is not None and before.stable_until <= day, (day, before.stable_until)
        assert now.flows == before.flows
        before = now


@settings(max_examples=40, deadline=None)
@given(some_history(max_events=12, corrections=False), dates())
def test_the_walk_is_not_taken_for_events_dated_after_today(events, as_of):
    parsed = [Event.of(compact(e)) for e in events]
    history = ChildHistory(parsed)
    running = RunningContribution.of(history, parsed, CAL)
    if running is None:
        return
    result = running.result(as_of)
    if any(ev.date > as_of for ev in history.events):
        assert result is None
    else:
        assert same(result, contribution(history, as_of, CAL))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(some_history(max_events=16, corrections=False))
def test_swapping_a_walks_results_touches_the_added_flows_and_gives_the_whole_sum(events):
    """Each result of a kept walk says which flows it added since the previous one, and the
    Aggregate swapping the previous for the next adds only those: after every event the figures
    equal an Aggregate of the whole computation's contribution."""
    from casewatch.domain.aggregate import Aggregate
    events = sorted(events, key=lambda e: Event.of(e)._sort)
    parsed = [Event.of(compact(e)) for e in events]
    as_of = max(ev.date for ev in parsed)
    first = ChildHistory(parsed[:1])
    running = RunningContribution.of(first, parsed[:1], CAL)
    if running is None:
        return
    aggregate = Aggregate(CAL, as_of)
    previous = running.result(as_of)
    aggregate.apply(None, previous)
    for i, ev in enumerate(parsed[1:], start=2):
        if not running.accepts(ev):
            return
        running.extend(ev)
        new = running.result(as_of)
        assert new.follows is previous.added and new.follows is not None
        aggregate.apply(previous, new)
        previous = new
        whole = Aggregate(CAL, as_of)
        whole.apply(None, contribution(ChildHistory(parsed[:i]), as_of, CAL))
        got = {(m, labels): v for m, labels, v in aggregate.series()}
        want = {(m, labels): v for m, labels, v in whole.series()}
        assert {k: v for k, v in got.items() if k in want} == want
        assert all(v == 0.0 for k, v in got.items() if k not in want)
