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
* Figures are served on ``engine_metrics_port`` by :mod:`casewatch.adapters.prometheus.exposition`; Faust's own
  web server (which would serve table contents at /table) is switched off.
* The worker knows whether it is caught up (:mod:`casewatch.processing.catchup`): not during a
  rebalance (from the revocation, when the revoked partitions' figures are dropped, until the
  rebuild after the new assignment), a table restore, a lag above
  ``engine_caught_up_max_lag`` or a replay run (records marked by ``casewatch/adapters/kafka/replay_marking.py``);
  meanwhile it publishes no indicator series. Replay control records are not events: never
  applied, never dead-lettered.
* A partition's records reach the agent without a skip (``TakeOverGuard`` in
  :mod:`casewatch.adapters.faust.changelog`): around a rebalance Faust could be handed records from past
  the committed offset, take the jump for a gap in the log and commit past unread records.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timezone

import faust

from casewatch.config import Settings, get_settings
from casewatch.bootstrap import make_calendar  # one owner of Settings -> calendar
from schemas import EVENT_TYPES
from casewatch.adapters.kafka.security import faust_credentials
from casewatch.adapters.kafka.replay_marking import is_control, replay_marking
from casewatch.processing.catchup import CatchUp
from casewatch.adapters.faust.changelog import ChangelogWriter, TakeOverGuard
from casewatch.processing.store import decode_history
from casewatch.adapters.prometheus.exposition import EngineMetrics, start_exposition
from casewatch.processing.processor import BatchProcessor, Record
from casewatch.processing.figures import PartitionedFigures
from casewatch.bootstrap import today_for

log = logging.getLogger("casewatch.engine")

BATCH_EVENTS = 500
BATCH_SECONDS = 0.05


class EngineApp(faust.App):
    """Faust's App, serving /metrics and /healthz from its first start: Faust starts an app's
    tasks only once the first table recovery is complete, and the exposition must answer during
    it (to say that the worker is catching up, and why)."""

    casewatch_exposition = None  # a coroutine function, set by create_app

    async def on_first_start(self) -> None:
        await super().on_first_start()
        if self.casewatch_exposition is not None:
            await self.casewatch_exposition()


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or get_settings()
    datadir = settings.state_dir / "engine" / settings.engine_app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = EngineApp(
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
        producer_max_batch_size=512 * 1024,  # changelog batches (changelog.py): a few per take batch
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

    changelog = ChangelogWriter(lambda: app.producer._ensure_producer(),
                                histories.changelog_topic.get_topic_name(), histories.data.get)
    figures = PartitionedFigures(make_calendar(settings), today_for(settings))
    catch_up = CatchUp(settings.engine_caught_up_max_lag, settings.engine_replay_silence_seconds)
    take_over = TakeOverGuard(settings.events_topic)
    metrics = EngineMetrics(figures, settings, catch_up)
    metrics.bind(app)
    app.casewatch_figures = figures  # for tests and the benchmark
    app.casewatch_metrics = metrics

    async def dead_letter(reason: str, stage: str, payload: object) -> None:
        metrics.dead_lettered(stage, reason)
        record = {
            "payload": payload, "errors": [{"loc": [], "msg": reason, "type": reason}],
            "source": "engine", "stage": stage,
            "received_at": datetime.now(timezone.utc).isoformat(),
        }
        await deadletters.send(value=json.dumps(record, default=str).encode())

    processor = BatchProcessor(
        figures=figures, store=histories.data,  # the store itself (Table.get adds per-call bookkeeping)
        changelog=changelog, dead_letters=dead_letter, metrics=metrics, catch_up=catch_up,
        marking=read_replay_marking, event_types=EVENT_TYPES, clock=time.time)

    @app.agent(events)
    async def apply_case_events(stream):
        # Events are taken in small batches (at most BATCH_EVENTS, or what arrived within
        # BATCH_SECONDS) and applied by the processor (casewatch/processing/processor.py). Faust
        # acknowledges the batch after it has been applied; a redelivered batch is harmless
        # (event_ids make it idempotent).
        async for batch in stream.take_events(BATCH_EVENTS, within=BATCH_SECONDS):
            await processor.process([
                Record(m.message.partition, m.message.offset, m.key, m.value, m.message.headers)
                for m in batch])

    @app.on_partitions_assigned.connect
    async def guard_take_over(sender, assigned, **kwargs):
        # Before the fetcher first starts (after the first assignment's recovery), and idempotent.
        take_over.install(app.consumer)

    @app.on_partitions_revoked.connect
    async def drop_revoked(sender, revoked, **kwargs):
        # Faust sends this once the agent has finished its current batch and before the next
        # assignment: the revoked partitions' series disappear now, not at the end of the
        # rebalance (their new owner may already be serving them).
        partitions = {tp.partition for tp in revoked if tp.topic == settings.events_topic}
        catch_up.partitions_revoked(partitions)
        figures.drop(partitions)
        metrics.forget_partitions(partitions)
        log.info("%d partitions revoked; catching up until the next assignment is rebuilt", len(partitions))

    @app.on_rebalance_complete.connect
    async def rebuild_after_rebalance(sender, **kwargs):
        # Sent by Faust once the table's recovery from the changelog is complete.
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.events_topic}
        figures.keep_only(assigned)
        by_partition: dict[int, list[tuple[str, list[dict]]]] = {p: [] for p in assigned}
        for key, raw in list(histories.items()):
            partition, events = decode_history(raw)
            if partition in by_partition:
                by_partition[partition].append((key.decode(), events))
        for p, items in by_partition.items():
            figures.rebuild(p, items)
        metrics.set_assigned(assigned)
        catch_up.rebuilt(assigned)
        log.info("figures rebuilt for %d partitions (%d keys)", len(assigned), figures.keys_tracked)

    reported: list[list[str] | None] = [None]

    @app.timer(interval=5.0)
    async def advance_the_day():
        if figures.advance():
            log.info("day changed to %s; snapshot figures recomputed", figures.as_of.isoformat())
        reasons = metrics.catching_up_reasons()  # (also keeps the lag gauges fresh between scrapes)
        if reasons != reported[0]:
            reported[0] = reasons
            log.info("catching up (%s)", ", ".join(reasons)) if reasons else log.info("caught up")

    @app.task
    async def keep_library_logs_at_worker_level():
        # aiokafka and faust otherwise build a debug record for every message sent (~3 s of
        # every 45 s of work in a profile of a replay), even when nothing prints it.
        level = logging.getLogger().getEffectiveLevel()
        for name in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(max(level, logging.INFO))

    async def serve_metrics():
        await start_exposition(metrics, settings.host, settings.engine_metrics_port)
    app.casewatch_exposition = serve_metrics

    return app


def read_replay_marking(headers) -> tuple[str | None, bool, bool]:
    """``(run id, is a run's end, is a control record)`` of a record's headers."""
    run_id, end = replay_marking(headers)
    return run_id, end, is_control(headers)
