"""The Cabinet activity-and-performance pack: inputs, processes and outputs of a period.

For every measure: this period, the previous period, the same period last year, the 12 months to
the period's end, the national reference (with its year and source), a red/amber/green mark and a
trend over the last 8 quarters; headline charts; per block, generated factual sentences and the
manager's own commentary (a text file per period). ``published=True`` applies the DfE's primary
and secondary suppression (:mod:`casewatch.packs.suppression`) to every count.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from casewatch.packs import figures
from casewatch.packs.catalogue import BLOCKS, BREAKDOWNS, CABINET_MEASURES, NOT_YET_AVAILABLE, Measure, cabinet_measures
from casewatch.packs.marks import (NO_MARK, Mark, fmt, fmt_reference, mark_unallocated, mark_value,
                                   thresholds)
from casewatch.packs.periods import Period
from casewatch.packs.render import line_chart
from casewatch.packs.source import PrometheusSource
from casewatch.packs.suppression import NOT_APPLICABLE, SUPPRESSED, Group, hide_ratio, suppress

# A breakdown's total is the same figure as this measure's value for the period.
BREAKDOWN_TOTAL_OF = {"referrals_by_source": "referrals", "lac_by_legal_status": "lac_open",
                      "permanence_exits": "lac_ceased", "unallocated_by_type": "unallocated_cases",
                      "drift_by_type": "drift_cases"}


def count_of(rate: Measure) -> Measure:
    """The count a rate per 10,000 children is worked from (a suppressed count hides its rate)."""
    return next(m for m in CABINET_MEASURES if m.source == rate.source and m.kind == rate.kind and not m.per_10k)


@dataclass
class Row:
    measure: Measure
    this: str
    previous: str
    last_year: str
    rolling: str
    reference: str
    mark: Mark
    chart: str = ""
    chart_alt: str = ""
    raw: dict = field(default_factory=dict)    # unsuppressed readings, for the sentences and tests


@dataclass
class CabinetPack:
    la: str
    period: Period
    published: bool
    blocks: list[dict]
    headlines: list[dict]
    missing: list[str]
    not_available: tuple[str, ...]
    generated_at: str
    queries: int = 0
    to_date: bool = False       # the period has not ended: its figures so far (live)


def _cell(m: Measure, key: str) -> str:
    return f"{m.key}|{key}"


def _sentence(m: Measure, prev: float | None, this: float | None, mark: Mark) -> str | None:
    if prev is None or this is None:
        return None
    name = m.title[0].upper() + m.title[1:]
    if m.is_ratio:
        f = (lambda v: fmt(v, percent=True)) if m.percent else (lambda v: fmt(v, decimals=1))
        if round(this, 4) == round(prev, 4):
            text = f"{name} was unchanged at {f(this)}"
        else:
            verb = "rose" if this > prev else "fell"
            change = (f"{(this - prev) * 100:+.1f} percentage points" if m.percent
                      else f"{this - prev:+.1f}").replace("-", "−")
            text = f"{name} {verb} from {f(prev)} to {f(this)} ({change})"
    else:
        if this == prev:
            text = f"{name} was unchanged at {fmt(this)}"
        else:
            verb = "rose" if this > prev else "fell"
            pct = f" ({(this - prev) / prev * 100:+.0f}%)".replace("-", "−") if prev else ""
            text = f"{name} {verb} from {fmt(prev)} to {fmt(this)}{pct}"
    if m.reference is not None and m.is_ratio:
        side = "above" if this > m.reference else "below" if this < m.reference else "level with"
        ref = fmt(m.reference, percent=m.percent, decimals=0 if m.percent else 1)
        text += f", {side} England's {ref}"
    if mark.rag in ("red", "amber"):
        text += f" ({mark.text.lower()} against the local threshold)"
    return text + "."


def read_commentary(path: Path | None) -> dict[str, str]:
    """The manager's text per block from a plain-text file with ``# Inputs`` / ``# Processes`` /
    ``# Outputs`` headings (text before the first heading goes under "general")."""
    if path is None or not Path(path).exists():
        return {}
    out: dict[str, list[str]] = {}
    current = "general"
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#+\s*(inputs|processes|outputs)\b", line.strip(), re.I)
        if m:
            current = m.group(1).lower()
            continue
        out.setdefault(current, []).append(line)
    return {k: "\n".join(v).strip() for k, v in out.items() if "\n".join(v).strip()}


