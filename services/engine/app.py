"""The casewatch metrics engine: a faust-streaming worker.

* One agent consumes the events topic (key = pseudonymised child reference, so a child's events are
  in one partition). Each key's de-duplicated events live in the ``case_histories`` table, which is
  backed by a compacted changelog topic with as many partitions as the events topic (co-partitioned).
* The table's store is ``engine_store`` (docs/operations.md "Table store"): Faust's in-memory
  store (default; the changelog is the durable copy, restored whole by a restarted or newly
  assigned worker) or ``rocksdb://`` (kept on disk in a directory of this worker's own, named by
  its metrics port, so a restart replays only the changelog's tail). The table is read and written
  by partition through ``TableHistories`` (:mod:`casewatch.adapters.faust.changelog`).
* After a rebalance only the partitions that changed hands are rebuilt from the table (each
  partition's keys only); the figures of partitions the worker keeps are kept, unless the restore
  changed a stored value of one of their keys (then that partition is rebuilt too). Each rebuild
  counts in ``casewatch_engine_rebuilt_partitions_total``.
* Counting is at-least-once and idempotent: a redelivered event is a duplicate ``event_id`` and
  changes nothing. Faust's exactly-once mode is not used. No offset is committed before the
  changelog records of the events it covers were delivered (``ChangelogWriter.guard_commits``).
* Figures are served on ``engine_metrics_port`` by :mod:`casewatch.adapters.prometheus.exposition`; Faust's own
  web server (which would serve table contents at /table) is switched off.
* The worker knows whether it is caught up (:mod:`casewatch.processing.catchup`): not during a
  rebalance (from the revocation until the rebuild after the new assignment; the figures of
  partitions not re-assigned are dropped at the assignment), a table restore, a lag above
  ``engine_caught_up_max_lag`` or a replay run (records marked by ``casewatch/adapters/kafka/replay_marking.py``);
  meanwhile it publishes no indicator series. Replay control records are not events: never
  applied, never dead-lettered.
* A partition's records reach the agent without a skip (``TakeOverGuard`` in
  :mod:`casewatch.adapters.faust.changelog`): around a rebalance Faust could be handed records from past
  the committed offset, take the jump for a gap in the log and commit past unread records.
"""
from __future__ import annotations

import gc
import logging
import time

import faust

from casewatch.config import Settings
from casewatch.bootstrap import make_calendar  # one owner of Settings -> calendar
from schemas import EVENT_TYPES
from casewatch.adapters.kafka.dead_letters import DeadLetterRecord
from casewatch.adapters.kafka.security import faust_credentials
from casewatch.adapters.kafka.replay_marking import is_control, replay_marking
from casewatch.processing.catchup import CatchUp
from casewatch.adapters.faust.changelog import ChangelogWriter, TableHistories, TakeOverGuard, WorkerState
from casewatch.processing.store import partition_histories
from casewatch.adapters.prometheus.exposition import EngineMetrics, start_exposition
from casewatch.processing.processor import BatchProcessor, Record
from casewatch.processing.figures import PartitionedFigures
from casewatch.bootstrap import today_for

log = logging.getLogger("casewatch.engine")

LIBRARY_LOGGERS = ("aiokafka", "faust", "mode", "kafka")
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


STORES = {"memory": "memory://", "rocksdb": "rocksdb://"}


def worker_datadir(settings: Settings):
    """This worker's own directory (``Settings.engine_worker_dir``)."""
    return settings.engine_worker_dir


