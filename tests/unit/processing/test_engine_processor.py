"""The engine's batch processing (casewatch/processing/processor.py) with fakes for every port: the
figures are the real ones (over a golden scenario's events), everything else records what it was
given. Expected counts and payloads are worked out here from the input, never by the processor."""
from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass

from casewatch.adapters.kafka.replay_marking import is_control, replay_end_headers, replay_headers, replay_marking
from schemas import EVENT_TYPES
from casewatch.processing.processor import BatchProcessor, Record
from casewatch.processing.figures import Applied, PartitionedFigures
from tests.unit.domain.test_golden import CALENDAR, SCENARIOS, key_of, load

SCENARIO = load(SCENARIOS[0])
KEY = key_of(SCENARIO["events"][0])
CHILD_EVENTS = [e for e in SCENARIO["events"] if key_of(e) == KEY]


class Recorder:
    """The changelog, dead-letter sink, metrics and catch-up ports at once."""

    def __init__(self):
        self.changelog: list[tuple[int, bytes, bytes]] = []
        self.flushes = 0
        self.dead: list[tuple[str, str, dict]] = []
        self.applied: list[str] = []
        self.duplicates = 0
        self.offsets: list[dict] = []
        self.newest: list[float] = []
        self.replay: list[tuple[str, int, str]] = []

    # changelog
    def add(self, partition, key, value):
        self.changelog.append((partition, key, value))

    async def flush(self):
        self.flushes += 1

    # dead-letter sink
    async def dead_letter(self, reason, stage, payload):
        self.dead.append((reason, stage, payload))

    # metrics
    def applied_event(self, event):
        self.applied.append(event["event_id"])

    def duplicate(self):
        self.duplicates += 1

    def applied_offsets(self, last):
        self.offsets.append(dict(last))

    def newest_event_at(self, when):
        self.newest.append(when)

    # catch-up
    def replay_record(self, partition, run_id):
        self.replay.append(("record", partition, run_id))

    def replay_end(self, partition, run_id):
        self.replay.append(("end", partition, run_id))


@dataclass
class MetricsPort:
    recorder: Recorder

    def applied(self, event):
        self.recorder.applied_event(event)

    def duplicate(self):
        self.recorder.duplicate()

    def applied_offsets(self, last):
        self.recorder.applied_offsets(last)

    def newest_event_at(self, when):
        self.recorder.newest_event_at(when)


def read_marking(headers):
    run_id, end = replay_marking(headers)
    return run_id, end, is_control(headers)


class Histories:
    """The history store port (casewatch.processing.store.HistoryStore) as a dict per partition."""

    def __init__(self, values: dict[tuple[int, bytes], bytes] | None = None):
        self.values = dict(values or {})

    def get(self, partition, key):
        return self.values.get((partition, key))

    def put(self, partition, key, value):
        self.values[(partition, key)] = value

    def items(self, partition):
        return [(k, v) for (p, k), v in self.values.items() if p == partition]

    def copy(self) -> "Histories":
        return Histories(self.values)


def processor(figures=None, store=None):
    rec = Recorder()
    proc = BatchProcessor(
        figures=figures or PartitionedFigures(CALENDAR, lambda: SCENARIO["as_of"]),
        store=Histories() if store is None else store, changelog=rec, dead_letters=rec.dead_letter,
        metrics=MetricsPort(rec), catch_up=rec, marking=read_marking, event_types=EVENT_TYPES,
        clock=lambda: 1234.5)
    return proc, rec


def records(events, partition=2, key=KEY.encode(), first_offset=100):
    return [Record(partition, first_offset + n, key, json.dumps(e, default=str).encode())
            for n, e in enumerate(events)]


def test_a_childs_events_are_applied_once_written_once_and_a_repeat_counts_as_a_duplicate():
    proc, rec = processor()
    batch = records(CHILD_EVENTS + [CHILD_EVENTS[0]])
    assert asyncio.run(proc.process(batch)) == len(CHILD_EVENTS)
    assert sorted(rec.applied) == sorted(e["event_id"] for e in CHILD_EVENTS)
    assert rec.duplicates == 1
    # one changelog record for the child (one group), on its own partition, equal to the store's
    ((partition, key, value),) = rec.changelog
    assert (partition, key) == (2, KEY.encode())
    assert proc.store.get(2, key) == value and proc.store.get(1, key) is None
    stored = json.loads(value)
    assert stored["p"] == 2
    assert sorted(e["event_id"] for e in stored["e"]) == sorted(e["event_id"] for e in CHILD_EVENTS)
    assert rec.offsets == [{2: 100 + len(CHILD_EVENTS)}]
    assert rec.newest == [1234.5] and rec.flushes == 1 and rec.dead == []


def test_the_same_batch_again_changes_nothing():
    proc, rec = processor()
    asyncio.run(proc.process(records(CHILD_EVENTS)))
    again = asyncio.run(proc.process(records(CHILD_EVENTS, first_offset=500)))
    assert again == 0
    assert len(rec.applied) == len(CHILD_EVENTS)
    assert rec.duplicates == len(CHILD_EVENTS)
    assert len(rec.changelog) == 1 and rec.newest == [1234.5]


