"""Reading a measure's figures for a period from Prometheus.

Flow figures of a quarter are the ``window="quarter"`` series on the quarter's last day; of a
two-month period, the sum of the two ``window="month"`` values on each month's last day. A ratio is
the sum of its numerators over the sum of its denominators (the recording rules'
``numerator_la`` / ``denominator_la``: for a quarter this is exactly ``ratio_la``). Snapshots are
read on the period's last day. ``None`` = Prometheus has no sample there (never a zero).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from casewatch.packs.catalogue import Breakdown, Measure
from casewatch.packs.periods import Period, last_quarters
from casewatch.packs.population import PER
from casewatch.packs.source import PrometheusSource
from dashboards.measures import RATIO_BY_NAME


def _sel(*parts: str) -> str:
    return "{" + ", ".join(p for p in parts if p) + "}"


def expressions(m: Measure, la: str, window: str | None) -> tuple[str, str | None]:
    """(numerator or count expression, denominator expression or None) for one reading."""
    la_m = f'la="{la}"'
    win = f'window="{window}"' if window else ""
    if m.kind in ("count", "stock"):
        return f"sum({m.source}{_sel(la_m, win if m.kind == 'count' else '', m.selector)})", None
    rule = RATIO_BY_NAME[m.source]
    num_win = win if ("window" in rule.numerator_by) else ""
    den_win = win if ("window" in rule.by) else ""
    num = f"sum({rule.record('numerator_la')}{_sel(la_m, num_win, m.selector)})"
    den_sel = m.selector if any(m.selector.startswith(lbl) for lbl in rule.by) else ""
    den = f"sum({rule.record('denominator_la')}{_sel(la_m, den_win, den_sel)})"
    return num, den


@dataclass
class Reading:
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    missing: list[str] = field(default_factory=list)
    undefined: bool = False   # a ratio over a denominator of 0 (printed z, not a missing figure)


def _combine(parts: list[tuple[float | None, float | None]], ratio: bool) -> Reading:
    nums = [p[0] for p in parts]
    dens = [p[1] for p in parts]
    if any(n is None for n in nums) or (ratio and any(d is None for d in dens)):
        return Reading(None)
    num = sum(nums)
    if not ratio:
        return Reading(num, num)
    den = sum(dens)
    return Reading(num / den if den > 0 else None, num, den, undefined=den <= 0)


def _or_zero(src: PrometheusSource, la: str, day: date, value: float | None) -> float | None:
    """An absent series on a day that has figures is 0 (stocks are published only while non-zero)."""
    if value is None and src.has_data(la, day):
        return 0.0
    return value


def per_children(m: Measure, la: str, reading: Reading, populations: dict[str, int]) -> Reading:
    """A count as a rate per 10,000 children aged 0-17 (``m.per_10k``): the value is the rate, the
    numerator the count and the denominator the population; no population = not available."""
    if not m.per_10k or reading.value is None:
        return reading
    population = populations.get(la)
    if population is None:
        return Reading(None, missing=[f"{m.title}: no child population for {la}: set "
                                      f"CASEWATCH_CHILD_POPULATION={la}=<children aged 0-17>"])
    return Reading(reading.value * PER / population, reading.value, float(population))


def read(src: PrometheusSource, m: Measure, la: str, period: Period) -> Reading:
    """The measure's value for the period."""
    if m.is_flow:
        if period.kind == "quarter":
            ends = [(period.end, "quarter")]
        else:
            ends = [(d, "month") for d in period.month_ends()]
    else:
        ends = [(period.end, None)]
    parts = []
    for day, window in ends:
        num_e, den_e = expressions(m, la, window)
        parts.append((_or_zero(src, la, day, src.scalar(num_e, day)),
                      _or_zero(src, la, day, src.scalar(den_e, day)) if den_e else None))
    reading = per_children(m, la, _combine(parts, m.is_ratio), src.populations)
    if reading.value is None and not reading.undefined and not reading.missing:
        reading.missing.append(f"{m.title}: no figure in Prometheus for {period.label} "
                               f"(read on {period.end:%d %B %Y})")
    return reading


def rolling_12m(src: PrometheusSource, m: Measure, la: str, period: Period) -> Reading | None:
    """The 12 months to the period's end (flows only; None = not applicable)."""
    if not m.is_flow:
        return None
    num_e, den_e = expressions(m, la, "12m")
    end = period.end
    return _combine([(_or_zero(src, la, end, src.scalar(num_e, end)),
                      _or_zero(src, la, end, src.scalar(den_e, end)) if den_e else None)], m.is_ratio)


def trend(src: PrometheusSource, m: Measure, la: str, period: Period, n: int = 8) -> list[tuple[Period, Reading]]:
    """The last ``n`` quarters (range queries, a step of a day, read at each quarter's end)."""
    quarters = last_quarters(period, n)
    days = [q.end for q in quarters]
    num_e, den_e = expressions(m, la, "quarter" if m.is_flow else None)
    nums = src.days(num_e, days)
    dens = src.days(den_e, days) if den_e else {}
    return [(q, per_children(m, la, _combine([(_or_zero(src, la, q.end, nums[q.end]),
                                               _or_zero(src, la, q.end, dens.get(q.end)) if den_e else None)],
                                             m.is_ratio), src.populations))
            for q in quarters]


def read_breakdown(src: PrometheusSource, b: Breakdown, la: str, period: Period) -> dict[str, float] | None:
    """The parts of a breakdown for the period (None: no data)."""
    if b.kind == "count":
        ends = [(period.end, "quarter")] if period.kind == "quarter" else \
            [(d, "month") for d in period.month_ends()]
    else:
        ends = [(period.end, None)]
    total: dict[str, float] = {}
    for day, window in ends:
        win = f'window="{window}"' if window else ""
        found = src.by(f"sum by ({b.label_name}) ({b.metric}{_sel(f'la={chr(34)}{la}{chr(34)}', win)})",
                       day, b.label_name)
        if not found and not src.has_data(la, day):
            return None
        for k, v in found.items():
            total[k] = total.get(k, 0.0) + v
    return total


def snapshot_by(src: PrometheusSource, expr: str, day: date, label: str) -> dict[str, float]:
    return src.by(expr, day, label)