def build(src: PrometheusSource, la: str, period: Period, published: bool = False,
          commentary: dict[str, str] | None = None) -> CabinetPack:
    measures = cabinet_measures(src.drift_limits)
    limits = thresholds()
    prev, last_year = period.previous(), period.year_before()
    readings: dict[str, dict] = {}
    missing: list[str] = []
    cells: dict[str, float | None] = {}
    groups: list[Group] = []
    for m in measures:
        this = figures.read(src, m, la, period)
        missing += this.missing
        r = {"this": this, "previous": figures.read(src, m, la, prev),
             "last_year": figures.read(src, m, la, last_year),
             "rolling": figures.rolling_12m(src, m, la, period),
             "trend": figures.trend(src, m, la, period)}
        readings[m.key] = r
        if not m.is_ratio and not m.per_10k:
            cells[_cell(m, period.label)] = this.value
            cells[_cell(m, prev.label)] = r["previous"].value
            cells[_cell(m, last_year.label)] = r["last_year"].value
            for q, reading in r["trend"]:
                cells.setdefault(_cell(m, q.label), reading.value)
            if r["rolling"] is not None:
                cells[_cell(m, "12m")] = r["rolling"].value
                if period.kind == "quarter":
                    quarters = [q.label for q, _ in r["trend"][-4:]]
                    groups.append(Group(_cell(m, "12m"), tuple(_cell(m, q) for q in quarters)))
    breakdowns = {}
    for b in BREAKDOWNS:
        parts = figures.read_breakdown(src, b, la, period)
        breakdowns[b.key] = parts
        if parts is None:
            missing.append(f"{b.title}: no figure in Prometheus for {period.label}")
            continue
        total_measure = next(m for m in measures if m.key == BREAKDOWN_TOTAL_OF[b.key])
        total_key = _cell(total_measure, period.label)
        part_keys = []
        for name, value in parts.items():
            cells[f"{b.key}|{name}"] = value
            part_keys.append(f"{b.key}|{name}")
        groups.append(Group(total_key, tuple(part_keys)))
    shown = suppress(cells, groups) if published else dict(cells)

    def show_count(m: Measure, key: str):
        return shown.get(_cell(m, key))

    def show_rate(m: Measure, reading, key: str) -> object:
        if reading is None:
            return NOT_APPLICABLE
        if published and reading.value is not None and shown.get(_cell(count_of(m), key)) == SUPPRESSED:
            return SUPPRESSED
        return reading.value

    def show_ratio(reading) -> object:
        if reading is None or reading.undefined:
            return NOT_APPLICABLE
        if published and reading.value is not None and hide_ratio(reading.numerator, reading.denominator):
            return SUPPRESSED
        return reading.value

    blocks = []
    headlines = []
    for block, heading in BLOCKS:
        rows, sentences = [], []
        for m in (m for m in measures if m.block == block):
            r = readings[m.key]
            this = r["this"]
            if m.threshold == "unallocated":
                mark = mark_unallocated(breakdowns.get("unallocated_by_type"))
            elif m.threshold:
                mark = mark_value(this.value, m.threshold, m.higher_is_better, limits,
                                  this.denominator if m.is_ratio and m.is_flow else None)
            else:
                mark = NO_MARK
            decimals = 1 if ((m.is_ratio and not m.percent) or m.per_10k) else 0
            if m.per_10k:
                values = [show_rate(m, r["this"], period.label), show_rate(m, r["previous"], prev.label),
                          show_rate(m, r["last_year"], last_year.label), NOT_APPLICABLE]
                trend_vals = [None if (v := show_rate(m, rd, q.label)) == SUPPRESSED else v for q, rd in r["trend"]]
            elif m.is_ratio:
                values = [show_ratio(r[k]) for k in ("this", "previous", "last_year")] + [show_ratio(r["rolling"])]
                trend_vals = [None if (v := show_ratio(rd)) in (SUPPRESSED,) else v for _, rd in r["trend"]]
            else:
                values = [show_count(m, period.label), show_count(m, prev.label), show_count(m, last_year.label),
                          show_count(m, "12m") if r["rolling"] is not None else NOT_APPLICABLE]
                trend_vals = [None if (v := show_count(m, q.label)) in (SUPPRESSED, "x") else v
                              for q, _ in r["trend"]]
            labels = [q.label for q, _ in r["trend"]]
            alt_vals = ", ".join(f"{lbl} {fmt(v if v is not None else ('c' if published else None), percent=m.percent, decimals=decimals)}"
                                 for lbl, v in zip(labels, trend_vals))
            alt = f"{m.title}, last 8 quarters: {alt_vals}."
            row = Row(m, *(fmt(v, percent=m.percent, decimals=decimals) for v in values),
                      reference=fmt_reference(m.reference, m.percent), mark=mark,
                      chart=line_chart(labels, trend_vals, percent=m.percent, reference=m.reference
                                       if (m.is_ratio or m.per_10k) else None),
                      chart_alt=alt, raw=r)
            rows.append(row)
            if m.headline:
                headlines.append({"title": m.title, "alt": alt, "value": row.this, "mark": mark,
                                  "chart": line_chart(labels, trend_vals, percent=m.percent, width=3.4, height=1.6,
                                                      reference=m.reference if m.is_ratio else None, axes=True)})
            public_prev = values[1] if not isinstance(values[1], str) else None
            public_this = values[0] if not isinstance(values[0], str) else None
            if m.headline or mark.rag in ("red", "amber"):
                s = _sentence(m, public_prev, public_this, mark)
                if s:
                    sentences.append(s)
        tables = []
        for b in (b for b in BREAKDOWNS if b.block == block):
            parts = breakdowns[b.key]
            if parts is None:
                continue
            total_measure = next(m for m in measures if m.key == BREAKDOWN_TOTAL_OF[b.key])
            tables.append({"title": f"{b.code} {b.title}, {period.label}".strip(), "label": b.label_name.replace("_", " "),
                           "rows": [(name.replace("_", " "), fmt(shown[f"{b.key}|{name}"])) for name in sorted(parts)],
                           "total": fmt(shown.get(_cell(total_measure, period.label)))})
        blocks.append({"key": block, "heading": heading, "rows": rows, "tables": tables, "sentences": sentences,
                       "commentary": (commentary or {}).get(block, "")})
    return CabinetPack(la, period, published, blocks, headlines, missing, NOT_YET_AVAILABLE,
                       datetime.now(timezone.utc).strftime("%d %B %Y %H:%M UTC"), len(src.log),
                       to_date=period.end >= src.today())