def test_a_new_worker_continues_from_the_stored_history_without_counting_it_again():
    first, first_rec = processor()
    asyncio.run(first.process(records(CHILD_EVENTS[:-1])))
    # a second worker (empty figures) with the stored history gets the last event only
    second, rec = processor(store=first.store.copy())
    assert asyncio.run(second.process(records(CHILD_EVENTS[-1:]))) == 1
    assert rec.applied == [CHILD_EVENTS[-1]["event_id"]]
    (_, _, value), = rec.changelog
    assert len(json.loads(value)["e"]) == len(CHILD_EVENTS)


class PoisonFigures(PartitionedFigures):
    """The real figures, except that one event id raises (as an event that breaks the domain)."""

    def __init__(self, poison: str):
        super().__init__(CALENDAR, lambda: SCENARIO["as_of"])
        self.poison = poison

    def apply(self, p, key, events, stored):
        if any(e["event_id"] == self.poison for e in events):
            raise ValueError("poison")
        return super().apply(p, key, events, stored)


def test_a_poison_event_is_dead_lettered_alone_and_the_rest_of_its_group_counts():
    poison = CHILD_EVENTS[1]
    proc, rec = processor(figures=PoisonFigures(poison["event_id"]))
    assert asyncio.run(proc.process(records(CHILD_EVENTS))) == len(CHILD_EVENTS) - 1
    # (the golden scenarios' event ids are not UUIDs, so a dead letter keeps the type only)
    assert rec.dead == [("unprocessable", "apply", {"event_type": poison["event_type"]})]
    assert poison["event_id"] not in rec.applied
    assert rec.duplicates == 0


def test_what_cannot_be_decoded_or_lacks_its_envelope_is_dead_lettered_with_its_reason():
    proc, rec = processor()
    event = {**CHILD_EVENTS[0], "event_id": "0b7c1f9e-5d4a-4c1b-9f33-2a6d8e0c4b11"}
    batch = [
        Record(0, 1, b"k", b"not json{"),
        Record(0, 2, b"k", b"[]"),
        Record(0, 3, b"k", json.dumps({"event_type": "made.up", "name": "Jo Bloggs"}).encode()),
        Record(0, 4, None, json.dumps(event, default=str).encode()),
        Record(0, 5, b"k", json.dumps([{"event_id": event["event_id"]}, 7]).encode()),
    ]
    assert asyncio.run(proc.process(batch)) == 0
    assert rec.dead == [
        ("undecodable", "decode", {"undecodable_bytes": 9, "sha256": hashlib.sha256(b"not json{").hexdigest()}),
        ("empty_batch", "decode", {}),
        ("missing_envelope_field", "decode", {}),  # neither a known type nor an id: nothing kept
        ("missing_key", "decode", {"event_id": event["event_id"], "event_type": event["event_type"]}),
        ("missing_envelope_field", "decode", {"event_id": event["event_id"]}),
        ("missing_envelope_field", "decode", {"not_an_object": "int"}),
    ]
    assert rec.offsets == [{0: 5}] and rec.changelog == [] and rec.flushes == 1


def test_a_rule_break_is_dead_lettered_with_its_reason_after_the_batch_is_applied():
    event = CHILD_EVENTS[0]

    class BreakingFigures(PartitionedFigures):
        def apply(self, p, key, events, stored):
            applied = super().apply(p, key, events, stored)
            return Applied(applied.events, applied.duplicates, applied.history,
                           [(event["event_id"], "closed_before_opened")], applied.appended)

    proc, rec = processor(figures=BreakingFigures(CALENDAR, lambda: SCENARIO["as_of"]))
    asyncio.run(proc.process(records([event])))
    assert rec.dead == [("closed_before_opened", "rules", {"event_id": event["event_id"]})]


def test_replay_control_records_are_not_events_and_end_the_run_after_its_records():
    proc, rec = processor()
    run = "replay-20261201-abc"
    marked = [Record(2, 100 + n, KEY.encode(), json.dumps(e, default=str).encode(), replay_headers(run))
              for n, e in enumerate(CHILD_EVENTS)]
    end = Record(2, 100 + len(CHILD_EVENTS), b"__casewatch_control__", b"", replay_end_headers(run))
    assert asyncio.run(proc.process(marked + [end])) == len(CHILD_EVENTS)
    assert rec.replay == [("record", 2, run)] * len(CHILD_EVENTS) + [("end", 2, run)]
    assert rec.dead == []  # the control record (empty value) is neither applied nor dead-lettered
    assert rec.offsets == [{2: 100 + len(CHILD_EVENTS)}]


def test_with_a_store_that_outlives_the_worker_a_batch_of_duplicates_writes_the_stored_history_again():
    # rocksdb: the table on disk may hold a history whose changelog record was never delivered;
    # its events, read again (not committed), are all duplicates: the stored value is re-sent.
    first, _ = processor()
    asyncio.run(first.process(records(CHILD_EVENTS)))
    for rewrite, expected in ((False, []), (True, [(2, KEY.encode(), first.store.get(2, KEY.encode()))])):
        again, rec = processor(store=first.store.copy())
        again.rewrite_on_duplicate = rewrite
        assert asyncio.run(again.process(records(CHILD_EVENTS, first_offset=900))) == 0
        assert rec.duplicates == len(CHILD_EVENTS) and rec.applied == []
        assert rec.changelog == expected
