"""Backfill Prometheus with the daily history of every indicator, computed from an events file.

For each day D in the range, every series is the value the engine would have shown on D (the
pure domain API: ``ChildHistory`` -> ``contribution`` -> ``Aggregate`` as of D, recomputing a key
only when its ``stable_until`` comes, as the engine's day change does). One sample per series per
day, time-stamped at 12:00 UTC of D, is written as OpenMetrics text (``# EOF`` terminated, metric
families contiguous), then ``promtool tsdb create-blocks-from openmetrics FILE DIR`` turns it into
TSDB blocks.

To use the blocks, stop Prometheus, copy the block directories (``DIR/01…``) into its
``--storage.tsdb.path`` and start it again with a retention that covers them (e.g.
``--storage.tsdb.retention.time=5y``); Prometheus compacts them in the background.
"""
from __future__ import annotations

import heapq
import shutil
import subprocess
import tempfile
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, compact
from casewatch.domain.indicators import contribution

PROMTOOL = "/usr/bin/promtool"


def event_key(event: dict) -> str | None:
    """The Kafka key the engine groups by: the child, or ``wf:<la>:<team>`` for workforce."""
    if event.get("event_type") == "workforce.snapshot":
        return f"wf:{event.get('la_code')}:{event.get('team')}"
    return event.get("child_ref")


def sample_timestamp(d: date) -> float:
    return datetime.combine(d, time(12, 0), timezone.utc).timestamp()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _series_line(metric: str, labels: dict, value: float, ts: float) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    number = repr(float(value)) if value != int(value) else str(int(value))
    return f"{metric}{{{inner}}} {number} {int(ts)}\n"


def daily_samples(events: Iterable[dict], first: date, last: date, calendar: WorkingDayCalendar,
                  progress: Callable[[int], None] | None = None):
    """Yield ``(day, samples)`` for each day from ``first`` to ``last``."""
    by_key: dict[str, list[dict]] = {}
    for event in events:
        key = event_key(event)
        if key:
            by_key.setdefault(key, []).append(compact(event))
    histories = {k: ChildHistory(v) for k, v in by_key.items()}
    aggregate = Aggregate(calendar, first)
    current: dict[str, object] = {}
    due: list[tuple[date, str]] = []
    for key, history in histories.items():
        c = contribution(history, first, calendar)
        current[key] = c
        aggregate.apply(None, c)
        if c.stable_until is not None:
            due.append((c.stable_until, key))
    heapq.heapify(due)
    d = first
    while d <= last:
        if d != first:
            aggregate.set_as_of(d)
            while due and due[0][0] <= d:
                _, key = heapq.heappop(due)
                old = current[key]
                if old.stable_until is None or old.stable_until > d:
                    continue  # a stale heap entry
                new = contribution(histories[key], d, calendar)
                aggregate.apply(old, new)
                current[key] = new
                if new.stable_until is not None:
                    heapq.heappush(due, (new.stable_until, key))
        yield d, list(aggregate.samples())
        if progress:
            progress(1)
        d += timedelta(days=1)


def write_openmetrics(events: Iterable[dict], out_file: Path, first: date, last: date,
                      calendar: WorkingDayCalendar | None = None,
                      progress: Callable[[int], None] | None = None) -> int:
    """Write the daily history as OpenMetrics; returns the number of samples."""
    calendar = calendar or WorkingDayCalendar()
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.TemporaryDirectory(prefix="casewatch-backfill-") as tmp:
        parts: dict[str, object] = {}
        try:
            for d, samples in daily_samples(events, first, last, calendar, progress):
                ts = sample_timestamp(d)
                for metric, labels, value in samples:
                    fh = parts.get(metric)
                    if fh is None:
                        fh = parts[metric] = open(Path(tmp) / f"{len(parts)}.om", "w", encoding="utf-8")
                    fh.write(_series_line(metric, labels, value, ts))
                    count += 1
        finally:
            for fh in parts.values():
                fh.close()
        with out_file.open("w", encoding="utf-8") as out:
            for i, metric in enumerate(parts):
                out.write(f"# TYPE {metric} gauge\n")
                with open(Path(tmp) / f"{i}.om", encoding="utf-8") as part:
                    shutil.copyfileobj(part, out)
            out.write("# EOF\n")
    return count


def create_blocks(openmetrics_file: Path, out_dir: Path, promtool: str = PROMTOOL) -> str:
    """Run promtool; returns its output. Raises ``RuntimeError`` when it fails."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                           str(openmetrics_file), str(out_dir)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"promtool failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout
