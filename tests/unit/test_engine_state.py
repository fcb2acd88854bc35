"""The engine's per-partition state (services/engine/state.py) and its changelog value
(services/engine/changelog.py), without Kafka: applied one event at a time, in any order and with
repeats, the figures are those of the whole history computed at once; a bad event changes nothing;
the stored value restores the same figures."""
from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings, strategies as st

from casewatch.domain.aggregate import combine_series
from services.engine.changelog import ChangelogWriter, decode_history, encode_history, extend_history
from services.engine.state import PartitionedFigures
from tests.unit.test_golden import CALENDAR, SCENARIOS, key_of, load, run

LOADED = [load(p) for p in SCENARIOS]


def figures_for(as_of) -> PartitionedFigures:
    return PartitionedFigures(CALENDAR, lambda: as_of)


def samples_of(figures: PartitionedFigures) -> dict:
    # the golden helper's form: (metric, sorted labels) -> value, every series
    return {key: value for key, value in combine_series(
        f.aggregate.series() for f in figures.partitions.values()).items()}


def golden_samples(data) -> dict:
    return {(metric, labels): value for (metric, labels), value in run(data["events"], data["as_of"])[0].items()}


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(LOADED), st.data())
def test_one_event_at_a_time_in_any_order_gives_the_figures_of_the_whole_history(data, draw):
    events = list(data["events"])
    repeats = draw.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    arrival = draw.draw(st.permutations(events + repeats))
    figures = figures_for(data["as_of"])
    stored: dict[str, list[dict]] = {}
    for event in arrival:
        key = key_of(event)
        applied = figures.apply(hash(key) % 3, key, [event], None)
        if applied.history is not None:
            stored[key] = applied.to_store
    live, whole = samples_of(figures), golden_samples(data)
    # the same figures; a series seen on the way keeps being published at 0 (no vanishing series)
    assert {k: v for k, v in live.items() if v} == {k: v for k, v in whole.items() if v}
    assert set(whole) <= set(live)
    # and a worker rebuilding from the stored histories has the same figures
    rebuilt = figures_for(data["as_of"])
    for p in range(3):
        rebuilt.rebuild(p, [(k, v) for k, v in stored.items() if hash(k) % 3 == p])
    assert {k: v for k, v in samples_of(rebuilt).items() if v} == {k: v for k, v in live.items() if v}


def test_a_group_with_an_unusable_event_changes_nothing_and_its_valid_events_still_count():
    data = LOADED[0]
    key = key_of(data["events"][0])
    mine = [e for e in data["events"] if key_of(e) == key]
    bad = {**mine[0], "event_id": ["not", "an", "id"]}  # unhashable: as if it bypassed ingest
    figures = figures_for(data["as_of"])
    with pytest.raises(TypeError):
        figures.apply(0, key, [*mine, bad], None)
    assert figures.partition(0).keys[key].parsed == []
    # the engine then applies the group's events one by one: the valid ones are not "duplicates"
    counted = [figures.apply(0, key, [e], None) for e in mine]
    assert all(a.duplicates == 0 and a.history is not None for a in counted)


def test_the_stored_value_grows_by_appending_and_reads_back_as_the_whole_history():
    data = LOADED[0]
    key = key_of(data["events"][0])
    figures = figures_for(data["as_of"])
    value = None
    for event in [e for e in data["events"] if key_of(e) == key]:
        applied = figures.apply(2, key, [event], None)
        value = extend_history(value, 2, applied.appended, lambda: applied.to_store)
        assert value == encode_history(2, applied.to_store)
    partition, events = decode_history(value)
    assert partition == 2 and events == figures.partition(2).keys[key].events
    assert json.loads(value) == {"p": 2, "e": events}


# -- ChangelogWriter against a stand-in for aiokafka's producer -------------------------------------
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
        writer = ChangelogWriter(lambda: producer, "app-case_histories-changelog", table.get)
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
        writer = ChangelogWriter(lambda: producer, "t", table.get)
        writer.add(0, b"a", b"old")
        await writer.flush()
        producer.futures[0].set_exception(RuntimeError("broker gone"))
        table[b"a"] = b"new"                   # the key changed since
        await writer.flush()
        return producer.sent, writer.resent_batches

    sent, resent = asyncio.run(scenario())
    assert resent == 1
    assert sent[-1] == ("t", 0, [(b"a", b"new")])  # never the stale value after a newer one
