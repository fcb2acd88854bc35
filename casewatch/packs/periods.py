"""Reporting periods of the packs: financial quarters and two-month (Cabinet cycle) periods.

* ``2026-Q3``: quarter 3 of the financial year that begins on 1 April 2026 (Q1 = April-June,
  Q2 = July-September, Q3 = October-December, Q4 = January-March 2027).
* ``2026-09/10``: September and October 2026 (two consecutive calendar months; ``2026-12/01`` runs
  into January 2027).

A period's figures are read on its last day (docs/metrics.md: on a month's or quarter's last day the
``month`` / ``quarter`` window is that period's figure).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from casewatch.packs.exceptions import PeriodError  # noqa: F401 - also importable from here

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_TWO_MONTHS = re.compile(r"^(\d{4})-(\d{2})/(\d{2})$")


def month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


@dataclass(frozen=True)
class Period:
    kind: str                 # "quarter" | "two_months"
    start: date
    end: date                 # last day, inclusive

    @property
    def label(self) -> str:
        if self.kind == "quarter":
            fy = self.start.year if self.start.month >= 4 else self.start.year - 1
            q = ((self.start.month - 4) % 12) // 3 + 1
            return f"{fy}-Q{q}"
        return f"{self.start.year}-{self.start.month:02d}/{self.end.month:02d}"

    @property
    def slug(self) -> str:
        """The label as a file-name part (``2026-Q3``, ``2026-09-10``)."""
        return self.label.replace("/", "-")

    @property
    def title(self) -> str:
        span = f"{self.start:%B %Y}" if self.start.year == self.end.year else f"{self.start:%B %Y}"
        span = f"{self.start:%B} to {self.end:%B %Y}" if self.start.year == self.end.year else \
            f"{self.start:%B %Y} to {self.end:%B %Y}"
        if self.kind == "quarter":
            fy = int(self.label[:4])
            return f"Quarter {self.label[-1]} {fy}/{(fy + 1) % 100:02d} ({span})"
        return span

    def month_ends(self) -> list[date]:
        """The last day of every calendar month in the period."""
        out, (y, m) = [], (self.start.year, self.start.month)
        while date(y, m, 1) <= self.end:
            out.append(month_end(y, m))
            y, m = add_months(y, m, 1)
        return out

    def shifted(self, months: int) -> "Period":
        y, m = add_months(self.start.year, self.start.month, months)
        length = len(self.month_ends())
        ey, em = add_months(y, m, length - 1)
        return Period(self.kind, date(y, m, 1), month_end(ey, em))

    def previous(self) -> "Period":
        return self.shifted(-len(self.month_ends()))

    def year_before(self) -> "Period":
        return self.shifted(-12)


def quarter_containing(d: date) -> Period:
    m = (d.month - 1) // 3 * 3 + 1
    return Period("quarter", date(d.year, m, 1), month_end(d.year, m + 2))


def last_quarters(period: Period, n: int = 8) -> list[Period]:
    """The ``n`` calendar (= financial) quarters ending with the one that holds ``period``'s last day."""
    q = quarter_containing(period.end)
    return [q.shifted(-3 * i) for i in reversed(range(n))]


def parse_period(text: str) -> Period:
    text = (text or "").strip()
    if m := _QUARTER.match(text):
        fy, q = int(m.group(1)), int(m.group(2))
        y, mo = add_months(fy, 4, 3 * (q - 1))
        ey, em = add_months(y, mo, 2)
        return Period("quarter", date(y, mo, 1), month_end(ey, em))
    if m := _TWO_MONTHS.match(text):
        y, m1, m2 = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if not (1 <= m1 <= 12 and 1 <= m2 <= 12) or m2 != m1 % 12 + 1:
            raise PeriodError(f"{text!r} is not two consecutive months: write e.g. 2026-09/10")
        ey = y + (m2 < m1)
        return Period("two_months", date(y, m1, 1), month_end(ey, m2))
    raise PeriodError(f"{text!r} is not a period: write a financial quarter like 2026-Q3 "
                      f"(Q1 = April-June) or two months like 2026-09/10")
