"""Reporting periods (financial quarters from 1 April; two-month Cabinet periods) and the instant a
day is read at. Expected dates worked by hand from the financial year (Q1 = April to June)."""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import pytest

from casewatch.packs.periods import PeriodError, last_quarters, parse_period
from casewatch.packs.source import at


@pytest.mark.parametrize("text, start, end, previous, year_before", [
    ("2026-Q1", date(2026, 4, 1), date(2026, 6, 30), date(2026, 1, 1), date(2025, 4, 1)),
    ("2026-Q3", date(2026, 10, 1), date(2026, 12, 31), date(2026, 7, 1), date(2025, 10, 1)),
    ("2026-Q4", date(2027, 1, 1), date(2027, 3, 31), date(2026, 10, 1), date(2026, 1, 1)),
    ("2026-09/10", date(2026, 9, 1), date(2026, 10, 31), date(2026, 7, 1), date(2025, 9, 1)),
    ("2026-12/01", date(2026, 12, 1), date(2027, 1, 31), date(2026, 10, 1), date(2025, 12, 1)),
    ("2024-01/02", date(2024, 1, 1), date(2024, 2, 29), date(2023, 11, 1), date(2023, 1, 1)),
])
def test_periods(text, start, end, previous, year_before):
    p = parse_period(text)
    assert (p.start, p.end, p.previous().start, p.year_before().start) == (start, end, previous, year_before)
    assert p.label == text


def test_last_eight_quarters_end_with_the_period():
    quarters = last_quarters(parse_period("2026-Q2"))
    assert [q.label for q in quarters][0] == "2024-Q3" and quarters[-1].end == date(2026, 9, 30)
    assert len(quarters) == 8 and all(b.start == a.end + timedelta(days=1) for a, b in zip(quarters, quarters[1:]))


@pytest.mark.parametrize("text", ["2026-Q5", "2026-09/11", "Q3 2026", "2026-13/01", ""])
def test_bad_periods(text):
    with pytest.raises(PeriodError):
        parse_period(text)


def test_a_day_before_today_is_read_at_its_sample_and_today_live():
    # "today" is the deployment's (CASEWATCH_FIXED_TODAY or London's date), handed in
    today = date(2026, 11, 2)
    yesterday = today - timedelta(days=1)
    assert at(yesterday, today) == int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()) == 1_793_491_200
    assert abs(at(today, today) - time.time()) < 5
    assert abs(at(today + timedelta(days=1), today) - time.time()) < 5
