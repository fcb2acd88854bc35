"""Regional collation: the published (small-number suppressed) figures of several authorities side
by side for a period, with the England reference. Each authority's column is read exactly as its
own Cabinet pack reads it; counts 1-5 are ``c`` and percentages with a numerator or denominator
under 6 are ``c``. No regional total is shown, so no suppressed cell can be worked back from one."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from casewatch.packs import figures
from casewatch.packs.catalogue import BLOCKS, cabinet_measures
from casewatch.packs.marks import fmt, fmt_reference
from casewatch.packs.periods import Period
from casewatch.packs.source import PrometheusSource
from casewatch.packs.suppression import SUPPRESSED, hide_ratio, suppress


@dataclass
class RegionSheet:
    las: list[str]
    period: Period
    blocks: list[dict]
    missing: list[str]
    generated_at: str
    queries: int


def build(src: PrometheusSource, las: list[str], period: Period) -> RegionSheet:
    measures = cabinet_measures(src.drift_limits)
    missing: list[str] = []
    values: dict[tuple[str, str], str] = {}
    for la in las:
        for m in measures:
            reading = figures.read(src, m, la, period)
            if reading.value is None and not reading.undefined:
                missing.append(f"{la}: {reading.missing[0]}" if reading.missing else f"{la}: {m.title}")
            if m.per_10k:   # the rate of a count shown as c would give the count back
                hidden = reading.value is not None and suppress({"v": reading.numerator})["v"] == SUPPRESSED
                values[(la, m.key)] = fmt(SUPPRESSED if hidden else reading.value, decimals=1)
            elif m.is_ratio:
                shown = "z" if reading.undefined else SUPPRESSED if (
                    reading.value is not None and hide_ratio(reading.numerator, reading.denominator)) else reading.value
                values[(la, m.key)] = fmt(shown, percent=m.percent, decimals=0 if m.percent else 1)
            else:
                values[(la, m.key)] = fmt(suppress({"v": reading.value})["v"])
    blocks = []
    for block, heading in BLOCKS:
        rows = [{"measure": m, "values": [values[(la, m.key)] for la in las],
                 "reference": fmt_reference(m.reference, m.percent)}
                for m in measures if m.block == block]
        blocks.append({"key": block, "heading": heading, "rows": rows})
    return RegionSheet(las, period, blocks, missing, datetime.now(timezone.utc).strftime("%d %B %Y %H:%M UTC"),
                       len(src.log))
