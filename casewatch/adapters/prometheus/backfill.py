"""Backfill Prometheus with the daily history of every indicator and recording rule.

For each day D in the range, every series is the value the engine would have shown at the end of
D (the pure domain API: ``ChildHistory`` -> ``contribution`` -> ``Aggregate`` as of D, recomputing
a key only when its ``stable_until`` comes, as the engine's day change does; the day-by-day form
``DailyContribution``, which equals ``contribution`` on every day), with the engine's
own working-day calendar (``CASEWATCH_EXTRA_HOLIDAYS`` / ``CASEWATCH_REMOVED_HOLIDAYS``) and its
own label bounding (values outside the code lists published as ``other``). Each series carries
the labels Prometheus's scrape of the engine adds (``job``, ``instance``), so the live series
continue the backfilled ones: same name, same labels.

One sample per series per day, time-stamped at 00:00 UTC of D. That instant is on every step a
Grafana panel or a range query aligned to whole hours, days or weeks evaluates at, so a board over
two years draws one point a day and ``offset 52w`` (364 days) lands on a sample too.

How the blocks are made (:func:`backfill_data_dir`):

1. the raw series are written as OpenMetrics, one file per week, and each file is turned into
   TSDB blocks of up to 31 days with ``promtool tsdb create-blocks-from --max-block-duration=744h
   openmetrics`` (promtool re-reads its whole input once per block it cuts, and cuts 2-hour
   blocks unless told a longer maximum: one block per day of samples, 731 for the demo);
2. the recording rules of ``prometheus/rules/*.yml`` are evaluated by a temporary Prometheus (a
   free loopback port, no scrapes, no rules) over the same figures, and the results become blocks
   the same way. For speed the temporary Prometheus holds the figures on a compressed time line:
   day *i* at ``EVAL_BASE + i * EVAL_SPACING`` seconds, all in one or two TSDB blocks, with a
   1-second look-back, so one range query per rule (step ``EVAL_SPACING``) evaluates it for every
   day at once and sees exactly that day's figures; the results are stamped back onto their days.
   A rule that reads another rule's record has that record's expression put in its place, so one
   pass suffices. Rules that read ranges, ``offset`` or ``time()`` would mean something else on
   the compressed line and are left out (today only ``casewatch:events_processed:increase10m``,
   a pipeline figure that has no history anyway). ``promtool tsdb create-blocks-from rules`` is
   not used: 2.42 issues one range query per rule per 2-hour block (about 8,760 per rule for two
   years, each reading hundreds of blocks), ends a rule at the first block without an evaluation
   instant when the evaluation interval is longer than a block, and does not see records made by
   other rules of the same run.
3. every block moves into the real ``--storage.tsdb.path``
   before the real Prometheus starts (it must run with a retention longer than the history, e.g.
   ``--storage.tsdb.retention.time=5y``, as the local stack does).
"""
from __future__ import annotations

import heapq
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterable, Iterator, Mapping

import yaml

from casewatch.bootstrap import make_calendar
from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.events import event_partition_key
from casewatch.domain.history import ChildHistory, compact
from casewatch.domain.incremental import DailyContribution
from casewatch.domain.indicators import DRIFT_WORKDAYS_DEFAULT
from casewatch.prometheus_text import escape_label_value as _escape, sample_value as _number
from casewatch.stack.loopback import free_port

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
RULE_FILES = sorted((PROJECT_ROOT / "prometheus" / "rules").glob("*.yml"))
MARKER = "casewatch-backfill.json"  # in the Prometheus data dir: what was backfilled
DAY = 86400
EVAL_BASE = 946684800   # 2000-01-01T00:00Z, a multiple of the 2-hour block length
EVAL_SPACING = 5        # seconds between two days on the compressed line (1,440 days a block)


def sample_timestamp(d: date) -> int:
    """The instant day ``d``'s figures are stamped with: 00:00 UTC of ``d``."""
    return int(datetime.combine(d, clock_time(0), timezone.utc).timestamp())


