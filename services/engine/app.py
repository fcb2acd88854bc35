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
* The worker knows whether it is caught up (:mod:`services.engine.catchup`): not during a
  rebalance (from the revocation, when the revoked partitions' figures are dropped, until the
  rebuild after the new assignment), a table restore, a lag above
  ``engine_caught_up_max_lag`` or a replay run (records marked by ``casewatch/replay_marking.py``);
  meanwhile it publishes no indicator series. Replay control records are not events: never
  applied, never dead-lettered.
* A partition's records reach the agent without a skip (``TakeOverGuard`` in
  :mod:`services.engine.changelog`): around a rebalance Faust could be handed records from past
  the committed offset, take the jump for a gap in the log and commit past unread records.
"""
from __future__ import annotations

import json
import logging
import uuid
import time
from datetime import date, datetime, timezone

import faust

from casewatch.config import Settings, get_settings
from casewatch.bootstrap import make_calendar  # one owner of Settings -> calendar
from schemas import EVENT_TYPES
from casewatch.kafka_security import faust_credentials
from casewatch.replay_marking import is_control, replay_marking
from services.engine.catchup import CatchUp
from services.engine.changelog import ChangelogWriter, TakeOverGuard, decode_history, extend_history
from services.engine.exposition import EngineMetrics, start_exposition
from services.engine.state import PartitionedFigures

log = logging.getLogger("casewatch.engine")

ENVELOPE_REQUIRED = ("event_id", "event_type", "la_code")
BATCH_EVENTS = 500
BATCH_SECONDS = 0.05


def today_for(settings: Settings):
    if settings.fixed_today:
        fixed = date.fromisoformat(settings.fixed_today)
        return lambda: fixed
    from zoneinfo import ZoneInfo
    london = ZoneInfo("Europe/London")
    return lambda: datetime.now(london).date()


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

    def stored_events(key: bytes) -> list[dict] | None:
        raw = histories.data.get(key)  # the store itself (Table.get adds per-call bookkeeping)
        return decode_history(raw)[1] if raw else None

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
        # Events are taken in small batches (at most BATCH_EVENTS, or what arrived within
        # BATCH_SECONDS) and grouped by child, so a child with several events in a batch is
        # recomputed and written to the changelog once. Faust acknowledges the batch after it
        # has been applied; a redelivered batch is harmless (event_ids make it idempotent).
        async for batch in stream.take_events(BATCH_EVENTS, within=BATCH_SECONDS):
            groups: dict[tuple[int, bytes], list[dict]] = {}
            last: dict[int, int] = {}  # partition -> offset of its last message in the batch
            replay_ends: list[tuple[int, str]] = []
            for message in batch:
                record = message.message
                partition = record.partition
                last[partition] = record.offset
                if record.headers and replay_marked(partition, record.headers, replay_ends):
                    continue  # a control record: not an event
                key = message.key
                try:
                    decoded = json.loads(message.value)
                except (ValueError, UnicodeDecodeError, TypeError, RecursionError):  # deep nesting too
                    await dead_letter("undecodable", "decode", _safe_payload(message.value))
                    continue
                # A message holds one event, or (bulk replay) a JSON array of one child's events.
                if decoded == []:
                    await dead_letter("empty_batch", "decode", {})
                    continue
                for event in decoded if isinstance(decoded, list) else (decoded,):
                    if not isinstance(event, dict) or not all(event.get(f) for f in ENVELOPE_REQUIRED):
                        await dead_letter("missing_envelope_field", "decode", _envelope_only(event))
                    elif not key:
                        await dead_letter("missing_key", "decode", _envelope_only(event))
                    else:
                        groups.setdefault((partition, key), []).append(event)
            set_aside: list[tuple[str, str, dict]] = []
            newly_applied = sum(apply_group(partition, key, valid, set_aside)
                                for (partition, key), valid in groups.items())
            metrics.applied_offsets(last)
            for partition, run_id in replay_ends:  # after the run's records before them are applied
                catch_up.replay_end(partition, run_id)
            if newly_applied:
                metrics.newest.set(time.time())
            for reason, stage, payload in set_aside:
                await dead_letter(reason, stage, payload)
            await changelog.flush()

    def replay_marked(partition: int, headers, replay_ends: list) -> bool:
        """Note a record's replay marking (only records with headers get here). Returns True for a
        control record, which is not an event."""
        run_id, end = replay_marking(headers)
        if is_control(headers):
            if end and run_id:
                replay_ends.append((partition, run_id))
            return True
        if run_id:
            catch_up.replay_record(partition, run_id)
        return False

    def apply_group(partition: int, key: bytes, valid: list[dict], set_aside: list) -> int:
        """Apply one child's events of the batch; returns how many were newly applied. What cannot
        be applied is added to ``set_aside`` as (reason, stage, payload) for the dead-letter topic."""
        skey = key.decode(errors="replace")
        first_seen = skey not in figures.partition(partition).keys
        stored = stored_events(key) if first_seen else None
        try:
            results = [figures.apply(partition, skey, valid, stored)]
        except Exception:  # noqa: BLE001 - a poison event must not stop the stream
            # Apply the group one event at a time so only the poison events are set aside.
            results = []
            for event in valid:
                try:
                    results.append(figures.apply(partition, skey, [event], stored))
                    stored = None
                except Exception:  # noqa: BLE001
                    log.error("an event could not be applied (type %s); sent to dead letters",
                              _envelope_only(event).get("event_type", "?"))
                    set_aside.append(("unprocessable", "apply", _envelope_only(event)))
        return sum(record(key, partition, applied, set_aside) for applied in results)

    def record(key: bytes, partition: int, applied, set_aside: list) -> int:
        for _ in range(applied.duplicates):
            metrics.duplicate()
        if applied.history is None:
            return 0
        # The partition is stored with the events so a rebuild can group keys by partition.
        # Written to the store and the changelog partition directly: in a batch the "current
        # event" Faust would take the partition from is not necessarily this key's.
        value = extend_history(histories.data.get(key), partition, applied.appended, lambda: applied.to_store)
        histories.data[key] = value
        changelog.add(partition, key, value)
        for event in applied.events:
            metrics.applied(event)
        for event_id, reason in applied.rejections:
            set_aside.append((reason, "rules", {"event_id": event_id}))
        return len(applied.events)

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


def _envelope_only(event: object) -> dict:
    """What a dead letter from the engine keeps of an event: its id and type when they look like
    an id and a type, nothing else (an event that never passed ingest may hold anything)."""
    if not isinstance(event, dict):
        return {"not_an_object": type(event).__name__}
    out = {}
    event_id, event_type = event.get("event_id"), event.get("event_type")
    try:
        out["event_id"] = str(uuid.UUID(event_id)) if isinstance(event_id, str) else None
    except ValueError:
        out["event_id"] = None
    if isinstance(event_type, str) and event_type in EVENT_TYPES:
        out["event_type"] = event_type
    return {k: v for k, v in out.items() if v is not None}


def _safe_payload(raw: bytes) -> dict:
    """A dead-letter rendering of undecodable bytes: only their size and a hash, never content
    (the bytes might hold identifiers that never went through pseudonymisation)."""
    import hashlib
    return {"undecodable_bytes": len(raw or b""), "sha256": hashlib.sha256(raw or b"").hexdigest()}

