"""The sum of many keys' contributions, as the series an exporter publishes.

``Aggregate.apply(old, new)`` swaps one key's contribution in O(size of that contribution).
Flows are kept in daily buckets per series plus the three running window sums, so ``samples()``
costs O(number of series) and ``set_as_of()`` (once a day) re-sums the buckets.

Windows, as of ``as_of`` (flows dated after ``as_of`` count in none):

* ``28d``:  ``as_of - 27 days`` … ``as_of`` (28 days including today);
* ``12m``:  ``(as_of - 12 calendar months, as_of]``;
* ``fytd``: 1 April of the financial year containing ``as_of`` … ``as_of``;
* ``month``: the 1st of ``as_of``'s calendar month … ``as_of`` (month to date);
* ``quarter``: the first day of ``as_of``'s quarter (1 January, 1 April, 1 July, 1 October: the
  calendar quarters, which are also the financial year's quarters) … ``as_of`` (quarter to date).

So on a month's (a quarter's) last day the ``month`` (``quarter``) value is that whole period's
figure, and Prometheus's sample of that day keeps it.

The cohort figures (``COHORT_METRICS``: flows dated on the referral whose later outcome they
follow) are published only in matured cohorts (``COHORT_WINDOWS``), never in the windows above:

* ``cohort_12m``: referrals dated ``(as_of - 15 months, as_of - 3 months]``: 12 months of
  referrals, the latest of which has had 3 calendar months to reach an S47 or a plan;
* ``cohort_quarter``: the latest calendar quarter that ended on or before ``as_of - 3 months``
  (on 30 September: April-June; on 29 September: January-March).

Stocks are summed, except the ``*_max_*`` metrics (``MAX_METRICS``), which are the maximum over
keys (0 when no key holds one). A series once seen keeps being published (value 0) so Prometheus
does not see it vanish; discarding the Aggregate (a revoked partition) drops them all. A key's
growing maxima (``Contribution.growing``: ``elapsed(start, as_of)``) are kept as their starts: the
earliest start of a series gives the largest count, read off for ``as_of`` when the series is read.

``set_as_of`` moves each window by the days that leave and enter it (a window whose period begins
anew, e.g. the month on the 1st, is summed afresh), so a daily move costs O(series), not
O(buckets); a move backwards, or of more than a few days, re-sums every bucket.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable, Iterator

from casewatch.domain.calendar import WorkingDayCalendar, add_calendar_months
from casewatch.domain.indicators import COHORT_METRICS, MAX_METRICS, Contribution

__all__ = ["Aggregate", "WINDOWS", "COHORT_WINDOWS", "COHORT_MATURITY_MONTHS", "window_bounds",
           "cohort_bounds", "combine_samples"]

WINDOWS = ("28d", "12m", "fytd", "month", "quarter")
COHORT_WINDOWS = ("cohort_12m", "cohort_quarter")
COHORT_MATURITY_MONTHS = 3
_N = len(WINDOWS)
_NC = len(COHORT_WINDOWS)
Labels = tuple[tuple[str, str], ...]
_ROUND = 9


def window_bounds(as_of: date) -> tuple[date, ...]:
    """Inclusive first days of the windows (``WINDOWS`` order) ending on ``as_of``."""
    first_28d = as_of - timedelta(days=27)
    first_12m = add_calendar_months(as_of, -12) + timedelta(days=1)
    first_fytd = date(as_of.year if as_of.month >= 4 else as_of.year - 1, 4, 1)
    first_month = as_of.replace(day=1)
    first_quarter = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    return first_28d, first_12m, first_fytd, first_month, first_quarter


def cohort_bounds(as_of: date) -> tuple[tuple[date, date], ...]:
    """Inclusive (first, last) days of the cohort windows (``COHORT_WINDOWS`` order)."""
    last = add_calendar_months(as_of, -COHORT_MATURITY_MONTHS)
    first_12m = add_calendar_months(last, -12) + timedelta(days=1)
    quarter_start = date(last.year, 3 * ((last.month - 1) // 3) + 1, 1)
    if add_calendar_months(quarter_start, 3) - timedelta(days=1) == last:  # last is a quarter's end
        quarter = (quarter_start, last)
    else:
        quarter = (add_calendar_months(quarter_start, -3), quarter_start - timedelta(days=1))
    return (first_12m, last), quarter


def _clean(value: float) -> float:
    value = round(value, _ROUND)
    return 0.0 if value == 0 else value


def _count(counts: dict, value, sign: int) -> None:
    """A multiset's count of ``value`` up or down by one; a count of 0 leaves the set."""
    n = counts.get(value, 0) + sign
    if n > 0:
        counts[value] = n
    else:
        counts.pop(value, None)


