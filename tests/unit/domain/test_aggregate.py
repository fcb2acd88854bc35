"""Aggregate windows, replacement of contributions, zero series and maxima."""
from __future__ import annotations

from datetime import date

from casewatch.domain.aggregate import Aggregate, combine_samples, window_bounds
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.indicators import Contribution

CAL = WorkingDayCalendar()
LAB = (("la", "E06000004"), ("team", "cp_1"))
M = "casewatch_contacts"


def flows(*dates):
    out = {}
    for d in dates:
        out[(M, LAB, d)] = out.get((M, LAB, d), 0.0) + 1.0
    return Contribution(flows=out)


def windows(agg, metric=M):
    return {labels["window"]: v for m, labels, v in agg.samples() if m == metric and "window" in labels}


def test_28d_includes_day_27_back_and_excludes_day_28():
    as_of = date(2026, 3, 31)
    agg = Aggregate(CAL, as_of)
    agg.apply(None, flows(date(2026, 3, 4), date(2026, 3, 3)))  # 27 and 28 days before 31 Mar
    assert windows(agg)["28d"] == 1.0


def test_12m_window_is_half_open():
    agg = Aggregate(CAL, date(2026, 3, 31))
    agg.apply(None, flows(date(2025, 3, 31), date(2025, 4, 1), date(2026, 3, 31)))
    assert windows(agg)["12m"] == 2.0


def test_fytd_across_1_april_and_future_flows_excluded():
    agg = Aggregate(CAL, date(2026, 3, 31))
    c = flows(date(2025, 4, 1), date(2026, 3, 31), date(2026, 4, 1))
    agg.apply(None, c)
    # month = March 2026 to date: 31 Mar only; quarter = 1 Jan..31 Mar 2026: 31 Mar only
    assert windows(agg) == {"28d": 1.0, "12m": 2.0, "fytd": 2.0, "month": 1.0, "quarter": 1.0}
    agg.set_as_of(date(2026, 4, 1))  # a new financial year, month and quarter begin
    assert windows(agg) == {"28d": 2.0, "12m": 2.0, "fytd": 1.0, "month": 1.0, "quarter": 1.0}


def test_window_bounds():
    assert window_bounds(date(2026, 3, 31)) == (date(2026, 3, 4), date(2025, 4, 1), date(2025, 4, 1),
                                                date(2026, 3, 1), date(2026, 1, 1))
    assert window_bounds(date(2026, 4, 1)) == (date(2026, 3, 5), date(2025, 4, 2), date(2026, 4, 1),
                                               date(2026, 4, 1), date(2026, 4, 1))
    # quarter 3 of the financial year = October-December; month of February in a leap year
    assert window_bounds(date(2013, 12, 31))[3:] == (date(2013, 12, 1), date(2013, 10, 1))
    assert window_bounds(date(2024, 2, 29))[3:] == (date(2024, 2, 1), date(2024, 1, 1))


def test_calendar_windows_give_the_period_figure_on_its_last_day():
    """"249 referrals in March": on 31 March the month window is March's count; on 1 April it
    starts again. The quarter to date on 30 June is April-June (quarter 1 of the financial year)."""
    agg = Aggregate(CAL, date(2014, 3, 31))
    agg.apply(None, flows(date(2014, 2, 28), date(2014, 3, 1), date(2014, 3, 15), date(2014, 3, 31),
                          date(2014, 4, 1), date(2014, 6, 30), date(2014, 7, 1)))
    assert windows(agg)["month"] == 3.0     # 1, 15 and 31 March
    assert windows(agg)["quarter"] == 4.0   # January-March: 28 Feb + the three March days
    agg.set_as_of(date(2014, 4, 1))
    assert (windows(agg)["month"], windows(agg)["quarter"]) == (1.0, 1.0)
    agg.set_as_of(date(2014, 6, 30))
    assert (windows(agg)["month"], windows(agg)["quarter"]) == (1.0, 2.0)
    agg.set_as_of(date(2014, 7, 1))
    assert (windows(agg)["month"], windows(agg)["quarter"]) == (1.0, 1.0)


