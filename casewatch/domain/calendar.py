"""Working days in England (docs/definitions.md, "Working days") and calendar-month arithmetic.

A working day is Monday to Friday except the bank holidays of England and Wales
(``holidays.UK(subdiv="ENG")``, version pinned), adjusted by configured ``extra_holidays`` and
``removed_holidays`` for one-off days announced at short notice.

Counting convention (the one convention for every statutory timescale):

* ``elapsed(start, end)`` = ``numpy.busday_count(start, end, weekmask="1111100", holidays=H)``:
  the working days in ``[start, end)``. Same day = 0. A start on a weekend or holiday behaves as
  if rolled forward to the next working day. ``end`` before ``start`` gives minus the working
  days in ``(end, start]`` (numpy's convention).
* ``add(start, n)`` = ``numpy.busday_offset(start, n, roll="forward", holidays=H)``: roll the start
  forward to a working day (that day is day 0), then move ``n`` working days.
* On time ⇔ ``elapsed(start, done) <= n`` ⇔ ``done <= add(start, n)``.

Both run in O(log h) (h = number of bank holidays known) with integer arithmetic on proleptic
ordinals: no ``holidays`` look-up and no loop over days on the hot path.
"""
from __future__ import annotations

import calendar as _calendar
from bisect import bisect_left
from datetime import date, timedelta
from functools import lru_cache
from typing import Iterable

import holidays as _holidays

from casewatch.domain.exceptions import CalendarError

__all__ = ["WorkingDayCalendar", "add_calendar_months", "as_date"]


def as_date(value: date | str) -> date:
    """A ``date`` from a ``date`` or an ISO ``YYYY-MM-DD`` string (a datetime string is cut to its
    date part: callers give Europe/London local dates)."""
    if isinstance(value, date):
        return value
    return date.fromisoformat(value[:10])


def add_calendar_months(d: date, n: int) -> date:
    """``d`` plus ``n`` calendar months, the day clamped to the end of the target month (the
    ``dateutil.relativedelta(months=n)`` rule: 31 Jan + 1 month = 28/29 Feb)."""
    m0 = d.month - 1 + n
    year = d.year + m0 // 12
    month = m0 % 12 + 1
    last = _calendar.monthrange(year, month)[1]
    return date(year, month, d.day if d.day <= last else last)


def _weekdays_before(ordinal: int) -> int:
    """Number of Mondays–Fridays among ordinals ``[1, ordinal)`` (ordinal 1 = Monday 1 Jan 0001)."""
    k = ordinal - 1
    return (k // 7) * 5 + min(k % 7, 5)


def _weekday_with_count(k: int) -> int:
    """The weekday ordinal with exactly ``k`` weekdays before it."""
    return 1 + (k // 5) * 7 + k % 5


class WorkingDayCalendar:
    """England and Wales working days over ``first_year``–``last_year`` (bank holidays outside that
    range are unknown: weekends only)."""

    def __init__(self, extra_holidays: Iterable[date | str] = (), removed_holidays: Iterable[date | str] = (),
                 first_year: int = 2010, last_year: int = 2035):
        if last_year < first_year:
            raise CalendarError("last_year is before first_year")
        self.first_year = first_year
        self.last_year = last_year
        known = set(_holidays.UK(subdiv="ENG", years=range(first_year, last_year + 1)).keys())
        known |= {as_date(d) for d in extra_holidays}
        known -= {as_date(d) for d in removed_holidays}
        # Only holidays on a Monday-Friday change any count; weekends are masked anyway.
        self._holiday_ordinals = sorted(d.toordinal() for d in known if d.weekday() < 5)
        self._holiday_set = frozenset(self._holiday_ordinals)
        # Due dates repeat (the same few limits from the same start dates): answers are kept.
        self.add = lru_cache(maxsize=200_000)(self._add)

    # -- the two conventions ------------------------------------------------------------------
    def _count_before(self, ordinal: int) -> int:
        """Working days among ordinals ``[1, ordinal)``."""
        return _weekdays_before(ordinal) - bisect_left(self._holiday_ordinals, ordinal)

    def is_working_day(self, d: date) -> bool:
        o = d.toordinal()
        return (o - 1) % 7 < 5 and o not in self._holiday_set

    def elapsed(self, start: date, end: date) -> int:
        """Working days in ``[start, end)``; when ``end < start``, minus the working days in
        ``(end, start]`` (both exactly ``numpy.busday_count``)."""
        return self.elapsed_ordinals(start.toordinal(), end.toordinal())

    def elapsed_ordinals(self, start: int, end: int) -> int:
        if end >= start:
            return self._count_before(end) - self._count_before(start)
        return self._count_before(end + 1) - self._count_before(start + 1)

    def add(self, start: date, n: int) -> date:
        """``numpy.busday_offset(start, n, roll="forward")`` (memoised per calendar in ``__init__``)."""
        return self._add(start, n)

    def _add(self, start: date, n: int) -> date:
        return date.fromordinal(self._nth_working_day(self._count_before(start.toordinal()) + n))

    def roll_forward(self, d: date) -> date:
        """``d`` if it is a working day, else the next working day."""
        return self.add(d, 0)

    def _nth_working_day(self, target: int) -> int:
        """The working-day ordinal with exactly ``target`` working days before it."""
        k = target
        hol = self._holiday_ordinals
        while True:
            x = _weekday_with_count(k)
            h = bisect_left(hol, x)
            have = k - h  # working days before x
            if have < target:
                k = target + h  # skip the holidays found so far (k only grows)
            elif x in self._holiday_set:
                k += 1
            else:
                return x

    @property
    def covered_until_year(self) -> int:
        """The last year whose bank holidays this calendar knows."""
        return self.last_year

    def next_day(self, d: date) -> date:
        return d + timedelta(days=1)
