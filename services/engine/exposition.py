"""Prometheus exposition of the engine's figures, served on the engine's own port.

The figures are held in plain dictionaries that the event loop updates; the HTTP server runs in
the same event loop (aiohttp), so a scrape never sees a half-applied event and needs no locks.
Rendering walks the series only (never the children): its cost grows with the number of series.
"""
from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from casewatch.config import Settings

DEAD_LETTER_REASONS = {"undecodable", "missing_envelope_field", "missing_key", "unprocessable",
                       "icpc_before_s47", "review_before_plan"}


class FiguresCollector:
    """Turns the engine's figures into gauge families, one per metric name."""

    def __init__(self, figures):
        self.figures = figures

    def collect(self):
        rows: dict[str, list] = {}
        for metric, labels, value in self.figures.samples():
            rows.setdefault(metric, []).append((dict(labels), value))
        for metric in sorted(rows):
            names = sorted({name for labels, _ in rows[metric] for name in labels})
            family = GaugeMetricFamily(metric, _help(metric), labels=names)
            for labels, value in rows[metric]:
                family.add_metric([labels.get(n, "") for n in names], value)
            yield family


def _help(metric: str) -> str:
    return f"casewatch figure {metric} (see docs/metrics.md)"


class EngineMetrics:
    def __init__(self, figures, settings: Settings):
        self.figures = figures
        self.registry = CollectorRegistry()
        self.registry.register(FiguresCollector(figures))
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
        self.la_codes = set(settings.la_code_list)
        self.offsets: dict[int, int] = {}

    def applied(self, event: dict) -> None:
        la = event.get("la_code")
        la = la if la in self.la_codes else "other"
        self.processed.labels(la, str(event.get("event_type"))[:40]).inc()
        self.newest.set(time.time())

    def duplicate(self) -> None:
        self.duplicates.inc()

    def dead_lettered(self, stage: str, reason: str) -> None:
        self.dead.labels(stage, reason if reason in DEAD_LETTER_REASONS else "other").inc()

    def observe_offset(self, partition: int, offset: int) -> None:
        self.offsets[partition] = offset

    def set_assigned(self, partitions) -> None:
        self.assigned.set(len(partitions))
        for p in list(self.offsets):
            if p not in partitions:
                self.offsets.pop(p)
                try:
                    self.lag.remove(str(p))
                except KeyError:
                    pass

    def refresh_lag(self, app, topic: str) -> None:
        try:
            assignment = app.consumer.assignment()
        except Exception:  # noqa: BLE001 - not started yet
            return
        for tp in assignment:
            if tp.topic != topic:
                continue
            high = app.consumer.highwater(tp)
            if high is None:
                continue
            # Next offset to process: after the last event this worker applied, or the group's
            # committed offset for a partition that has had nothing new since it was assigned.
            done = self.offsets.get(tp.partition)
            committed = getattr(app.consumer, "_committed_offset", {}).get(tp) or 0
            position = max(done + 1 if done is not None else 0, committed)
            self.lag.labels(str(tp.partition)).set(max(0, high - position))

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def start_exposition(metrics: EngineMetrics, host: str, port: int) -> None:
    async def handle_metrics(request):
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_health(request):
        return web.json_response({"status": "ok", "partitions": len(metrics.figures.partitions)})

    web_app = web.Application()
    web_app.router.add_get("/metrics", handle_metrics)
    web_app.router.add_get("/healthz", handle_health)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