def create_app(settings: Settings) -> faust.App:
    datadir = worker_datadir(settings)
    datadir.mkdir(parents=True, exist_ok=True)
    app = EngineApp(
        settings.engine_app_id,
        broker=f"kafka://{settings.bootstrap}",
        broker_credentials=faust_credentials(settings),  # None (PLAINTEXT) unless TLS/SASL is set
        store=STORES[settings.engine_store],
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        web_enabled=False,
        web_tables_enabled=False,
        processing_guarantee="at_least_once",
        # docs/operations.md "Session timeout" (Faust's BROKER_SESSION_TIMEOUT variable, if set,
        # still wins: the benchmark measures with it)
        broker_session_timeout=settings.engine_session_timeout,
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
    stored = TableHistories()
    histories = app.Table("case_histories", default=None, partitions=settings.partitions,
                          key_type=bytes, value_type=bytes, on_changelog_event=stored.restored)
    stored.bind(histories)

    changelog = ChangelogWriter.for_table(app, histories, stored)
    figures = PartitionedFigures(make_calendar(settings), today_for(settings), drift_limits=settings.drift_limits)
    stored.watch(lambda partition: partition in figures.partitions)
    catch_up = CatchUp(settings.engine_caught_up_max_lag, settings.engine_replay_silence_seconds)
    take_over = TakeOverGuard(settings.events_topic)
    metrics = EngineMetrics(figures, settings, catch_up)
    metrics.bind(WorkerState(app, settings.events_topic))
    app.casewatch_figures = figures  # for tests and the benchmark
    app.casewatch_metrics = metrics
    app.casewatch_changelog = changelog

    async def dead_letter(reason: str, stage: str, payload: object) -> None:
        metrics.dead_lettered(stage, reason)
        record = DeadLetterRecord(payload, [{"loc": [], "msg": reason, "type": reason}], "engine", stage)
        await deadletters.send(value=record.encode())

    processor = BatchProcessor(
        figures=figures, store=stored,
        changelog=changelog, dead_letters=dead_letter, metrics=metrics, catch_up=catch_up,
        marking=read_replay_marking, event_types=EVENT_TYPES, clock=time.time,
        rewrite_on_duplicate=stored.on_disk)

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

    def events_partitions(tps) -> set[int]:
        return {tp.partition for tp in tps if tp.topic == settings.events_topic}

    @app.on_partitions_revoked.connect
    async def hold_revoked(sender, revoked, **kwargs):
        # Faust sends this once the agent has finished its current batch and before the next
        # assignment. From now until the rebuild the worker is catching up and publishes no
        # indicator, so a partition that is moving away stops being published here; its figures
        # are kept until the assignment says whether it stays (with Faust's eager protocol every
        # partition is revoked at every rebalance).
        partitions = events_partitions(revoked)
        catch_up.partitions_revoked(partitions)
        metrics.forget_partitions(partitions)
        log.info("%d partitions revoked; catching up until the next assignment is rebuilt", len(partitions))

    @app.on_partitions_assigned.connect
    async def drop_moved(sender, assigned, **kwargs):
        # Before the fetcher first starts (after the first assignment's recovery), and idempotent.
        take_over.install(app.consumer)
        changelog.guard_commits(app.consumer)
        # Sent at every assignment (also one a further rebalance cuts short before its restore
        # completes): the partitions not in it changed hands, so their figures go now; a partition
        # still in the figures at the rebuild was owned throughout.
        mine = events_partitions(assigned)
        moved = {p for p in figures.partitions if p not in mine}
        figures.drop(moved)
        stored.forget(moved)

    @app.on_rebalance_complete.connect
    async def rebuild_after_rebalance(sender, **kwargs):
        # Sent by Faust once the table's recovery from the changelog is complete.
        assigned = events_partitions(app.consumer.assignment())
        figures.keep_only(assigned)
        kept = assigned & set(figures.partitions)
        changed = stored.changed_by_restore(kept)
        rebuild = (assigned - kept) | set(changed)
        if changed:
            log.warning("the restore changed stored histories of %d partitions this worker kept; "
                        "rebuilding them too", len(changed))
        keys = 0
        for p in sorted(rebuild):
            figures.rebuild(p, partition_histories(stored, p))
            keys += len(figures.partitions[p].keys)
        metrics.rebuilt(len(rebuild))
        metrics.set_assigned(assigned)
        catch_up.rebuilt(assigned)
        log.info("figures rebuilt for %d partitions (%d keys); kept for %d partitions",
                 len(rebuild), keys, len(kept) - len(set(changed) & kept))

    reported: list[list[str] | None] = [None]

    @app.timer(interval=5.0)
    async def advance_the_day():
        if figures.advance():
            log.info("day changed to %s; snapshot figures recomputed", figures.as_of.isoformat())
        reasons = metrics.catching_up_reasons()  # (also keeps the lag gauges fresh between scrapes)
        if reasons != reported[0]:
            reported[0] = reasons
            log.info("catching up (%s)", ", ".join(reasons)) if reasons else log.info("caught up")

    # From the start, so the first table restore builds no debug record either (measured by the
    # benchmark's profile: 4.6 of 10.4 s of a large authority's restore CPU); the task below then
    # sets the worker's own level once Faust has configured logging.
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)

    @app.task
    async def keep_library_logs_at_worker_level():
        # aiokafka and faust otherwise build a debug record for every message sent (~3 s of
        # every 45 s of work in a profile of a replay), even when nothing prints it.
        level = logging.getLogger().getEffectiveLevel()
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.INFO))

    async def serve_metrics():
        await start_exposition(metrics, settings.host, settings.engine_metrics_port)
    app.casewatch_exposition = serve_metrics

    return app


# Python's cyclic garbage collector at its default thresholds (700, 10, 10) runs a young collection
# every 700 net allocations and an older one every 10 of those; a worker holds every tracked
# child's parsed history (millions of container objects), which the older collections traverse
# again and again. In-process over 46,336 events (the processor, figures, changelog writer and
# metrics, no Kafka): 92-107 µs of CPU per event at the defaults, 62 µs at these, 797 collections
# against 10. Counting does not depend on the collector (reference counting frees the engine's
# acyclic garbage at once); cyclic garbage just waits longer.
GC_THRESHOLDS = (50_000, 20, 20)


def collect_garbage_less_often() -> None:
    """Set the worker process's garbage-collector thresholds (``GC_THRESHOLDS``)."""
    gc.set_threshold(*GC_THRESHOLDS)


def read_replay_marking(headers) -> tuple[str | None, bool, bool]:
    """``(run id, is a run's end, is a control record)`` of a record's headers."""
    run_id, end = replay_marking(headers)
    return run_id, end, is_control(headers)