class Aggregate:
    def __init__(self, calendar: WorkingDayCalendar, as_of: date):
        self.calendar = calendar
        self.as_of = as_of
        self._bounds = window_bounds(as_of)
        self._cohort = cohort_bounds(as_of)
        self._buckets: dict[tuple[str, Labels], dict[date, float]] = {}
        self._windows: dict[tuple[str, Labels], list[float]] = {}
        self._stocks: dict[tuple[str, Labels], float] = {}
        self._maxima: dict[tuple[str, Labels], dict[float, int]] = {}
        self._growing: dict[tuple[str, Labels], dict[date, int]] = {}  # growing maxima: start -> keys

    # -- updates -------------------------------------------------------------------------------
    def apply(self, old: Contribution | None, new: Contribution | None) -> None:
        """Replace one key's contribution ``old`` by ``new`` (either may be None). When both are
        given only the entries that differ are touched: a new event usually changes a few of a
        child's flows and stocks, not all of them."""
        if old is not None and new is not None:
            self._replace(old, new)
            return
        if old is not None:
            self._add(old, -1)
        if new is not None:
            self._add(new, +1)

    def _replace(self, old: Contribution, new: Contribution) -> None:
        old_flows, new_flows = old.flows, new.flows
        changed: dict = {}
        if new.follows is not None and new.follows is old.added:  # the next result of the same kept walk
            changed = new.added
        elif old_flows is not new_flows:  # (the same flows: a recount on a later day of an unchanged history)
            for key, value in new_flows.items():
                before = old_flows.get(key)
                if before is None:
                    changed[key] = value
                elif before != value:
                    changed[key] = value - before
            for key, value in old_flows.items():
                if key not in new_flows:
                    changed[key] = -value
        if old.growing or new.growing:
            self._replace_growing(old.growing, new.growing)
        old_stocks, new_stocks = old.stocks, new.stocks
        stock_changes: list[tuple] = []
        for key, value in new_stocks.items():
            before = old_stocks.get(key)
            if before != value:
                stock_changes.append((key, before, value))
        for key, value in old_stocks.items():
            if key not in new_stocks:
                stock_changes.append((key, value, None))
        if changed:
            self._add_flows(changed, 1)
        for key, before, after in stock_changes:
            if key[0] in MAX_METRICS:
                if before is not None:
                    self._count_maximum(key, before, -1)
                if after is not None:
                    self._count_maximum(key, after, +1)
            else:
                self._stocks[key] = self._stocks.get(key, 0.0) + (after or 0.0) - (before or 0.0)

    def _add(self, c: Contribution, sign: int) -> None:
        self._add_flows(c.flows, sign)
        for key, value in c.stocks.items():
            if key[0] in MAX_METRICS:
                self._count_maximum(key, value, sign)
            else:
                self._stocks[key] = self._stocks.get(key, 0.0) + sign * value
        for key, start in c.growing.items():
            self._count_growing(key, start, sign)

    def _replace_growing(self, old: dict, new: dict) -> None:
        for key, start in new.items():
            before = old.get(key)
            if before != start:
                if before is not None:
                    self._count_growing(key, before, -1)
                self._count_growing(key, start, +1)
        for key, start in old.items():
            if key not in new:
                self._count_growing(key, start, -1)

    def _count_growing(self, key, start: date, sign: int) -> None:
        """How many keys hold a growing maximum from ``start``, up or down by one (the series is
        published from then on, like any maximum)."""
        self._maxima.setdefault(key, {})
        _count(self._growing.setdefault(key, {}), start, sign)

    def _maximum(self, key, counts: dict[float, int]) -> float:
        value = max(counts) if counts else 0.0
        starts = self._growing.get(key)
        if starts:
            grown = float(self.calendar.elapsed(min(starts), self.as_of))
            if grown > value:
                value = grown
        return value

    def _count_maximum(self, key, value: float, sign: int) -> None:
        """How many keys hold ``value`` for a maximum series, up or down by one."""
        _count(self._maxima.setdefault(key, {}), value, sign)

    def _add_flows(self, flows, sign: int) -> None:
        as_of = self.as_of
        bounds = self._bounds
        for (metric, labels, d), amount in flows.items():
            key = (metric, labels)
            amount *= sign
            buckets = self._buckets.get(key)
            if buckets is None:
                buckets = self._buckets[key] = {}
                self._windows[key] = [0.0] * (_NC if metric in COHORT_METRICS else _N)
            buckets[d] = buckets.get(d, 0.0) + amount
            if metric in COHORT_METRICS:
                sums = self._windows[key]
                for i, (first, last) in enumerate(self._cohort):
                    if first <= d <= last:
                        sums[i] += amount
            elif d <= as_of:
                sums = self._windows[key]
                for i, first in enumerate(bounds):
                    if d >= first:
                        sums[i] += amount

    def set_as_of(self, as_of: date) -> None:
        """Move "today": each window by the days that leave and enter it (forward by up to
        ``_MOVE_DAYS`` days), else every window re-summed from the daily buckets."""
        before = self.as_of
        old = tuple(zip(self._bounds, (before,) * _N)), self._cohort
        self.as_of = as_of
        self._bounds = window_bounds(as_of)
        self._cohort = cohort_bounds(as_of)
        if as_of == before:
            return
        if not before < as_of <= before + timedelta(days=_MOVE_DAYS):
            self._resum()
            return
        new = tuple(zip(self._bounds, (as_of,) * _N)), self._cohort
        plans = tuple(tuple(_window_move(o, n) for o, n in zip(olds, news)) for olds, news in zip(old, new))
        main, cohort = plans
        for key, buckets in self._buckets.items():
            sums = self._windows[key]
            get = buckets.get
            for i, (keep, leave, enter, first, last) in enumerate(cohort if key[0] in COHORT_METRICS else main):
                if keep:
                    total = sums[i]
                    for d in leave:
                        amount = get(d)
                        if amount is not None:
                            total -= amount
                    for d in enter:
                        amount = get(d)
                        if amount is not None:
                            total += amount
                elif len(buckets) < len(enter):
                    total = 0.0
                    for d, amount in buckets.items():
                        if first <= d <= last:
                            total += amount
                else:
                    total = 0.0
                    for d in enter:
                        amount = get(d)
                        if amount is not None:
                            total += amount
                sums[i] = total

    def _resum(self) -> None:
        as_of = self.as_of
        bounds = self._bounds
        for key, buckets in self._buckets.items():
            if key[0] in COHORT_METRICS:
                sums = [0.0] * _NC
                for d, amount in buckets.items():
                    for i, (first, last) in enumerate(self._cohort):
                        if first <= d <= last:
                            sums[i] += amount
                self._windows[key] = sums
                continue
            sums = [0.0] * _N
            for d, amount in buckets.items():
                if d > as_of:
                    continue
                for i, first in enumerate(bounds):
                    if d >= first:
                        sums[i] += amount
            self._windows[key] = sums

    def merge(self, other: "Aggregate") -> None:
        """Add ``other``'s keys into this aggregate (windows follow this aggregate's ``as_of``)."""
        for key, buckets in other._buckets.items():
            mine = self._buckets.setdefault(key, {})
            self._windows.setdefault(key, [0.0] * (_NC if key[0] in COHORT_METRICS else _N))
            for d, amount in buckets.items():
                mine[d] = mine.get(d, 0.0) + amount
        for key, value in other._stocks.items():
            self._stocks[key] = self._stocks.get(key, 0.0) + value
        for key, counts in other._maxima.items():
            mine_counts = self._maxima.setdefault(key, {})
            for value, n in counts.items():
                mine_counts[value] = mine_counts.get(value, 0) + n
        for key, starts in other._growing.items():
            mine_starts = self._growing.setdefault(key, {})
            for start, n in starts.items():
                mine_starts[start] = mine_starts.get(start, 0) + n
        self._resum()

    # -- reading -------------------------------------------------------------------------------
    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every series: each flow in every window, then the stocks."""
        for (metric, labels), sums in self._windows.items():
            for window, value in zip(COHORT_WINDOWS if metric in COHORT_METRICS else WINDOWS, sums):
                out = dict(labels)
                out["window"] = window
                yield metric, out, _clean(value)
        for (metric, labels), value in self._stocks.items():
            yield metric, dict(labels), _clean(value)
        for key, counts in self._maxima.items():
            yield key[0], dict(key[1]), _clean(self._maximum(key, counts))

    def series(self) -> Iterator[tuple[str, Labels, float]]:
        """The same series as :meth:`samples`, with labels as sorted ``(name, value)`` tuples (the
        form the exposition needs; no dictionaries are built). ``window`` sorts after every other
        label name, so appending it keeps the order."""
        for (metric, labels), sums in self._windows.items():
            for window_label, value in zip(_COHORT_WINDOW_LABELS if metric in COHORT_METRICS else _WINDOW_LABELS,
                                           sums):
                yield metric, labels + window_label, _clean(value)
        for (metric, labels), value in self._stocks.items():
            yield metric, labels, _clean(value)
        for key, counts in self._maxima.items():
            yield key[0], key[1], _clean(self._maximum(key, counts))

    def series_count(self) -> int:
        return sum(len(sums) for sums in self._windows.values()) + len(self._stocks) + len(self._maxima)


_MOVE_DAYS = 31  # set_as_of moves windows by their days up to this far; further, it re-sums every bucket


def _days(first: date, last: date) -> tuple[date, ...]:
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


def _window_move(old: tuple[date, date], new: tuple[date, date]) -> tuple:
    """How one window goes from ``old`` to ``new`` (inclusive first and last days, both moved
    forward): ``(True, days leaving, days entering, first, last)`` when they overlap, else
    ``(False, (), the new window's days, first, last)``: summed afresh (a period begun anew)."""
    (first0, last0), (first1, last1) = old, new
    if first1 > last0 or first1 < first0 or last1 < last0:
        return False, (), _days(first1, last1), first1, last1
    return True, _days(first0, first1 - timedelta(days=1)), _days(last0 + timedelta(days=1), last1), first1, last1


_WINDOW_LABELS = tuple(((("window", w),)) for w in WINDOWS)
_COHORT_WINDOW_LABELS = tuple(((("window", w),)) for w in COHORT_WINDOWS)


def combine_series(parts: Iterable[Iterable[tuple[str, Labels, float]]]) -> dict[tuple[str, Labels], float]:
    """:func:`combine_samples` for :meth:`Aggregate.series` output."""
    totals: dict[tuple[str, Labels], float] = {}
    get = totals.get
    for series in parts:
        for metric, labels, value in series:
            key = (metric, labels)
            if metric in MAX_METRICS:
                totals[key] = max(get(key, 0.0), value)
            else:
                previous = get(key)
                totals[key] = value if previous is None else _clean(previous + value)
    return totals


def combine_samples(parts: Iterable[Iterable[tuple[str, dict[str, str], float]]]
                    ) -> dict[tuple[str, Labels], float]:
    """Combine the samples of several aggregates (e.g. one per partition): sums, except the
    ``MAX_METRICS`` series, which take the maximum."""
    totals: dict[tuple[str, Labels], float] = {}
    for samples in parts:
        for metric, labels, value in samples:
            key = (metric, tuple(sorted(labels.items())))
            if metric in MAX_METRICS:
                totals[key] = max(totals.get(key, 0.0), value)
            else:
                totals[key] = _clean(totals.get(key, 0.0) + value)
    return totals
