"""Prometheus exposition of the engine's figures, served on the engine's own port.

The figures are held in plain dictionaries that the event loop updates; the HTTP server runs in
the same event loop (aiohttp), so a scrape never sees a half-applied event and needs no locks.
Rendering walks the series only (never the children): its cost grows with the number of series.

While the worker is not caught up (:mod:`casewatch.processing.catchup`) a scrape carries only the
engine's own series (``casewatch_engine_*``, events processed, lag, ...), never an indicator: a
figure computed from a half-loaded history must not reach Prometheus (docs/metrics.md).
"""
from __future__ import annotations

import time
from datetime import datetime, time as clock_time
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from casewatch.config import Settings
from casewatch.prometheus_text import escape_label_value as _escape, sample_value as _number
from casewatch.domain.catalogue import EVENT_FIELD_LABELS, MAX_METRICS
from casewatch.domain.rejections import REJECTION_REASONS
from casewatch.processing.error_policy import ENGINE_REASONS
from schemas import code_lists
from schemas.events import EVENT_TYPES

# The engine's own reasons (decode and apply stages: the declared error policy) plus the domain's
# rejection reasons (rules stage, casewatch.domain.rejections): the label values of a dead letter.
ENGINE_DEAD_LETTER_REASONS = ENGINE_REASONS
DEAD_LETTER_REASONS = ENGINE_DEAD_LETTER_REASONS | REJECTION_REASONS


OTHER = "other"


def bounded_label_values(settings: Settings) -> dict[str, frozenset[str]]:
    """The allowed values of the labels whose values come straight from event fields. An event
    written to the topic without passing the ingest edge may carry anything there; such a value
    is published as ``other``, never as itself (labels only from bounded code lists). Which labels
    and which lists: the catalogue's ``EVENT_FIELD_LABELS``."""
    def allowed(list_name: str | None, extra: frozenset[str], configured: list[str]) -> frozenset[str]:
        if list_name is None:
            return frozenset(configured)
        return extra | frozenset(c for year in code_lists.collection_years()
                                 for c in code_lists.codes(list_name, year))
    configured = {"la": settings.la_code_list, "team": settings.team_list}
    return {name: allowed(list_name, extra, configured.get(name, []))
            for name, (list_name, extra) in EVENT_FIELD_LABELS.items()}


class FiguresCollector:
    """Turns the engine's figures into gauge families, one per metric name."""

    def __init__(self, figures, allowed: dict[str, frozenset[str]] | None = None):
        self.figures = figures
        self.allowed = allowed or {}

    def _bounded(self, labels) -> tuple[tuple[str, str], ...]:
        allowed = self.allowed
        return tuple((name, value if name not in allowed or value in allowed[name] else OTHER)
                     for name, value in (labels.items() if isinstance(labels, dict) else labels))

    def rows(self) -> dict[str, dict[tuple, float]]:
        rows: dict[str, dict[tuple, float]] = {}
        for metric, labels, value in self.figures.samples():
            series = rows.setdefault(metric, {})
            key = self._bounded(labels)
            if key in series:  # values folded into "other" meet: sums, or the maximum
                series[key] = max(series[key], value) if metric in MAX_METRICS else series[key] + value
            else:
                series[key] = value
        return rows

    def collect(self):
        rows = self.rows()
        for metric in sorted(rows):
            names = sorted({name for labels in rows[metric] for name, _ in labels})
            family = GaugeMetricFamily(metric, _help(metric), labels=names)
            for labels, value in rows[metric].items():
                labels = dict(labels)
                family.add_metric([labels.get(n, "") for n in names], value)
            yield family

    def render_text(self) -> bytes:
        """The figures in the Prometheus text format, written directly (prometheus_client's
        generic families cost about three times as much for the ~8,000 series of 20 authorities).
        Same output as :meth:`collect` through ``generate_latest``."""
        out: list[str] = []
        rows = self.rows()
        for metric in sorted(rows):
            out.append(f"# HELP {metric} {_help(metric)}\n# TYPE {metric} gauge\n")
            for labels, value in rows[metric].items():
                if labels:
                    text = ",".join(f'{name}="{_escape(value_)}"' for name, value_ in labels)
                    out.append(f"{metric}{{{text}}} {_number(value)}\n")
                else:
                    out.append(f"{metric} {_number(value)}\n")
        return "".join(out).encode()


