"""The take-over race (casewatch/adapters/faust/changelog.py, TakeOverGuard), with a fake consumer: a fetch
asked for before a rebalance returns, after the post-rebalance seek to the committed offset, with
records from where the worker had read up to before the rebalance. Faust's own gap and commit
code (``Consumer._add_gap`` and ``Consumer._new_offset``, called here on the fake) then commits
past the records in between; with the guard they are read again and the commit never passes an
offset that was not handed over. The offsets are those of a failing run of the two-worker test
under a CPU hog (committed 1255, first record handed over 3286)."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from intervaltree import IntervalTree

from casewatch.adapters.faust.changelog import TakeOverGuard

EVENTS = "events"
P3 = TP(EVENTS, 3)
CHANGELOG = TP("engine-case_histories-changelog", 3)


@dataclass
class Record:
    offset: int


class FakeConsumer:
    """Just what the guard and Faust's gap/commit code use of a Faust consumer. Positions are
    aiokafka's (the next offset a fetch reads); ``in_flight`` is a fetch result that was asked
    for earlier and is handed over by the next ``getmany`` whatever the positions are now."""

    def __init__(self, committed: dict, positions: dict, log_start: int = 0, log_end: int = 10_000):
        self.committed = dict(committed)
        self.position = dict(positions)
        self.log_start, self.log_end = log_start, log_end
        self.in_flight: list[dict] = []
        self.seek_waits: list[dict] = []
        # Faust's consumer state, as its gap and commit code reads it
        self._read_offset = defaultdict(lambda: None)
        self._committed_offset = defaultdict(lambda: None)
        self._gap = defaultdict(IntervalTree)
        self._acked = defaultdict(list)
        self._acked_index = defaultdict(set)

    def assignment(self):
        return set(self.position)

    async def getmany(self, timeout: float):
        if self.in_flight:
            batch = self.in_flight.pop(0)
        else:
            batch = {}
            for tp, pos in self.position.items():
                pos = max(pos, self.log_start)
                batch[tp] = list(range(pos, min(pos + 5, self.log_end)))
                self.position[tp] = pos + len(batch[tp])
        for tp, offsets in batch.items():
            for offset in offsets:
                yield tp, Record(offset)

    async def perform_seek(self):  # as Faust's: seek to committed, read offset = committed
        for tp in self.assignment():
            offset = self.committed.get(tp)
            self._read_offset[tp] = offset
            if offset is not None:
                self._committed_offset[tp] = offset
                self.position[tp] = offset

    async def seek(self, tp, offset):
        self.position[tp] = offset
        self._read_offset[tp] = offset or None

    async def seek_wait(self, partitions):
        self.seek_waits.append(dict(partitions))
        for tp, offset in partitions.items():
            self.position[tp] = offset
            self._read_offset[tp] = offset if offset > 0 else None

    async def earliest_offsets(self, *tps):
        return {tp: self.log_start for tp in tps}

    async def on_partitions_revoked(self, revoked):
        pass

    async def drain(self) -> list[int]:
        """One round of Faust's ``_drain_messages`` (its read-offset and gap logic; every record
        handed over is processed and acked at once); returns the offsets handed over."""
        handed = []
        async for tp, message in self.getmany(1.0):
            r_offset = self._read_offset[tp]
            if r_offset is None or message.offset >= r_offset:
                if message.offset - (r_offset or 0) > 1 and r_offset:
                    await FaustConsumer._add_gap(self, tp, r_offset + 1, message.offset)
                handed.append(message.offset)
                self._acked[tp].append(message.offset)
                self._acked_index[tp].add(message.offset)
                self._read_offset[tp] = message.offset
        return handed

    def commit_offset(self, tp) -> int | None:
        """The offset Faust would commit next for ``tp`` (its own ``_new_offset``)."""
        return FaustConsumer._new_offset(self, tp)


def the_race(guarded: bool) -> tuple[FakeConsumer, TakeOverGuard, list[int]]:
    """Partition 3 stays with the worker through a rebalance: committed 1255, read up to 3285 before
    it (the agent's buffer was dropped at revocation); the fetch in flight returns 3286-3290."""
    consumer = FakeConsumer(committed={P3: 1255}, positions={P3: 3291})
    consumer.in_flight.append({P3: [3286, 3287, 3288, 3289, 3290]})
    guard = TakeOverGuard(EVENTS)
    if guarded:
        guard.install(consumer)

    async def run():
        await consumer.perform_seek()  # the end of the rebalance: back to the committed offset
        return await consumer.drain() + await consumer.drain()
    return consumer, guard, asyncio.run(run())


def test_without_the_guard_faust_commits_past_records_it_never_handed_over():
    # The fake reproduces the defect with Faust's own code: the check that the guard is needed.
    consumer, _, handed = the_race(guarded=False)
    assert handed[:5] == [3286, 3287, 3288, 3289, 3290]
    assert 1255 not in handed
    # Faust took 1256..3285 for a gap: its next commit (3287: the gap plus 3286, the first run of
    # consecutive offsets) passes 1255..3285, none of which was handed over.
    assert consumer.commit_offset(P3) == 3287


def test_with_the_guard_the_partition_is_read_again_from_the_committed_offset():
    consumer, guard, handed = the_race(guarded=True)
    assert handed == [1255, 1256, 1257, 1258, 1259]
    assert consumer.seek_waits == [{P3: 1255}]
    assert guard.held_back == 5
    assert consumer.commit_offset(P3) == 1260
    assert guard.expected[P3] == 1260


def test_with_nothing_committed_the_partition_starts_at_the_log_start():
    # A second worker taking a partition over before the first ever committed it: Faust itself
    # does not seek (nothing committed), so the consumer would go on from wherever it stood.
    consumer = FakeConsumer(committed={}, positions={P3: 700})
    consumer.in_flight.append({P3: [640, 641]})
    guard = TakeOverGuard(EVENTS)
    guard.install(consumer)

    async def run():
        await consumer.perform_seek()
        return await consumer.drain() + await consumer.drain()
    handed = asyncio.run(run())
    assert consumer.seek_waits[0] == {P3: 0}
    assert handed == [0, 1, 2, 3, 4]
    assert consumer.commit_offset(P3) == 5


def test_a_real_hole_in_the_log_is_let_through_after_three_seeks_back():
    # Records 1255..1999 deleted by retention: every fetch from 1255 starts at 2000.
    consumer = FakeConsumer(committed={P3: 1255}, positions={P3: 1255}, log_start=2000)
    guard = TakeOverGuard(EVENTS)
    guard.install(consumer)

    async def run():
        await consumer.perform_seek()
        return [await consumer.drain() for _ in range(5)]
    rounds = asyncio.run(run())
    assert rounds[:3] == [[], [], []]
    assert consumer.seek_waits == [{P3: 1255}] * 3
    assert rounds[3] == [2000, 2001, 2002, 2003, 2004]
    assert guard.let_through == 1


def test_other_topics_and_contiguous_records_pass_untouched():
    consumer = FakeConsumer(committed={P3: 10, CHANGELOG: 50}, positions={P3: 10, CHANGELOG: 50})
    consumer.in_flight.append({CHANGELOG: [90, 91], P3: [10, 11, 12]})
    guard = TakeOverGuard(EVENTS)
    guard.install(consumer)

    async def run():
        await consumer.perform_seek()
        return await consumer.drain()
    assert asyncio.run(run()) == [90, 91, 10, 11, 12]
    assert consumer.seek_waits == [] and guard.held_back == 0


def test_a_revoked_partition_is_forgotten_until_its_next_seek():
    consumer = FakeConsumer(committed={P3: 10}, positions={P3: 10})
    guard = TakeOverGuard(EVENTS)
    guard.install(consumer)

    async def run():
        await consumer.perform_seek()
        before = dict(guard.expected)
        await consumer.on_partitions_revoked({P3})
        return before
    assert asyncio.run(run()) == {P3: 10}
    assert P3 not in guard.expected


def test_a_seek_back_that_fails_drops_the_records_and_does_not_stop_the_fetcher():
    # The partition was revoked between the fetch and the seek back: aiokafka refuses the seek.
    consumer = FakeConsumer(committed={P3: 1255}, positions={P3: 3291})
    consumer.in_flight.append({P3: [3286, 3287]})

    async def refuse(partitions):
        raise RuntimeError("not assigned")
    guard = TakeOverGuard(EVENTS)
    guard.install(consumer)
    consumer.seek_wait = refuse

    async def run():
        await consumer.perform_seek()
        return await consumer.drain()
    assert asyncio.run(run()) == []
    assert guard.held_back == 2
    assert consumer.commit_offset(P3) is None  # nothing handed over, nothing to commit
