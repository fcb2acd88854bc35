"""No offset of the events topic is committed before the changelog records of the events it covers
were delivered (casewatch/adapters/faust/changelog.py, ``ChangelogWriter.guard_commits``).

Faust's own commit code runs here (``Consumer._commit_offsets``, called on a fake consumer), with a
stand-in for aiokafka's producer whose batches are delivered only when the test (or the event
loop, a moment later) says so:

* Faust 0.15.3 flushes the producer and then commits through ``Consumer._commit``, the one call the
  guard wraps: a Faust that commits another way, or no longer flushes first, fails the first test;
* with the guard, the commit waits for every changelog batch submitted before it even when nothing
  flushes the producer, re-sends a failed batch first, and is skipped (offsets not committed) while
  a batch still fails.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from types import SimpleNamespace

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP

from casewatch.adapters.faust.changelog import ChangelogWriter

EVENTS_P0 = TP("events", 0)
TOPIC = "engine-case_histories-changelog"


class Producer:
    """aiokafka's producer as the writer uses it: batches and futures the test completes."""

    def __init__(self, fail_first: int = 0, deliver_after: float | None = None):
        self.sent: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        self.futures: list[asyncio.Future] = []
        self.fail_first = fail_first            # this many batches fail
        self.deliver_after = deliver_after      # seconds until a batch is delivered (None: never by itself)

    def create_batch(self):
        producer = self

        class Batch:
            def __init__(self):
                self.records = []

            def append(self, *, key, value, timestamp):
                self.records.append((key, value))
                return object()
        return Batch()

    async def send_batch(self, batch, topic, *, partition):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.sent.append((partition, list(batch.records)))
        self.futures.append(future)
        failing = len(self.futures) <= self.fail_first
        if self.deliver_after is not None:
            def settle():
                if not future.done():
                    if failing:
                        future.set_exception(RuntimeError("NotLeaderForPartition"))
                    else:
                        future.set_result(None)
            loop.call_later(self.deliver_after, settle)
        return future

    def delivered(self) -> bool:
        return all(f.done() and not f.cancelled() and f.exception() is None for f in self.futures)


class Log:
    """Faust's service logger as the commit code uses it."""

    def __init__(self):
        self.logger = logging.getLogger("test.consumer")

    def dev(self, *args, **kwargs):
        self.logger.debug(*args)

    def info(self, *args, **kwargs):
        self.logger.info(*args)

    def log(self, level, *args, **kwargs):
        self.logger.log(level, *args)


class FakeConsumer:
    """What ``Consumer._commit_offsets`` reads of a Faust consumer and its app."""

    def __init__(self, flush, journal: list):
        self.log = Log()
        self.in_transaction = False
        self._committed_offset = defaultdict(lambda: None)
        self.journal = journal
        self.committed: list[dict] = []
        self.app = SimpleNamespace(producer=SimpleNamespace(flush=flush),
                                   tables=SimpleNamespace(on_commit=lambda offsets: None),
                                   monitor=SimpleNamespace(on_tp_commit=lambda offsets: None))

    def assignment(self):
        return {EVENTS_P0}

    commit_seen_in_flight = 0
    producer: Producer | None = None

    async def _commit(self, offsets) -> bool:  # the Kafka commit (aiokafka's, in the real one)
        self.journal.append("commit")
        if self.producer is not None:
            self.commit_seen_in_flight = sum(not f.done() for f in self.producer.futures)
        self.committed.append(dict(offsets))
        return True

    async def commit_offsets(self, offsets) -> bool:
        """Faust's own code for committing ``offsets``."""
        return await FaustConsumer._commit_offsets(self, offsets)


def test_faust_flushes_the_producer_then_commits_through_the_call_the_guard_wraps():
    journal: list[str] = []

    async def flush():
        journal.append("flush")

    consumer = FakeConsumer(flush, journal)
    assert asyncio.run(consumer.commit_offsets({EVENTS_P0: 42})) is True
    assert journal == ["flush", "commit"]
    assert consumer.committed == [{EVENTS_P0: 42}]


def writer_for(producer: Producer, table: dict) -> ChangelogWriter:
    return ChangelogWriter(lambda: producer, TOPIC, lambda partition, key: table.get(key))


def test_with_the_guard_a_commit_waits_for_every_changelog_batch_even_without_a_producer_flush():
    journal: list[str] = []
    producer = Producer(deliver_after=0.05)

    async def no_flush():  # a Faust that would no longer flush before committing
        journal.append("flush (nothing)")

    async def scenario():
        consumer = FakeConsumer(no_flush, journal)
        writer = writer_for(producer, {})
        writer.add(0, b"child-a", b"history a")
        writer.add(3, b"child-b", b"history b")
        await writer.flush()                      # submitted, not delivered yet
        assert producer.futures and not producer.delivered()
        original = consumer._commit

        async def commit_seen(offsets):
            journal.append(f"delivered before the commit: {producer.delivered()}")
            return await original(offsets)
        consumer._commit = commit_seen
        writer.guard_commits(consumer)
        writer.guard_commits(consumer)            # idempotent: wrapped once
        return await consumer.commit_offsets({EVENTS_P0: 7}), consumer

    did_commit, consumer = asyncio.run(scenario())
    assert did_commit is True
    assert journal == ["flush (nothing)", "delivered before the commit: True", "commit"]
    assert consumer.committed == [{EVENTS_P0: 7}]


