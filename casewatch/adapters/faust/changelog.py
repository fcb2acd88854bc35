"""Writing the ``case_histories`` table's changelog a batch at a time.

Faust's ``Table.send_changelog`` wraps every record in a ``FutureMessage``, queues it in the
producer buffer and hands it to aiokafka one by one: about 60 µs of a 250 µs event on the
one-event-per-message path (measured with the benchmark: the engine ran 4,585 events/s with it
and 6,312 without any changelog at all). Here the records of one ``take_events`` batch are
appended to one aiokafka ``BatchBuilder`` per changelog partition and submitted together: the same
topic, partition, key and value as ``send_changelog`` would write (the table restores from it
unchanged), far fewer Python steps per record.

Durability: no offset of the events topic is committed before the changelog records of the
events it covers were delivered. Faust flushes the producer before it commits
(``Consumer._commit_offsets`` awaits ``app.producer.flush()``, which flushes this same aiokafka
producer, then calls ``Consumer._commit``), but that is Faust's ordering, not a contract; so the
writer owns it: ``guard_commits(consumer)`` makes every commit first wait until every batch this
writer submitted was delivered (``settle``), re-sending a failed one, and skip the commit when a
batch still fails (the next commit covers the same offsets once it is delivered).
tests/unit/adapters/faust/test_flush_before_commit.py drives Faust's own commit code to pin both.
A batch whose delivery failed is sent again with each key's *current* value (never the failed,
possibly older one, which could overwrite a newer value in the compacted topic).

Persisted offset: Faust's own changelog path records, for every delivered record, the changelog
offset its store holds (``Table._on_changelog_sent`` -> ``store.set_persisted_offset``; the rocksdb
store writes it into the partition's database, and a restarted worker's recovery seeks there,
``Recovery._add``, instead of the changelog's start). Writing the changelog here bypasses that, so
the writer does the same: once a batch is delivered, its partition's last offset (the batch's base
offset plus its records, less one) is handed to ``delivered(partition, offset)``, which
``TableHistories.persisted`` passes to the store (never lower than an offset already recorded;
the store already holds the batch's values, written before it was sent).

Also here, as the other pieces that reach into Faust's and aiokafka's internals (this module is
the only one that does):

* ``TableHistories``: the table's stored values read and written by partition (Faust's own table
  access takes the partition from the "current event", which a batch of several partitions does
  not have), and one partition's keys listed without scanning the table;
* ``TakeOverGuard``, which keeps Faust's consumer from skipping (and committing past) records of
  the events topic around a rebalance;
* ``WorkerState``: what the exposition asks of the worker (is it rebalancing or restoring, each
  assigned events partition's high watermark and committed offset), read from the app's consumer.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Iterable, Iterator

from faust.types import TP

log = logging.getLogger("casewatch.engine")


class ChangelogWriter:
    """Collects ``(partition, key, value)`` records, then sends them as per-partition batches.

    ``producer`` is a callable returning the started aiokafka producer (Faust's transport producer
    creates it at start-up); ``topic`` the changelog topic's name; ``current(key)`` the key's
    value in the table now (for re-sending after a failed delivery)."""

    def __init__(self, producer: Callable[[], Any], topic: str,
                 current: Callable[[int, bytes], bytes | None], settle_rounds: int = 3,
                 delivered: Callable[[int, int], None] | None = None):
        self._producer = producer
        self.topic = topic
        self._current = current
        self.settle_rounds = settle_rounds
        self._delivered = delivered
        self.persisted: dict[int, int] = {}  # partition -> last changelog offset known delivered
        self._pending: dict[int, dict[bytes, bytes]] = {}
        self._in_flight: list[tuple[Any, int, dict[bytes, bytes]]] = []
        self.resent_batches = 0
        self.commits_held = 0  # commits skipped because a changelog batch was not delivered
        self._undelivered: set[tuple[int, bytes]] = set()  # keys of failed batches, until re-sent
        self._guarded: Any = None

    @classmethod
    def for_table(cls, app, table, histories: "TableHistories") -> "ChangelogWriter":
        """The writer of ``table``'s changelog through ``app``'s aiokafka producer (Faust's
        transport producer creates it at start-up)."""
        topic = table.changelog_topic.get_topic_name()
        return cls(lambda: app.producer._ensure_producer(), topic, histories.get,
                   delivered=lambda partition, offset: histories.persisted(topic, partition, offset))

    def add(self, partition: int, key: bytes, value: bytes) -> None:
        """Queue the newest value of ``key`` (a later value of the same key replaces it)."""
        self._pending.setdefault(partition, {})[key] = value

    async def flush(self) -> None:
        """Submit every queued record (first re-queueing any earlier batch that failed)."""
        self._requeue_failed()
        if not self._pending:
            return
        producer = self._producer()
        pending, self._pending = self._pending, {}
        for partition, records in pending.items():
            batch, in_batch = producer.create_batch(), {}
            for key, value in records.items():
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    in_batch[key] = value
                    continue
                if in_batch:  # full: send it and start another
                    await self._submit(producer, batch, partition, in_batch)
                    batch, in_batch = producer.create_batch(), {}
                    if batch.append(key=key, value=value, timestamp=None) is not None:
                        in_batch[key] = value
                        continue
                # larger than a whole batch: the producer's ordinary path takes it
                future = await producer.send(self.topic, value, key=key, partition=partition)
                self._watch(future, partition, 1)
                self._in_flight.append((future, partition, {key: value}))
            if in_batch:
                await self._submit(producer, batch, partition, in_batch)

    async def settle(self) -> bool:
        """Submit what is queued and wait until every batch submitted so far was delivered, or,
        for one that failed, a later batch with its keys (the re-send) was (``settle_rounds``
        rounds). Batches the agent submits meanwhile are not waited for beyond the round they
        were in flight in: the commit does not cover their events. False when a key of a failed
        batch is still not delivered."""
        for _ in range(self.settle_rounds):
            await self.flush()
            waiting = [future for future, _, _ in self._in_flight]
            if waiting:
                await asyncio.wait(waiting)
            self._requeue_failed()
            if not self._undelivered:
                return True
        return False

    def guard_commits(self, consumer) -> None:
        """Make ``consumer`` (a Faust consumer) commit offsets only after ``settle``: its
        ``_commit`` (what ``Consumer._commit_offsets`` calls to commit, after flushing the
        producer) is wrapped. Idempotent; run it before the first commit (on the first
        assignment)."""
        if self._guarded is consumer:
            return
        self._guarded = consumer
        commit, writer = consumer._commit, self

        async def commit_after_the_changelog(offsets):
            if not await writer.settle():
                writer.commits_held += 1
                log.warning("a changelog batch is still not delivered; offsets not committed "
                            "this time (the next commit covers them)")
                return False
            return await commit(offsets)

        consumer._commit = commit_after_the_changelog

    async def _submit(self, producer, batch, partition: int, records: dict[bytes, bytes]) -> None:
        future = await producer.send_batch(batch, self.topic, partition=partition)
        self._watch(future, partition, len(records))
        self._in_flight.append((future, partition, records))

    def _watch(self, future, partition: int, records: int) -> None:
        """Record the partition's persisted offset once ``future`` (a batch of ``records``
        records, or one record) is delivered: its metadata's offset is the first record's."""
        if self._delivered is None:
            return

        def on_delivery(done) -> None:
            if done.cancelled() or done.exception() is not None:
                return  # re-sent later (_requeue_failed): that batch's delivery records it
            last = done.result().offset + records - 1
            if last > self.persisted.get(partition, -1):
                self.persisted[partition] = last
                self._delivered(partition, last)

        future.add_done_callback(on_delivery)

    def _requeue_failed(self) -> None:
        still: list = []
        for future, partition, records in self._in_flight:
            if not future.done():
                still.append((future, partition, records))
                continue
            if not future.cancelled() and future.exception() is None:
                if self._undelivered:
                    self._undelivered.difference_update((partition, key) for key in records)
                continue
            self.resent_batches += 1
            log.warning("a changelog batch of %d records was not delivered; sending it again",
                        len(records))
            mine = self._pending.setdefault(partition, {})
            for key in records:
                value = self._current(partition, key)
                if value is None:
                    continue  # no longer held here (a partition given up): nothing to send
                self._undelivered.add((partition, key))
                if key not in mine:
                    mine[key] = value
        self._in_flight = still


# -- the table's values, by partition ---------------------------------------------------------------
class TableHistories:
    """The ``case_histories`` table's stored values, addressed by (partition, key).

    Faust's table and store pick a key's partition from the "current event"; the rocksdb store
    keeps one database per partition and reads and writes the current event's, which in a
    ``take_events`` batch of several partitions is not every key's own. Here every access names
    the key's partition:

    * memory store (``memory://``): one dict; a partition -> keys index is kept here, fed by the
      engine's own writes and by every changelog record Faust restores (``restored``, the table's
      public ``on_changelog_event`` hook), so one partition's keys are listed without a scan;
    * rocksdb store (``rocksdb://``): the partition's own database (its keys are that database's).

    ``watch(tracked)`` and ``changed_by_restore()`` answer whether a restore changed the stored
    value of any key of a partition whose figures the worker kept (``tracked(partition)``): the
    value each restored key had before its first restored record is noted and compared with its
    value after the restore.
    """

    def __init__(self) -> None:
        self.table: Any = None
        self._index: dict[int, set[bytes]] | None = None
        self._tracked: Callable[[int], bool] = lambda partition: False
        self._before: dict[tuple[int, bytes], bytes | None] = {}

    def bind(self, table) -> None:
        self.table = table
        self._index = None if self.on_disk else {}

    @property
    def on_disk(self) -> bool:
        return hasattr(self.table.data, "_db_for_partition")

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The key's stored value; None also for a partition whose database is not open (rocksdb:
        Faust closes a revoked partition's, and a read must not open it again)."""
        store = self.table.data
        if self._index is None:
            db = store._dbs.get(partition)
            return None if db is None else db.get(key)
        return store.data.get(key)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        store = self.table.data
        if self._index is None:
            store._db_for_partition(partition).put(key, value)
            return
        store.data[key] = value
        self._index.setdefault(partition, set()).add(key)

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """``(key, stored value)`` of every key of ``partition`` held here."""
        store = self.table.data
        if self._index is None:
            yield from store._visible_items(store._db_for_partition(partition))
            return
        data = store.data
        for key in list(self._index.get(partition, ())):
            value = data.get(key)
            if value is not None:
                yield key, value

    def persisted(self, topic: str, partition: int, offset: int) -> None:
        """Record that the store holds ``partition``'s changelog (``topic``) up to ``offset``
        (Faust's ``set_persisted_offset``: the rocksdb store keeps it in the partition's database,
        where a restarted worker's recovery starts reading; the memory store keeps nothing). Not
        for a partition whose database is closed (given up): opening it again would hold it."""
        store = self.table.data
        if self._index is None and partition not in store._dbs:
            return
        store.set_persisted_offset(TP(topic, partition), offset)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the values of partitions this worker no longer owns (memory store: Faust itself
        drops only the keys it restored; rocksdb: Faust closes their databases)."""
        if self._index is None:
            return
        data = self.table.data.data
        for partition in partitions:
            for key in self._index.pop(partition, ()):
                data.pop(key, None)

    # -- restores -----------------------------------------------------------------------------------
    def watch(self, tracked: Callable[[int], bool]) -> None:
        self._tracked = tracked

    async def restored(self, event) -> None:
        """Faust's ``on_changelog_event``: a changelog record read in a restore (or by a standby),
        before it is applied to the store."""
        message = event.message
        partition, key = message.partition, message.key
        if self._index is not None:
            self._index.setdefault(partition, set()).add(key)
        if self._tracked(partition) and (partition, key) not in self._before:
            self._before[(partition, key)] = self.get(partition, key)

    def changed_by_restore(self, kept: Iterable[int]) -> dict[int, int]:
        """``partition -> keys`` whose stored value a restore changed since the last call, among
        the keys of ``kept`` partitions (the comparison is of bytes: no history is decoded)."""
        kept = set(kept)
        changed: dict[int, int] = {}
        for (partition, key), before in self._before.items():
            if partition in kept and self.get(partition, key) != before:
                changed[partition] = changed.get(partition, 0) + 1
        self._before.clear()
        return changed


# -- partition take-over: never let Faust commit a skipped range of the events topic -----------------
class TakeOverGuard:
    """Keeps a Faust consumer from skipping records of the events topic around a rebalance.

    The race (found by the two-worker test under a CPU hog): Faust's fetcher asks the aiokafka
    consumer thread for records; a rebalance happens while that request is in flight; the worker
    keeps some of its partitions, Faust seeks them back to the committed offset
    (``Consumer.perform_seek``) and resumes the flow; then the request returns, with records
    fetched *before* the seek, from where the worker had read up to before the rebalance (the
    records in between were dropped with the agent's buffer at revocation). Faust checks the
    consumer generation only after the request returned, so it delivers them; its read offset is
    the committed one, so it takes the jump (e.g. 1255 to 3286) for a gap in the log
    (``Consumer._add_gap``, meant for compacted or transactional topics) and commits past it: the
    skipped records are never applied.

    The events topic has no gaps (no compaction, no transactions), so the guard holds Faust to
    that: per events partition it tracks the next offset it must hand over - the committed offset
    after each seek (every assignment and resumed flow; the log start when nothing is committed
    yet, where the consumer is also sought, so auto_offset_reset=earliest holds after a take-over
    too), then one past each record handed over. A record past it is not handed over; the
    partition is sought back to it (re-reading is safe: counting is idempotent), and the
    partition's later records in the same fetch are dropped too. A jump still there after
    ``max_reseeks`` seeks to the same offset is a real hole in the log (records deleted by
    retention) and is let through, with a warning.

    ``install(consumer)`` wraps the consumer instance's ``getmany``, ``perform_seek``, ``seek``
    and ``on_partitions_revoked``; it must run before Faust's fetcher first starts (the fetcher
    binds ``getmany`` once), e.g. from the first ``on_partitions_assigned`` signal."""

    def __init__(self, topic: str, max_reseeks: int = 3):
        self.topic = topic
        self.max_reseeks = max_reseeks
        self.expected: dict[Any, int | None] = {}
        self._reseeks: dict[Any, tuple[int, int]] = {}  # tp -> (offset sought back to, times)
        self.seeks = 0          # seeks seen (perform_seek or seek): the fetch "epoch"
        self.held_back = 0      # records not handed over because they lay past the expected offset
        self.let_through = 0    # jumps accepted as real holes in the log
        self._installed_on: Any = None

    # -- state changes ------------------------------------------------------------------------------
    def sought(self, offsets: dict) -> None:
        """The consumer was sought: ``offsets`` maps partitions to the next offset to read (None:
        unknown)."""
        self.seeks += 1
        for tp, offset in offsets.items():
            if tp.topic == self.topic:
                self.expected[tp] = offset if offset is not None and offset >= 0 else None

    def revoked(self, tps) -> None:
        for tp in tps:
            self.expected.pop(tp, None)
            self._reseeks.pop(tp, None)

    def check(self, tp, offset: int, stale: bool = False) -> int | None:
        """Decide about one record aiokafka handed over (``stale``: its fetch was asked for before
        the latest seek). Returns None to hand it to Faust, or the offset to seek the partition
        back to."""
        if tp.topic != self.topic:
            return None
        expected = self.expected.get(tp)
        if expected is None or offset <= expected:
            if expected is None or offset == expected:
                self.expected[tp] = offset + 1
                self._reseeks.pop(tp, None)
            return None  # (below it: a record read again, which Faust itself drops)
        sought_to, times = self._reseeks.get(tp, (None, 0))
        times = times if sought_to == expected else 0
        if times >= self.max_reseeks:
            log.warning("partition %d: offsets %d to %d are missing from the events topic (still "
                        "after %d seeks back); continuing at %d", tp.partition, expected, offset - 1,
                        times, offset)
            self.let_through += 1
            self._reseeks.pop(tp, None)
            self.expected[tp] = offset + 1
            return None
        log.warning("partition %d: offset %d handed over where %d was expected (%s); reading again "
                    "from %d", tp.partition, offset, expected,
                    "fetched before the last seek" if stale else "fetched after the last seek", expected)
        self._reseeks[tp] = (expected, times + 1)
        self.held_back += 1
        return expected

    # -- wiring into a Faust consumer ---------------------------------------------------------------
    def install(self, consumer) -> None:
        if self._installed_on is consumer:
            return
        self._installed_on = consumer
        guard = self
        getmany, perform_seek, seek = consumer.getmany, consumer.perform_seek, consumer.seek
        on_revoked = consumer.on_partitions_revoked

        async def guarded_getmany(timeout: float):
            epoch = guard.seeks
            held: set = set()
            async for tp, message in getmany(timeout):
                if tp in held:
                    guard.held_back += 1
                    continue
                back_to = guard.check(tp, message.offset, stale=guard.seeks != epoch)
                if back_to is None:
                    yield tp, message
                    continue
                held.add(tp)
                try:
                    await consumer.seek_wait({tp: back_to})
                except Exception as exc:  # noqa: BLE001 - e.g. revoked meanwhile: the next seek resets it
                    log.warning("partition %d could not be sought back (%s); it is read again from "
                                "the committed offset after the rebalance", tp.partition,
                                type(exc).__name__)

        async def guarded_perform_seek():
            await perform_seek()
            read = consumer._read_offset
            mine = [tp for tp in consumer.assignment() if tp.topic == guard.topic]
            offsets = {tp: read.get(tp) for tp in mine}
            unknown = [tp for tp, offset in offsets.items() if offset is None]
            if unknown:  # nothing committed: from the log start (auto_offset_reset=earliest)
                try:
                    earliest = await consumer.earliest_offsets(*unknown)
                    start = {tp: earliest.get(tp) or 0 for tp in unknown}
                    await consumer.seek_wait(start)
                    offsets.update(start)
                except Exception as exc:  # noqa: BLE001 - a rebalance meanwhile: left unknown
                    log.warning("%d partitions with nothing committed could not be sought to the log "
                                "start (%s)", len(unknown), type(exc).__name__)
            guard.sought(offsets)

        async def guarded_seek(partition, offset: int):
            await seek(partition, offset)
            guard.sought({partition: offset})

        async def guarded_on_revoked(revoked):
            guard.revoked(revoked)
            await on_revoked(revoked)

        consumer.getmany = guarded_getmany
        consumer.perform_seek = guarded_perform_seek
        consumer.seek = guarded_seek
        consumer.on_partitions_revoked = guarded_on_revoked


class WorkerState:
    """The Faust worker's state as the exposition reads it (``EngineMetrics.bind``), so that no
    other module reaches into the app's consumer: rebalancing and table-restore flags, and for each
    assigned partition of the events topic ``(high watermark or None while unknown, the group's
    committed offset or 0)``. Before the app has started, nothing is assigned."""

    def __init__(self, app, topic: str) -> None:
        self._app = app
        self._topic = topic

    @property
    def rebalancing(self) -> bool:
        return bool(getattr(self._app, "rebalancing", False))

    @property
    def restoring(self) -> bool:
        return bool(getattr(self._app, "in_recovery", False))

    def positions(self) -> dict[int, tuple[int | None, int]]:
        try:
            consumer = self._app.consumer
            assignment = consumer.assignment()
        except Exception:  # noqa: BLE001 - the consumer does not exist before the app starts
            return {}
        committed = getattr(consumer, "_committed_offset", {})  # Faust's record of its own commits
        return {tp.partition: (consumer.highwater(tp), committed.get(tp) or 0)
                for tp in assignment if tp.topic == self._topic}
