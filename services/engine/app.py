"""The casewatch metrics engine: a faust-streaming worker.

* One agent consumes the events topic (key = pseudonymised child reference, so a child's events are
  in one partition). Each key's de-duplicated events live in the ``case_histories`` table, which is
  backed by a compacted changelog topic with as many partitions as the events topic (co-partitioned).
* The table uses Faust's in-memory store: the changelog is the durable copy, and a restarted or
  newly assigned worker rebuilds the table, then its figures, from it. (Why not RocksDB: the figures
  must be rebuilt from the table after any recovery anyway, per-child state is small, and a memory
  store keeps two workers on one machine free of local-directory locking.)
* Counting is at-least-once and idempotent: a redelivered event is a duplicate ``event_id`` and
  changes nothing. Faust's exactly-once mode is not used.
* Figures are served on ``engine_metrics_port`` by :mod:`services.engine.exposition`; Faust's own
  web server (which would serve table contents at /table) is switched off.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timezone

import faust

from casewatch.config import Settings, get_settings
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.kafka_security import faust_credentials
from services.engine.exposition import EngineMetrics, start_exposition
from services.engine.state import Outcome, PartitionedFigures

log = logging.getLogger("casewatch.engine")

ENVELOPE_REQUIRED = ("event_id", "event_type", "la_code")


def today_for(settings: Settings):
    if settings.fixed_today:
        fixed = date.fromisoformat(settings.fixed_today)
        return lambda: fixed
    from zoneinfo import ZoneInfo
    london = ZoneInfo("Europe/London")
    return lambda: datetime.now(london).date()


def make_calendar(settings: Settings) -> WorkingDayCalendar:
    def dates(text: str):
        return [date.fromisoformat(d.strip()) for d in text.split(",") if d.strip()]
    return WorkingDayCalendar(extra_holidays=dates(settings.extra_holidays),
                              removed_holidays=dates(settings.removed_holidays))


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or get_settings()
    datadir = settings.state_dir / "engine" / settings.engine_app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.engine_app_id,
        broker=f"kafka://{settings.bootstrap}",
        broker_credentials=faust_credentials(settings),  # None (PLAINTEXT) unless TLS/SASL is set
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        web_enabled=False,
        web_tables_enabled=False,
        processing_guarantee="at_least_once",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=8192,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=3600,
        producer_linger_ms=5,
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(datadir),
    )
    events = app.topic(settings.events_topic, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    deadletters = app.topic(settings.deadletter_topic, key_type=bytes, value_type=bytes,
                            key_serializer="raw", value_serializer="raw")
    histories = app.Table("case_histories", default=None, partitions=settings.partitions,
                          key_type=bytes, value_type=bytes)

    figures = PartitionedFigures(make_calendar(settings), today_for(settings))
    metrics = EngineMetrics(figures, settings)
    app.casewatch_figures = figures  # for tests and the benchmark
    app.casewatch_metrics = metrics

    def stored_events(key: bytes) -> list[dict] | None:
        raw = histories.get(key)
        return json.loads(raw)["e"] if raw else None

    async def dead_letter(reason: str, stage: str, payload: object) -> None:
        metrics.dead_lettered(stage, reason)
        record = {
            "payload": payload, "errors": [{"loc": [], "msg": reason, "type": reason}],
            "source": "engine", "stage": stage,
            "received_at": datetime.now(timezone.utc).isoformat(),
        }
        await deadletters.send(value=json.dumps(record, default=str).encode())

    @app.agent(events)
    async def apply_case_events(stream):
        async for message in stream.events():
            partition = message.message.partition
            metrics.observe_offset(partition, message.message.offset)
            key = message.key
            raw = message.value
            try:
                event = json.loads(raw)
                if not isinstance(event, dict) or any(not event.get(f) for f in ENVELOPE_REQUIRED):
                    raise ValueError("missing_envelope_field")
                if not key:
                    raise ValueError("missing_key")
            except (ValueError, UnicodeDecodeError) as exc:
                reason = str(exc) if str(exc) in ("missing_envelope_field", "missing_key") else "undecodable"
                await dead_letter(reason, "decode", _safe_payload(raw))
                continue
            try:
                skey = key.decode()
                outcome, to_store, rejections = figures.apply(partition, skey, event, stored_events(key)
                                                              if skey not in figures.partition(partition).keys
                                                              else None)
            except Exception:  # noqa: BLE001 - a poison event must not stop the stream
                log.exception("event could not be applied (event_type=%s)", event.get("event_type"))
                await dead_letter("unprocessable", "apply", {"event_id": event.get("event_id"),
                                                             "event_type": event.get("event_type")})
                continue
            if outcome == Outcome.DUPLICATE:
                metrics.duplicate()
                continue
            # The partition is stored with the events so a rebuild can group keys by partition.
            histories[key] = json.dumps({"p": partition, "e": to_store}, separators=(",", ":"),
                                        default=str).encode()
            metrics.applied(event)
            for _, reason in rejections:
                await dead_letter(reason, "rules", {"event_id": event.get("event_id"),
                                                    "event_type": event.get("event_type")})

    @app.on_rebalance_complete.connect
    async def rebuild_after_rebalance(sender, **kwargs):
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.events_topic}
        figures.keep_only(assigned)
        by_partition: dict[int, list[tuple[str, list[dict]]]] = {p: [] for p in assigned}
        for key, raw in list(histories.items()):
            stored = json.loads(raw)
            if stored["p"] in by_partition:
                by_partition[stored["p"]].append((key.decode(), stored["e"]))
        for p, items in by_partition.items():
            figures.rebuild(p, items)
        metrics.set_assigned(assigned)
        log.info("figures rebuilt for %d partitions (%d keys)", len(assigned), figures.keys_tracked)

    @app.timer(interval=5.0)
    async def advance_the_day():
        if figures.advance():
            log.info("day changed to %s; snapshot figures recomputed", figures.as_of.isoformat())
        metrics.refresh_lag(app, settings.events_topic)

    @app.task
    async def serve_metrics():
        await start_exposition(metrics, settings.host, settings.engine_metrics_port)

    return app


def _safe_payload(raw: bytes) -> dict:
    """A dead-letter rendering of undecodable bytes: only their size and a hash, never content
    (the bytes might hold identifiers that never went through pseudonymisation)."""
    import hashlib
    return {"undecodable_bytes": len(raw or b""), "sha256": hashlib.sha256(raw or b"").hexdigest()}