def _series_name(metric: str, labels: dict) -> str:
    """A series as an OpenMetrics line begins (then `` <value> <timestamp>``): the labels sorted
    by name, values escaped."""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


class _SeriesNames(dict):
    """Each series' name and labels as written (:func:`_series_name`, with ``extra`` labels
    added), made once per series instead of once per day: the same series recur every day."""

    def __init__(self, extra: dict[str, str]):
        super().__init__()
        self.extra = extra

    def __missing__(self, key: tuple[str, tuple]) -> str:
        metric, labels = key
        name = self[key] = _series_name(metric, {**dict(labels), **self.extra})
        return name


def daily_samples(events: Iterable[dict], first: date, last: date, calendar: WorkingDayCalendar,
                  progress: Callable[[int], None] | None = None,
                  drift_limits: Mapping[str, int] = DRIFT_WORKDAYS_DEFAULT):
    """Yield ``(day, samples)`` for each day from ``first`` to ``last``; ``samples`` are
    ``(metric, labels as sorted (name, value) pairs, value)`` as the engine's figures give them
    (``drift_limits``: the deployment's, ``Settings.drift_limits``)."""
    by_key: dict[str, list[dict]] = {}
    for event in events:
        by_key.setdefault(event_partition_key(event), []).append(compact(event))
    # A history does not change during the backfill: its flows and clocks are made once, its walk
    # goes forward day by day, and a key is recounted only on the days its stocks can change.
    walks = {k: DailyContribution(ChildHistory(v), calendar, drift_limits) for k, v in by_key.items()}
    del by_key
    aggregate = Aggregate(calendar, first)
    current: dict[str, object] = {}
    due: list[tuple[date, str]] = []
    for key, walk in walks.items():
        c = walk.at(first)
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
                new = walks[key].at(d)
                aggregate.apply(old, new)
                current[key] = new
                if new.stable_until is not None:
                    heapq.heappush(due, (new.stable_until, key))
        yield d, list(aggregate.series())
        if progress:
            progress(1)
        d += timedelta(days=1)


