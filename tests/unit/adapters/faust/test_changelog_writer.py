"""ChangelogWriter (casewatch/adapters/faust/changelog.py) against a stand-in for aiokafka's
producer: per-partition batches, the newest value per key, a value larger than a batch on its own,
and a failed batch sent again with the key's current value. (Its commit guard:
test_flush_before_commit.py.)"""
from __future__ import annotations

import asyncio

from casewatch.adapters.faust.changelog import ChangelogWriter


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