def test_apply_replaces_and_zero_series_stay():
    agg = Aggregate(CAL, date(2026, 3, 31))
    old = flows(date(2026, 3, 30))
    agg.apply(None, old)
    new = flows(date(2026, 3, 31), date(2026, 3, 31))
    agg.apply(old, new)
    assert windows(agg)["28d"] == 2.0
    agg.apply(new, None)
    assert windows(agg) == {"28d": 0.0, "12m": 0.0, "fytd": 0.0, "month": 0.0, "quarter": 0.0}


def test_max_metrics_take_the_maximum_and_fall_back_to_zero():
    metric = "casewatch_unallocated_max_workdays"
    key = (metric, LAB + (("case_type", "cp"),))
    a, b = Contribution(stocks={key: 5.0}), Contribution(stocks={key: 3.0})
    agg = Aggregate(CAL, date(2026, 3, 31))
    agg.apply(None, a)
    agg.apply(None, b)
    assert [v for m, _, v in agg.samples() if m == metric] == [5.0]
    agg.apply(a, None)
    assert [v for m, _, v in agg.samples() if m == metric] == [3.0]
    agg.apply(b, None)
    assert [v for m, _, v in agg.samples() if m == metric] == [0.0]


def test_merge_and_combine_samples():
    as_of = date(2026, 3, 31)
    stock = ("casewatch_cin_open", LAB)
    mx = ("casewatch_clocks_max_overdue_workdays", tuple(sorted(LAB + (("process", "icpc"),))))
    p1, p2 = Aggregate(CAL, as_of), Aggregate(CAL, as_of)
    p1.apply(None, Contribution(flows={(M, LAB, date(2026, 3, 30)): 1.0}, stocks={stock: 1.0, mx: 4.0}))
    p2.apply(None, Contribution(flows={(M, LAB, date(2025, 12, 1)): 1.0}, stocks={stock: 1.0, mx: 2.0}))
    combined = combine_samples([p1.samples(), p2.samples()])
    assert combined[(mx[0], mx[1])] == 4.0
    assert combined[(stock[0], stock[1])] == 2.0
    p1.merge(p2)
    assert windows(p1) == {"28d": 1.0, "12m": 2.0, "fytd": 2.0, "month": 1.0, "quarter": 1.0}
    assert {m: v for m, _, v in p1.samples() if "window" not in _} == {"casewatch_cin_open": 2.0, mx[0]: 4.0}


def test_cohort_bounds_are_matured_three_months():
    from casewatch.domain.aggregate import cohort_bounds
    # 30 Sep: matured to 30 Jun (a quarter's end): 12 months 1 Jul..30 Jun, quarter April-June
    assert cohort_bounds(date(2026, 9, 30)) == ((date(2025, 7, 1), date(2026, 6, 30)),
                                                (date(2026, 4, 1), date(2026, 6, 30)))
    # 29 Sep: matured to 29 Jun: April-June has not matured, the latest matured quarter is Jan-Mar
    assert cohort_bounds(date(2026, 9, 29)) == ((date(2025, 6, 30), date(2026, 6, 29)),
                                                (date(2026, 1, 1), date(2026, 3, 31)))
    # 31 May: 3 months back is 28 Feb (no 31 Feb); quarter Oct-Dec of the year before
    assert cohort_bounds(date(2026, 5, 31)) == ((date(2025, 3, 1), date(2026, 2, 28)),
                                                (date(2025, 10, 1), date(2025, 12, 31)))


def test_cohort_metrics_are_published_only_in_cohort_windows():
    metric = "casewatch_cohort_referrals"
    agg = Aggregate(CAL, date(2026, 9, 30))
    agg.apply(None, Contribution(flows={(metric, LAB, date(2026, 6, 30)): 1.0,
                                        (metric, LAB, date(2026, 7, 1)): 1.0,
                                        (metric, LAB, date(2025, 7, 1)): 1.0}))
    assert windows(agg, metric) == {"cohort_12m": 2.0, "cohort_quarter": 1.0}
    agg.set_as_of(date(2026, 10, 1))  # 1 Jul 2026 has matured now; 1 Jul 2025 left the 12 months
    assert windows(agg, metric) == {"cohort_12m": 2.0, "cohort_quarter": 1.0}
    agg.set_as_of(date(2026, 12, 31))  # quarter July-September has matured
    assert windows(agg, metric) == {"cohort_12m": 2.0, "cohort_quarter": 1.0}
    assert agg.series_count() == 2