# -- OpenMetrics, one file per week ------------------------------------------------------------
def _write_day(path: Path, families: dict[str, list[str]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for metric, lines in families.items():
            out.write(f"# TYPE {metric} gauge\n")
            out.writelines(lines)
        out.write("# EOF\n")


# promtool cuts blocks of 2 hours unless told a longer maximum (its hidden `--max-block-duration`
# flag of `tsdb create-blocks-from`, in 2.42 as in later releases): daily samples then gave one
# block per day (731 for two years, ~80 ms of promtool CPU each, and as many blocks for every range
# query to open). Blocks of up to 31 days are what Prometheus itself compacts to at our retention
# (the smaller of 31 days and a tenth of `--storage.tsdb.retention.time=5y`). A file holds a week,
# so each promtool run (one per file, two at a time) reads its file into one block, or two where the
# week straddles a block boundary: about 130 blocks for two years.
MAX_BLOCK_DURATION = "744h"
DAYS_PER_FILE = 7


def write_openmetrics_days(events: Iterable[dict], out_dir: Path, first: date, last: date,
                           calendar: WorkingDayCalendar | None = None, *,
                           extra_labels: dict[str, str] | None = None,
                           allowed_labels: dict[str, frozenset[str]] | None = None,
                           progress: Callable[[int], None] | None = None,
                           compressed_dir: Path | None = None,
                           drift_limits: Mapping[str, int] | None = None) -> int:
    """Write the daily figures as OpenMetrics files of a week each (``out_dir/YYYY-MM-DD.om``,
    named after their first day); returns the number of samples. ``extra_labels`` (``job``,
    ``instance``) are added to every series; ``allowed_labels`` bound label values as the
    engine's exposition does. With ``compressed_dir`` the same samples also go, on the
    compressed time line (:func:`compressed_timestamp`), into ``compressed_dir/figures.om``.
    ``calendar``: default, the deployment's (:func:`casewatch.bootstrap.make_calendar` of the
    settings), never a bare England calendar: extra and removed holidays always apply; likewise
    ``drift_limits`` (default: the settings' ``CASEWATCH_DRIFT_WORKDAYS``)."""
    from casewatch.adapters.prometheus.exposition import FiguresCollector

    class _BoundedOnce(FiguresCollector):
        """The exposition's label bounding, worked out once per label set (they recur daily)."""

        def __init__(self, figures, allowed):
            super().__init__(figures, allowed)
            self.bounded: dict[tuple, tuple] = {}

        def _bounded(self, labels):
            if isinstance(labels, dict):
                return super()._bounded(labels)
            found = self.bounded.get(labels)
            if found is None:
                found = self.bounded[labels] = super()._bounded(labels)
            return found

    if calendar is None or drift_limits is None:
        from casewatch import bootstrap
        parts = bootstrap.build()
        calendar = parts.calendar if calendar is None else calendar
        drift_limits = parts.settings.drift_limits if drift_limits is None else drift_limits
    extra = dict(extra_labels or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    chunk: dict[str, list[str]] = {}
    chunk_first: date | None = None
    compressed: dict[str, list[str]] = {}
    names = _SeriesNames(extra)
    collector = _BoundedOnce(None, allowed_labels)
    for d, samples in daily_samples(events, first, last, calendar, progress, drift_limits):
        ts = sample_timestamp(d)
        chunk_first = chunk_first or d
        collector.figures = SimpleNamespace(samples=lambda s=samples: s)
        rows = collector.rows()
        for metric in sorted(rows):
            named = [(names[metric, labels], _number(value)) for labels, value in rows[metric].items()]
            chunk.setdefault(metric, []).extend(f"{name} {value} {ts}\n" for name, value in named)
            count += len(named)
            if compressed_dir is not None:
                at = compressed_timestamp(d, first)
                compressed.setdefault(metric, []).extend(f"{name} {value} {at}\n" for name, value in named)
        if (d - chunk_first).days + 1 >= DAYS_PER_FILE or d == last:
            _write_day(out_dir / f"{chunk_first.isoformat()}.om", chunk)
            chunk, chunk_first = {}, None
    if compressed_dir is not None:
        Path(compressed_dir).mkdir(parents=True, exist_ok=True)
        _write_day(Path(compressed_dir) / "figures.om", compressed)
    return count


def compressed_timestamp(d: date, first: date) -> int:
    """Where day ``d`` sits on the compressed time line of the rule evaluation."""
    return EVAL_BASE + (d - first).days * EVAL_SPACING


def write_openmetrics(events: Iterable[dict], out_file: Path, first: date, last: date,
                      calendar: WorkingDayCalendar | None = None,
                      progress: Callable[[int], None] | None = None, **labels) -> int:
    """The daily history as one OpenMetrics file (for reading; :func:`create_blocks` wants the
    per-day files of :func:`write_openmetrics_days`). Returns the number of samples."""
    out_file = Path(out_file)
    with tempfile.TemporaryDirectory(prefix="casewatch-om-") as tmp:
        n = write_openmetrics_days(events, Path(tmp), first, last, calendar, progress=progress, **labels)
        families: dict[str, list[str]] = {}
        for day_file in sorted(Path(tmp).glob("*.om")):
            metric = None
            for line in day_file.read_text(encoding="utf-8").splitlines(keepends=True):
                if line.startswith("# TYPE "):
                    metric = line.split()[2]
                elif not line.startswith("#"):
                    families.setdefault(metric, []).append(line)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        _write_day(out_file, families)
    return n


def create_blocks(openmetrics: Path, out_dir: Path, promtool: str = PROMTOOL, workers: int = 2,
                  progress: Callable[[int], None] | None = None) -> int:
    """Turn an OpenMetrics file, or every ``*.om`` file of a directory, into TSDB blocks in
    ``out_dir`` with promtool. Returns the number of files converted; raises ``RuntimeError``
    naming the file when promtool fails."""
    openmetrics = Path(openmetrics)
    files = sorted(openmetrics.glob("*.om")) if openmetrics.is_dir() else [openmetrics]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(path: Path) -> None:
        proc = subprocess.run([promtool, "tsdb", "create-blocks-from", f"--max-block-duration={MAX_BLOCK_DURATION}",
                               "openmetrics", "--quiet", str(path), str(out_dir)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"promtool failed on {path.name} (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-1500:]}")
        if progress:
            progress(1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in pool.map(one, files):
            pass
    return len(files)


# -- recording rules --------------------------------------------------------------------------
@dataclass
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)


def recording_rules(rule_files: Iterable[Path] = RULE_FILES) -> list[RecordingRule]:
    """Every recording rule of the rule files, in file and group order."""
    found = []
    for path in rule_files:
        for group in (yaml.safe_load(Path(path).read_text()) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    found.append(RecordingRule(rule["record"], str(rule["expr"]).strip(),
                                               {k: str(v) for k, v in (rule.get("labels") or {}).items()}))
    return found


def inline_records(rules: list[RecordingRule]) -> dict[str, str]:
    """Each rule's expression with every record it reads (used as a plain selector, without
    label matchers) replaced by that record's own expression, in parentheses, recursively; so
    every rule can be evaluated against the raw series alone. Raises ``ValueError`` for a
    record read with label matchers or range brackets (which substitution cannot express)."""
    defined = {r.record: r for r in rules}
    if not defined:
        return {}
    pattern = re.compile(r"(?<![\w:])(" + "|".join(re.escape(n) for n in sorted(defined, key=len, reverse=True))
                         + r")(?![\w:])(\s*[\[{])?")
    done: dict[str, str] = {}

    def expand(name: str, seen: tuple[str, ...]) -> str:
        if name in done:
            return done[name]
        if name in seen:
            raise ValueError(f"recording rule {name} reads itself")
        rule = defined[name]

        def swap(match: re.Match) -> str:
            if match.group(2):
                raise ValueError(f"recording rule {name} reads {match.group(1)} with matchers or a range")
            if defined[match.group(1)].labels:
                raise ValueError(f"recording rule {name} reads {match.group(1)}, which adds labels of its own")
            return "(" + expand(match.group(1), seen + (name,)) + ")"

        done[name] = pattern.sub(swap, rule.expr)
        return done[name]

    for r in rules:
        expand(r.record, ())
    return done


class TemporaryPrometheus:
    """A Prometheus on ``data_dir`` and a free loopback port, without scrapes or rules; stopped
    (and only it) when the ``with`` block ends."""

    def __init__(self, data_dir: Path, prometheus: str = PROMETHEUS, timeout: float = 120.0,
                 lookback: str = "1s"):
        self.data_dir = Path(data_dir)
        self.lookback = lookback
        self.prometheus = prometheus
        self.timeout = timeout
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._config: Path | None = None

    def __enter__(self) -> "TemporaryPrometheus":
        self._config = self.data_dir.parent / f".{self.data_dir.name}-backfill-prometheus.yml"
        self._config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        self.proc = subprocess.Popen(
            [self.prometheus, f"--config.file={self._config}", f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=10y",
             f"--query.lookback-delta={self.lookback}", "--query.max-samples=200000000",
             "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")[-1500:] if self.proc.stderr else ""
                raise RuntimeError(f"the temporary Prometheus for the backfill exited: {err}")
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the temporary Prometheus for the backfill never became ready")
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        if self._config is not None:
            self._config.unlink(missing_ok=True)

    def query_range(self, expr: str, start: int, end: int, step: int = DAY) -> list[dict]:
        params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        request = urllib.request.Request(f"{self.base}/api/v1/query_range", data=params.encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=600) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise RuntimeError(f"query failed: {body.get('error')}")
        return body["data"]["result"]


def write_rule_openmetrics(prom: TemporaryPrometheus, rules: list[RecordingRule], first: date, last: date,
                           out_dir: Path, workers: int = 2,
                           progress: Callable[[int], None] | None = None) -> tuple[int, list[str]]:
    """Evaluate every recording rule for each day against ``prom`` (which holds the figures on the
    compressed time line) and write the results, stamped at each day's sample instant, as
    OpenMetrics files of a week each in ``out_dir``. Returns the number of samples and the records
    left out (see the module docstring)."""
    exprs = inline_records(rules)
    usable = [r for r in rules if not _time_dependent(exprs[r.record])]
    skipped = [r.record for r in rules if r not in usable]
    start, end = compressed_timestamp(first, first), compressed_timestamp(last, first)
    per_day: dict[int, dict[str, list[str]]] = {}

    def evaluate(rule: RecordingRule):
        result = prom.query_range(exprs[rule.record], start, end, step=EVAL_SPACING)
        if progress:
            progress(1)
        return rule, result

    count = 0
    stamps: dict[float, int] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for rule, result in pool.map(evaluate, usable):
            for series in result:
                labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
                labels.update(rule.labels)
                name = _series_name(rule.record, labels)   # once a series, not once a point
                for at, value in series["values"]:
                    ts = stamps.get(at)
                    if ts is None:   # the day's sample instant, once per evaluation instant
                        day = first + timedelta(days=round((float(at) - EVAL_BASE) / EVAL_SPACING))
                        ts = stamps[at] = sample_timestamp(day)
                    per_day.setdefault(ts, {}).setdefault(rule.record, []).append(
                        f"{name} {_number(float(value))} {ts}\n")
                    count += 1
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weeks: dict[date, dict[str, list[str]]] = {}
    for ts in sorted(per_day):
        day = datetime.fromtimestamp(ts, timezone.utc).date()
        week = first + timedelta(days=(day - first).days // DAYS_PER_FILE * DAYS_PER_FILE)
        for metric, lines in per_day[ts].items():
            weeks.setdefault(week, {}).setdefault(metric, []).extend(lines)
    for week, families in weeks.items():  # the same files as write_openmetrics_days's weeks
        _write_day(out_dir / f"{week.isoformat()}.om", families)
    return count, skipped


def merge_openmetrics(into_dir: Path, from_dir: Path) -> None:
    """Append each OpenMetrics file of ``from_dir`` to the file of the same name in ``into_dir``
    (distinct metric families; one promtool run then makes the blocks of both)."""
    for path in sorted(Path(from_dir).glob("*.om")):
        target = Path(into_dir) / path.name
        if not target.exists():
            shutil.copyfile(path, target)
            continue
        body = target.read_text(encoding="utf-8")
        assert body.endswith("# EOF\n")
        with target.open("w", encoding="utf-8") as out:
            out.write(body[:-len("# EOF\n")])
            out.write(path.read_text(encoding="utf-8"))


def _time_dependent(expr: str) -> bool:
    """Whether an expression reads ranges, offsets or the clock (meaningless on the compressed line)."""
    return bool(re.search(r"\[[^\]]*\]|\boffset\b|\btime\s*\(|\btimestamp\s*\(|@", expr))


# -- the whole backfill of a Prometheus data directory ----------------------------------------
@dataclass
class BackfillSummary:
    first: date
    last: date
    raw_samples: int = 0
    rule_samples: int = 0
    blocks: int = 0
    seconds: float = 0.0
    rules_left_out: list[str] = field(default_factory=list)

    def render(self) -> str:
        return (f"Prometheus backfilled: {self.first} .. {self.last} ({(self.last - self.first).days + 1} days), "
                f"{self.raw_samples} figure samples and {self.rule_samples} recording-rule samples "
                f"in {self.blocks} blocks, {self.seconds:.0f}s")


def scrape_labels(settings) -> dict[str, str]:
    """The labels the stack's Prometheus adds when it scrapes the engine (job and instance, as
    ``prometheus/prometheus.yml`` rendered for this machine sets them)."""
    from casewatch.stack.components import compose_target_mapping
    return {"job": "casewatch-engine", "instance": compose_target_mapping(settings)["engine:29100"]}


def backfill_data_dir(events: Iterable[dict], data_dir: Path, first: date, last: date, settings, *,
                      labels: dict[str, str] | None = None, rule_files: Iterable[Path] = RULE_FILES,
                      promtool: str = PROMTOOL, prometheus: str = PROMETHEUS,
                      marker: dict | None = None, bar=None) -> BackfillSummary:
    """Write ``events``' daily figures ``first``..``last`` and the recording rules over them as TSDB
    blocks into the Prometheus data directory ``data_dir``, which no Prometheus may be using.
    ``labels``: the scrape's labels (default: the local stack's, :func:`scrape_labels`). ``bar``:
    a tqdm bar (or None) that is told each phase and step. ``marker`` is written to
    ``data_dir/casewatch-backfill.json`` when done."""
    from casewatch.adapters.prometheus.exposition import bounded_label_values

    t0 = time.monotonic()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    summary = BackfillSummary(first, last)
    days = (last - first).days + 1
    step = bar.update if bar is not None else None

    def phase(name: str, total: int) -> None:
        if bar is not None:
            bar.reset(total=total)
            bar.set_description(name)

    staging = Path(tempfile.mkdtemp(prefix=".backfill-", dir=data_dir.parent))
    try:
        raw_om, rule_om, evaluation, blocks = (staging / "raw-om", staging / "rules-om", staging / "eval",
                                               staging / "blocks")
        phase("figures per day", days)
        summary.raw_samples = write_openmetrics_days(
            events, raw_om, first, last, make_calendar(settings),
            extra_labels=labels if labels is not None else scrape_labels(settings),
            allowed_labels=bounded_label_values(settings), progress=step, compressed_dir=evaluation / "om",
            drift_limits=settings.drift_limits)
        rules = recording_rules(rule_files)
        phase("recording rules", len(rules))
        create_blocks(evaluation / "om" / "figures.om", evaluation / "tsdb", promtool)
        shutil.rmtree(evaluation / "om")
        with TemporaryPrometheus(evaluation / "tsdb", prometheus) as prom:
            summary.rule_samples, summary.rules_left_out = write_rule_openmetrics(
                prom, rules, first, last, rule_om, progress=step)
        shutil.rmtree(evaluation)
        merge_openmetrics(raw_om, rule_om)
        phase("blocks", len(list(raw_om.glob("*.om"))))
        create_blocks(raw_om, blocks, promtool, progress=step)
        moved = 0
        for block in blocks.iterdir():
            if block.is_dir() and (block / "meta.json").exists():
                shutil.move(str(block), str(data_dir / block.name))
                moved += 1
        summary.blocks = moved
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.seconds = time.monotonic() - t0
    earlier = backfilled(data_dir)
    record = {"first": min(first.isoformat(), (earlier or {}).get("first", first.isoformat())),
              "last": max(last.isoformat(), (earlier or {}).get("last", last.isoformat())),
              "raw_samples": summary.raw_samples, "rule_samples": summary.rule_samples,
              "blocks": summary.blocks, "labels": labels if labels is not None else scrape_labels(settings),
              **(marker or {})}
    (data_dir / MARKER).write_text(json.dumps(record, indent=2))
    return summary


def backfilled(data_dir: Path) -> dict | None:
    """What ``data_dir`` was backfilled with (the marker :func:`backfill_data_dir` writes), or None."""
    path = Path(data_dir) / MARKER
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
