"""England working days: the worked examples of domain.md §3, and numpy's busday functions as an
independent oracle over 2012-2030."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from casewatch.domain.calendar import WorkingDayCalendar, add_calendar_months

CAL = WorkingDayCalendar()
HOLIDAYS = sorted({d for d in __import__("holidays").UK(subdiv="ENG", years=range(2010, 2036)).keys()})
NP_HOLIDAYS = np.array(HOLIDAYS, dtype="datetime64[D]")


@pytest.mark.parametrize("start,n,due", [
    (date(2025, 12, 19), 45, date(2026, 2, 25)),   # Christmas, Boxing Day, New Year
    (date(2026, 3, 27), 15, date(2026, 4, 21)),    # Good Friday, Easter Monday
    (date(2026, 4, 2), 20, date(2026, 5, 5)),      # Easter and May Day
    (date(2026, 12, 21), 15, date(2027, 1, 14)),   # Boxing Day substitute Mon 28 Dec 2026
])
def test_worked_examples(start, n, due):
    assert CAL.add(start, n) == due
    assert CAL.elapsed(start, due) == n
    assert CAL.elapsed(start, due + timedelta(days=1)) == n + 1


def test_same_day_is_zero_and_weekend_start_rolls_forward():
    assert CAL.elapsed(date(2026, 3, 4), date(2026, 3, 4)) == 0
    # Sat 7 Mar 2026 rolls to Mon 9 Mar, which is day 0; + 1 = Tue 10 Mar
    assert CAL.add(date(2026, 3, 7), 1) == date(2026, 3, 10)
    assert CAL.elapsed(date(2026, 3, 7), date(2026, 3, 10)) == 1


def test_end_before_start_is_negative():
    assert CAL.elapsed(date(2026, 3, 10), date(2026, 3, 9)) == -1


def test_is_working_day():
    assert not CAL.is_working_day(date(2026, 12, 28))  # substitute Boxing Day
    assert not CAL.is_working_day(date(2026, 12, 26))  # Saturday
    assert not CAL.is_working_day(date(2023, 5, 8))    # Coronation
    assert CAL.is_working_day(date(2026, 12, 29))


def test_overrides():
    cal = WorkingDayCalendar(extra_holidays=["2026-06-01"], removed_holidays=[date(2026, 5, 4)])
    assert not cal.is_working_day(date(2026, 6, 1))
    assert cal.is_working_day(date(2026, 5, 4))
    assert cal.elapsed(date(2026, 5, 1), date(2026, 6, 2)) == CAL.elapsed(date(2026, 5, 1), date(2026, 6, 2))


def test_covered_until_year():
    assert CAL.covered_until_year == 2035
    assert WorkingDayCalendar(first_year=2020, last_year=2027).covered_until_year == 2027


@pytest.mark.parametrize("d,n,expected", [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 2, 29), -12, date(2023, 2, 28)),
    (date(2026, 4, 21), 3, date(2026, 7, 21)),
    (date(2025, 11, 30), 3, date(2026, 2, 28)),
    (date(2026, 3, 15), -27, date(2023, 12, 15)),
])
def test_add_calendar_months(d, n, expected):
    assert add_calendar_months(d, n) == expected


dates = st.dates(min_value=date(2012, 1, 1), max_value=date(2030, 12, 31))


@settings(max_examples=400, deadline=None)
@given(dates, dates)
def test_elapsed_matches_numpy_busday_count(a, b):
    assert CAL.elapsed(a, b) == int(np.busday_count(a, b, weekmask="1111100", holidays=NP_HOLIDAYS))


@settings(max_examples=400, deadline=None)
@given(dates, st.integers(min_value=-300, max_value=300))
def test_add_matches_numpy_busday_offset(a, n):
    expected = np.busday_offset(a, n, roll="forward", weekmask="1111100", holidays=NP_HOLIDAYS)
    assert CAL.add(a, n) == expected.astype(date)
