"""The backfill's daily figures (``daily_samples``: each history walked forward day by day, a key
recounted only when its ``stable_until`` comes, growing maxima read off their start, windows moved
day by day) equal, on every day, a from-scratch recount: ``contribution(ChildHistory(events), day)``
of every key summed into an Aggregate made on that day. A seeded authority over 12 weeks: 1 April
(a new financial year and quarter), month ends, Easter, cohort windows jumping a quarter, and
children drifting, unallocated and overdue day after day."""
from __future__ import annotations

from datetime import date, timedelta

from casewatch.adapters.prometheus.backfill import daily_samples
from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.events import event_partition_key
from casewatch.domain.history import ChildHistory, compact
from casewatch.domain.indicators import DRIFT_WORKDAYS_DEFAULT, contribution
from casewatch.simulation.authority import authority_events

CAL = WorkingDayCalendar()
FIRST, LAST = date(2025, 3, 20), date(2025, 6, 10)
GROWING = ("casewatch_drift_max_workdays", "casewatch_unallocated_max_workdays",
           "casewatch_clocks_max_overdue_workdays")


def from_scratch(histories: list[ChildHistory], day: date, drift_limits) -> dict:
    aggregate = Aggregate(CAL, day)
    for history in histories:
        aggregate.apply(None, contribution(history, day, CAL, drift_limits))
    return {(metric, labels): value for metric, labels, value in aggregate.series()}


def test_daily_figures_equal_a_from_scratch_recount_on_every_day():
    events = list(authority_events(["E06000004"], 1500, 11, date(2024, 4, 1), LAST, profile="stockton"))
    by_key: dict[str, list[dict]] = {}
    for event in events:
        by_key.setdefault(event_partition_key(event), []).append(compact(event))
    histories = [ChildHistory(v) for v in by_key.values()]
    assert len(histories) > 500
    # shorter drift limits than the defaults: more keys drift, and they move in and out of it
    limits = {**DRIFT_WORKDAYS_DEFAULT, "cin": 15}
    days = 0
    grown: dict[tuple, set[float]] = {}
    for day, samples in daily_samples(events, FIRST, LAST, CAL, drift_limits=limits):
        assert day == FIRST + timedelta(days=days)
        got = {(metric, labels): value for metric, labels, value in samples}
        want = from_scratch(histories, day, limits)
        # a series once published stays (0) in the running figures; the recount starts afresh
        assert set(want) <= set(got), day
        assert all(got[k] == 0.0 for k in set(got) - set(want)), day
        assert {k: got[k] for k in want} == want, day
        for key, value in want.items():
            if key[0] in GROWING:
                grown.setdefault(key, set()).add(value)
        days += 1
    assert days == (LAST - FIRST).days + 1
    # the growing maxima did grow: each of the three took many values over the days
    for metric in GROWING:
        assert max(len(values) for key, values in grown.items() if key[0] == metric) >= 5, metric