def test_without_the_guard_the_same_commit_goes_ahead_with_batches_in_flight():
    # The check that the scenario above can fail: nothing else holds the commit back.
    journal: list[str] = []
    producer = Producer(deliver_after=None)

    async def no_flush():
        pass

    async def scenario():
        consumer = FakeConsumer(no_flush, journal)
        writer = writer_for(producer, {})
        writer.add(0, b"child-a", b"history a")
        await writer.flush()
        await consumer.commit_offsets({EVENTS_P0: 7})
        return producer.delivered()

    assert asyncio.run(scenario()) is False
    assert journal == ["commit"]


def _commit_after_one_batch(producer, table: dict, journal: list, newer: bytes | None = None):
    """One batch of child-a's stored value submitted, then (``newer``: the child's next stored value)
    a guarded commit of events offset 9: ``(did it commit, the consumer, the writer)``."""
    async def flush():
        journal.append("flush")

    async def scenario():
        consumer = FakeConsumer(flush, journal)
        writer = writer_for(producer, table)
        writer.add(0, b"child-a", table[b"child-a"])
        await writer.flush()
        if newer is not None:
            table[b"child-a"] = newer
        writer.guard_commits(consumer)
        return await consumer.commit_offsets({EVENTS_P0: 9}), consumer, writer

    return asyncio.run(scenario())


def test_a_failed_batch_is_sent_again_with_the_current_value_before_the_commit():
    journal: list[str] = []
    producer = Producer(fail_first=1, deliver_after=0.01)
    # the child had another event after the batch was submitted
    did_commit, consumer, writer = _commit_after_one_batch(producer, {b"child-a": b"history a v1"}, journal,
                                                           newer=b"history a v2")
    assert did_commit is True and consumer.committed == [{EVENTS_P0: 9}]
    assert producer.sent == [(0, [(b"child-a", b"history a v1")]), (0, [(b"child-a", b"history a v2")])]
    assert writer.resent_batches == 1 and writer.commits_held == 0


def test_a_commit_is_skipped_while_a_changelog_batch_keeps_failing():
    journal: list[str] = []
    producer = Producer(fail_first=100, deliver_after=0.0)
    did_commit, consumer, writer = _commit_after_one_batch(producer, {b"child-a": b"history a"}, journal)
    assert did_commit is False
    assert consumer.committed == [] and "commit" not in journal
    assert writer.commits_held == 1
    # sent, then re-sent in each later round of the settle; still failed, it stays queued and goes
    # again with the next flush (the next commit waits for it in turn)
    assert len(producer.sent) == writer.settle_rounds
    asyncio.run(writer.flush())
    assert len(producer.sent) == writer.settle_rounds + 1
    assert producer.sent[-1] == (0, [(b"child-a", b"history a")])


def test_a_commit_does_not_wait_for_batches_the_agent_submits_after_it_began():
    # The commit runs beside the agent (Faust's commit timer): batches submitted while it waits
    # cover events it does not commit, and must not hold it back.
    journal: list[str] = []
    producer = Producer(deliver_after=0.02)

    async def flush():
        journal.append("flush")

    async def scenario():
        consumer = FakeConsumer(flush, journal)
        consumer.producer = producer
        writer = writer_for(producer, {})
        writer.add(0, b"child-a", b"history a")
        await writer.flush()
        writer.guard_commits(consumer)

        async def agent():  # keeps submitting batches, each delivered a moment later
            for n in range(100):
                writer.add(1, b"child-%d" % n, b"history")
                await writer.flush()
                await asyncio.sleep(0.002)
        busy = asyncio.ensure_future(agent())
        await asyncio.sleep(0)
        did_commit = await consumer.commit_offsets({EVENTS_P0: 3})
        await busy
        return did_commit, consumer, writer

    did_commit, consumer, writer = asyncio.run(scenario())
    assert did_commit is True and consumer.committed == [{EVENTS_P0: 3}]
    assert writer.commits_held == 0
    # it committed once the batches in flight when it began were delivered, while the agent was
    # still submitting (a wait for "nothing in flight" would have given up after its rounds)
    assert consumer.commit_seen_in_flight > 0


def test_a_failed_batch_of_a_key_no_longer_held_is_not_sent_again_and_holds_nothing():
    # A partition given up meanwhile: its new owner writes that changelog partition now.
    journal: list[str] = []
    producer = Producer(fail_first=1, deliver_after=0.0)
    table = {b"child-a": b"history a"}

    async def flush():
        journal.append("flush")

    async def scenario():
        consumer = FakeConsumer(flush, journal)
        writer = writer_for(producer, table)
        writer.add(0, b"child-a", b"history a")
        await writer.flush()
        del table[b"child-a"]
        writer.guard_commits(consumer)
        return await consumer.commit_offsets({EVENTS_P0: 4}), consumer

    did_commit, consumer = asyncio.run(scenario())
    assert did_commit is True and consumer.committed == [{EVENTS_P0: 4}]
    assert len(producer.sent) == 1
