"""ChangelogWriter (casewatch/adapters/faust/changelog.py) against a stand-in for aiokafka's
producer: per-partition batches, the newest value per key, a value larger than a batch on its own,
a failed batch sent again with the key's current value, and each delivered batch's last offset
recorded as the rocksdb store's persisted offset (where a restarted worker's restore starts), on
a real Faust rocksdb table. (Its commit guard: test_flush_before_commit.py.)"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
from faust.types import TP

from casewatch.adapters.faust.changelog import ChangelogWriter, TableHistories


class FakeBatch:
    def __init__(self, capacity: int):
        self.capacity, self.records = capacity, []

    def append(self, *, key, value, timestamp):
        if self.records and sum(len(v) for _, v in self.records) + len(value) > self.capacity:
            return None
        if not self.records and len(value) > self.capacity:
            return None
        self.records.append((key, value))
        return object()


class FakeProducer:
    def __init__(self, capacity: int = 100):
        self.capacity = capacity
        self.sent: list[tuple[str, int, list]] = []
        self.futures: list[asyncio.Future] = []

    def create_batch(self):
        return FakeBatch(self.capacity)

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((topic, partition, list(batch.records)))
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    async def send(self, topic, value, *, key, partition):
        self.sent.append((topic, partition, [(key, value)]))
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def test_changelog_records_go_per_partition_newest_value_per_key_and_large_ones_alone():
    async def scenario():
        producer = FakeProducer(capacity=100)
        table = {}
        writer = ChangelogWriter(lambda: producer, "app-case_histories-changelog", lambda p, k: table.get(k))
        writer.add(0, b"a", b"1" * 10)
        writer.add(0, b"a", b"2" * 10)        # the newer value of the same key replaces it
        writer.add(1, b"b", b"3" * 60)
        writer.add(1, b"c", b"4" * 60)        # does not fit with b: a second batch
        writer.add(1, b"d", b"5" * 500)       # larger than a batch: sent on its own
        await writer.flush()
        return producer.sent

    sent = asyncio.run(scenario())
    records = {(p, k): v for _, p, batch in sent for k, v in batch}
    assert records == {(0, b"a"): b"2" * 10, (1, b"b"): b"3" * 60, (1, b"c"): b"4" * 60, (1, b"d"): b"5" * 500}
    assert sum(len(batch) for _, _, batch in sent) == 4
    assert {topic for topic, _, _ in sent} == {"app-case_histories-changelog"}


def test_a_failed_changelog_batch_is_sent_again_with_the_keys_current_values():
    async def scenario():
        producer = FakeProducer()
        table = {b"a": b"old"}
        writer = ChangelogWriter(lambda: producer, "t", lambda p, k: table.get(k))
        writer.add(0, b"a", b"old")
        await writer.flush()
        producer.futures[0].set_exception(RuntimeError("broker gone"))
        table[b"a"] = b"new"                   # the key changed since
        await writer.flush()
        return producer.sent, writer.resent_batches

    sent, resent = asyncio.run(scenario())
    assert resent == 1
    assert sent[-1] == ("t", 0, [(b"a", b"new")])  # never the stale value after a newer one


# -- the persisted offset: what a restarted rocksdb worker starts its restore from ------------------
def rocksdb_table(datadir, name: str = "test-persisted"):
    """A real Faust table on the rocksdb store (not started), addressed through TableHistories."""
    app = faust.App(name, broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=str(datadir),
                    web_enabled=False, key_serializer="raw", value_serializer="raw")
    stored = TableHistories()
    table = app.Table("case_histories", default=None, partitions=4, key_type=bytes, value_type=bytes,
                      on_changelog_event=stored.restored)
    stored.bind(table)
    return app, table, stored


def delivered(future: asyncio.Future, base_offset: int) -> None:
    """What aiokafka's batch future resolves to: metadata whose offset is the first record's."""
    future.set_result(SimpleNamespace(offset=base_offset))


def test_a_delivered_batch_records_its_partitions_last_offset_in_the_rocksdb_store(tmp_path):
    async def scenario():
        producer = FakeProducer(capacity=10_000)
        app, table, stored = rocksdb_table(tmp_path)
        app.producer = SimpleNamespace(_ensure_producer=lambda: producer)
        writer = ChangelogWriter.for_table(app, table, stored)
        topic = writer.topic
        for key in (b"a", b"b", b"c"):
            stored.put(0, key, key * 3)
            writer.add(0, key, key * 3)
        stored.put(1, b"d", b"ddd")
        writer.add(1, b"d", b"ddd")
        await writer.flush()
        (_, p0, batch0), (_, p1, _) = producer.sent
        assert (p0, p1, len(batch0)) == (0, 1, 3)
        delivered(producer.futures[0], 40)       # partition 0: offsets 40, 41, 42
        delivered(producer.futures[1], 7)        # partition 1: offset 7
        await asyncio.sleep(0)                   # the done callbacks run
        offsets = {p: table.data.persisted_offset(TP(topic, p)) for p in (0, 1)}

        # a failed batch records nothing; an earlier batch delivered after a later one lowers nothing
        writer.add(0, b"a", b"a4")
        writer.add(1, b"d", b"d4")
        await writer.flush()
        producer.futures[2].set_exception(RuntimeError("broker gone"))
        delivered(producer.futures[3], 5)
        await asyncio.sleep(0)
        after_failure = {p: table.data.persisted_offset(TP(topic, p)) for p in (0, 1)}

        # a partition whose database is not open (given up) is not opened again for it
        stored.persisted(topic, 3, 99)
        opened = sorted(table.data._dbs)
        for db in table.data._dbs.values():      # a killed worker's databases: closed, kept on disk
            db.close()
        return topic, offsets, after_failure, opened

    topic, offsets, after_failure, opened = asyncio.run(scenario())
    assert offsets == {0: 42, 1: 7}
    assert after_failure == {0: 42, 1: 7}
    assert opened == [0, 1]
    # A worker started again on the same directory: Faust's recovery starts each partition at the
    # table's persisted offset (Recovery._add reads table.persisted_offset), not at the start.
    _, table, _ = rocksdb_table(tmp_path)
    assert table.persisted_offset(TP(topic, 0)) == 42
    assert table.persisted_offset(TP(topic, 1)) == 7
    assert table.persisted_offset(TP(topic, 2)) is None   # nothing delivered: the whole changelog


def test_a_value_sent_on_its_own_records_its_own_offset(tmp_path):
    async def scenario():
        producer = FakeProducer(capacity=10)
        _, table, stored = rocksdb_table(tmp_path)
        writer = ChangelogWriter(lambda: producer, "t", stored.get,
                                 delivered=lambda p, offset: stored.persisted("t", p, offset))
        stored.put(2, b"big", b"x" * 50)
        writer.add(2, b"big", b"x" * 50)         # larger than a batch: the producer's send
        await writer.flush()
        delivered(producer.futures[0], 11)
        await asyncio.sleep(0)
        return table.data.persisted_offset(TP("t", 2))

    assert asyncio.run(scenario()) == 11