def _help(metric: str) -> str:
    return f"casewatch figure {metric} (see docs/metrics.md)"


LONDON = ZoneInfo("Europe/London")


def midnight_london(day) -> float:
    """``day`` at 00:00 Europe/London, as a unix timestamp."""
    return datetime.combine(day, clock_time(0), LONDON).timestamp()


class EngineMetrics:
    def __init__(self, figures, settings: Settings, catch_up=None):
        from casewatch.processing.catchup import REASONS, CatchUp
        self.figures = figures
        self.catch_up = catch_up or CatchUp(settings.engine_caught_up_max_lag,
                                            settings.engine_replay_silence_seconds)
        # What the worker knows of Faust and Kafka (set by ``bind``): rebalancing, restoring, and
        # (partition, high watermark) of each assigned events partition.
        self._faust = None  # the worker's state (bind), None until the engine binds it
        self.assigned_count = 0
        # The figures are rendered directly (and only again once they changed); the registry holds
        # the operational series.
        self.collector = FiguresCollector(figures, bounded_label_values(settings))
        self._rendered: tuple[int, bytes] = (-1, b"")
        self.registry = CollectorRegistry()
        r = self.registry
        self.processed = Counter("casewatch_events_processed", "Distinct events applied",
                                 ["la", "event_type"], registry=r)
        self.duplicates = Counter("casewatch_events_duplicate", "Repeated event_ids ignored", registry=r)
        self.dead = Counter("casewatch_events_dead_lettered", "Events sent to the dead-letter topic",
                            ["stage", "reason"], registry=r)
        self.newest = Gauge("casewatch_newest_event_timestamp_seconds",
                            "Recorded time of the newest event applied", registry=r)
        self.children = Gauge("casewatch_children_tracked", "Keys (children, teams) held", registry=r)
        self.children.set_function(lambda: figures.keys_tracked)
        self.lag = Gauge("casewatch_consumer_lag_messages", "Events not yet processed", ["partition"],
                         registry=r)
        self.assigned = Gauge("casewatch_assigned_partitions", "Partitions owned by this worker",
                              registry=r)
        self.calendar_until = Gauge("casewatch_calendar_covered_until_year",
                                    "Last year the bank-holiday calendar knows", registry=r)
        self.calendar_until.set(figures.calendar.covered_until_year)
        self.caught_up = Gauge("casewatch_engine_caught_up",
                               "1 when this worker is caught up and publishes its indicators, 0 while it "
                               "catches up (rebalance, restore, lag or a replay run)", registry=r)
        self.catching_up = Gauge("casewatch_engine_catching_up",
                                 "1 for each reason this worker is catching up", ["reason"], registry=r)
        self._reason_gauges = {reason: self.catching_up.labels(reason) for reason in REASONS}
        self.rebuilt_partitions = Counter(
            "casewatch_engine_rebuilt_partitions", "Partitions whose figures were rebuilt from the "
            "table after a rebalance (only those that changed hands)", registry=r)
        self.today = Gauge("casewatch_engine_today_timestamp_seconds",
                           "The engine's today, at 00:00 Europe/London", registry=r)
        self.today.set_function(lambda: midnight_london(figures.as_of))
        self.la_codes = set(settings.la_code_list)
        self._processed: dict[tuple[str, str], Counter] = {}
        # partition -> offset of the last message applied (dead-lettered and control records too)
        self.offsets: dict[int, int] = {}

    def applied(self, event: dict) -> None:
        # An event straight from the topic may hold anything here, even a list (unhashable).
        la, event_type = event.get("la_code"), event.get("event_type")
        la = la if isinstance(la, str) and la in self.la_codes else OTHER
        event_type = event_type if isinstance(event_type, str) and event_type in EVENT_TYPES else OTHER
        counter = self._processed.get((la, event_type))
        if counter is None:  # bounded: configured authorities x event types
            counter = self._processed[(la, event_type)] = self.processed.labels(la, event_type)
        counter.inc()  # (``newest`` is set once per batch: newest_event_at)

    def processed_total(self) -> int:
        return int(sum(counter._value.get() for counter in self._processed.values()))

    def duplicate(self) -> None:
        self.duplicates.inc()

    def newest_event_at(self, when: float) -> None:
        """A batch applied new events at ``when`` (the processor's clock)."""
        self.newest.set(when)

    def dead_lettered(self, stage: str, reason: str) -> None:
        self.dead.labels(stage, reason if reason in DEAD_LETTER_REASONS else "other").inc()

    def applied_offsets(self, last: dict[int, int]) -> None:
        """The offsets of the last messages of a batch, per partition, once the batch is applied."""
        self.offsets.update(last)

    def rebuilt(self, partitions: int) -> None:
        """The figures of ``partitions`` partitions were rebuilt from the table."""
        self.rebuilt_partitions.inc(partitions)

    def set_assigned(self, partitions) -> None:
        self.assigned_count = len(partitions)
        self.assigned.set(self.assigned_count)
        self.forget_partitions([p for p in self.offsets if p not in partitions])

    def forget_partitions(self, partitions) -> None:
        for p in partitions:
            self.offsets.pop(p, None)
            try:
                self.lag.remove(str(p))
            except KeyError:
                pass

    def bind(self, worker) -> None:
        """Read the worker's state from ``worker`` (``casewatch.adapters.faust.changelog.WorkerState``:
        ``rebalancing``, ``restoring`` and ``positions()``)."""
        self._faust = worker

    def positions(self) -> dict[int, tuple[int | None, int]]:
        """``partition -> (high watermark or None while unknown, next offset to apply)`` for each
        assigned partition of the events topic."""
        worker = self._faust
        if worker is None:
            return {}
        # Next offset to apply: after the last message this worker applied, or the group's
        # committed offset for a partition that has had nothing new since it was assigned.
        out = {}
        for partition, (high, committed) in worker.positions().items():
            done = self.offsets.get(partition)
            out[partition] = (high, max(done + 1 if done is not None else 0, committed))
        return out

    def refresh_lag(self) -> int | None:
        """Set the lag gauges; returns the worker's total lag (None while an end is unknown)."""
        total: int | None = 0
        for partition, (high, position) in self.positions().items():
            if high is None:
                total = None
                continue
            lag = max(0, high - position)
            self.lag.labels(str(partition)).set(lag)
            if total is not None:
                total += lag
        return total

    def catching_up_reasons(self) -> list[str]:
        """Why this worker is catching up (empty: caught up); sets the catch-up gauges."""
        worker = self._faust
        reasons = self.catch_up.reasons(rebalancing=bool(worker is not None and worker.rebalancing),
                                        restoring=bool(worker is not None and worker.restoring),
                                        lag=self.refresh_lag())
        self.caught_up.set(0 if reasons else 1)
        for reason, gauge in self._reason_gauges.items():
            gauge.set(1 if reason in reasons else 0)
        return reasons

    def render(self) -> bytes:
        if self.catching_up_reasons():
            return generate_latest(self.registry)  # self-metrics only, no indicator
        version = self.figures.version
        if self._rendered[0] != version:
            self._rendered = (version, self.collector.render_text())
        return self._rendered[1] + generate_latest(self.registry)

    def health(self) -> dict:
        """What /healthz answers: counts and offsets only (no keys), cheap to poll."""
        reasons = self.catching_up_reasons()
        positions = self.positions()
        return {"status": "ok", "caught_up": not reasons, "catching_up": reasons,
                "today": self.figures.as_of.isoformat(),
                "partitions": len(self.figures.partitions),
                "assigned_partitions": self.assigned_count,
                "applied_offsets": {str(p): pos for p, (_, pos) in sorted(positions.items())},
                "end_offsets": {str(p): high for p, (high, _) in sorted(positions.items())},
                "replaying_partitions": sorted(self.catch_up.replaying_partitions()),
                "events_processed": self.processed_total(),
                "keys_tracked": self.figures.keys_tracked}


async def start_exposition(metrics: EngineMetrics, host: str, port: int) -> None:
    async def handle_metrics(request):
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_health(request):
        # Counts and offsets only (no keys): cheap to poll, unlike a full /metrics render.
        return web.json_response(metrics.health())

    web_app = web.Application()
    web_app.router.add_get("/metrics", handle_metrics)
    web_app.router.add_get("/healthz", handle_health)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