def _random_contributions(seed: int, n: int, first: date, days: int) -> list[Contribution]:
    """``n`` keys' flows (an ordinary metric in two label sets, a cohort metric; whole and
    fractional amounts) dated over ``days`` days from ``first``."""
    import random
    from datetime import timedelta
    rng = random.Random(seed)
    cohort = "casewatch_cohort_referrals"
    other = (("la", "E06000004"), ("team", "cin_2"))
    out = []
    for _ in range(n):
        f = {}
        for _ in range(rng.randint(1, 4)):
            key = (rng.choice((M, cohort)), rng.choice((LAB, other)), first + timedelta(days=rng.randrange(days)))
            f[key] = f.get(key, 0.0) + rng.choice((1.0, 1.0, 0.5, 0.1, 2.3))
        out.append(Contribution(flows=f))
    return out


def test_moving_day_by_day_equals_an_aggregate_made_on_each_day():
    # set_as_of moves each window by the days leaving and entering it (and starts a period anew on
    # its first day); an Aggregate made on the day sums the same flows into its windows directly.
    # Over two and a half years: month, quarter and financial-year starts, 29 February, cohort
    # windows that jump a quarter; keys replaced and removed on the way; a jump of 40 days and one
    # backwards (both re-sum every bucket).
    from datetime import timedelta
    contributions = _random_contributions(7, 300, date(2023, 1, 1), 4 * 365)
    day = date(2024, 1, 20)
    moved = Aggregate(CAL, day)
    for c in contributions:
        moved.apply(None, c)
    live = list(contributions)
    replacements = iter(_random_contributions(8, 200, date(2023, 1, 1), 4 * 365))
    steps = [1] * 700 + [3, 40, -25, 2, 1, 1]
    compared = 0
    for i, step in enumerate(steps):
        day += timedelta(days=step)
        moved.set_as_of(day)
        if i % 5 == 0:  # a key's flows change (an event came), one goes (a key dropped)
            k = i % len(live)
            new = next(replacements)
            moved.apply(live[k], new)
            live[k] = new
        if i % 37 == 0:
            moved.apply(live.pop(), None)
        fresh = Aggregate(CAL, day)
        for c in live:
            fresh.apply(None, c)
        got = {(m, tuple(sorted(labels.items()))): v for m, labels, v in moved.samples()}
        want = {(m, tuple(sorted(labels.items()))): v for m, labels, v in fresh.samples()}
        assert set(want) <= set(got) and all(got[k] == 0.0 for k in set(got) - set(want)), day
        assert {k: got[k] for k in want} == want, day
        compared += 1
    assert compared == len(steps) and any(v for v in want.values())


def test_growing_maxima_count_working_days_from_their_earliest_start():
    # Contribution.growing: a maximum whose value on each day is calendar.elapsed(start, day); the
    # series takes the largest over keys, with the keys' fixed values, and stays (0) when all go.
    metric = "casewatch_drift_max_workdays"
    key = (metric, LAB + (("case_type", "cin"),))
    early = Contribution(growing={key: date(2026, 3, 2)})    # a Monday
    late = Contribution(growing={key: date(2026, 3, 16)})
    fixed = Contribution(stocks={key: 12.0})
    agg = Aggregate(CAL, date(2026, 3, 20))
    for c in (late, fixed):
        agg.apply(None, c)

    def value():
        [v] = [v for m, _, v in agg.samples() if m == metric]
        return v

    assert value() == 12.0                      # late: 16..19 March, 4 working days
    agg.apply(None, early)
    assert value() == 14.0                      # 2..19 March: 14 working days
    agg.set_as_of(date(2026, 3, 23))            # the weekend does not count, the Friday does
    assert value() == 15.0
    agg.apply(early, Contribution(growing={key: date(2026, 3, 9)}))
    assert value() == 12.0                      # 9..20 March: 10 working days, under the fixed 12
    agg.set_as_of(date(2026, 4, 10))            # 9 March..9 April less Good Friday (3 April)
    assert value() == 22.0
    agg.apply(fixed, None)
    agg.apply(Contribution(growing={key: date(2026, 3, 9)}), None)
    agg.apply(late, None)
    assert value() == 0.0 and agg.series_count() == 1
