"""``casewatch load``: 100,000 events with 1% malformed, against a real Kafka.

The topics are read back once, after the second load: each record is told to the first or the second
load by its offset (below or above the partition's end offset after the first load), so the counts
of each load, its distinct ids and the reload's same ids are checked on one read of 200,000 records
rather than two reads of 100,000 and 200,000."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from schemas import IDENTIFIER_FIELDS, parse_wire
from casewatch.edge.bulk_load import PRODUCER_OPTIONS, load_files
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics

from tests.integration.test_ingest_kafka import RAW_PREFIX, topic_settings
from tests.support.kafka_topics import end_offsets, read_records
from schemas.examples import valid_examples

pytestmark = pytest.mark.integration

TOTAL = 100_000
MALFORMED_EVERY = 100  # 1%: records 99, 199, ...


def write_file(path):
    """100,000 events without event_id (the loader derives it); every 100th is malformed, cycling
    through four kinds. Returns the expected rejection counts by reason."""
    examples = valid_examples()
    types = sorted(examples)
    expected = Counter()
    rng = random.Random(7)
    with path.open("w") as fh:
        for n in range(TOTAL):
            event = dict(examples[types[n % len(types)]])
            event.pop("event_id")
            event.pop("source_system")
            for name in IDENTIFIER_FIELDS:  # an extract holds the case system's own ids, never pseudonyms
                if isinstance(event.get(name), str):
                    event[name] = f"{RAW_PREFIX}{name}-{n:06d}"
            if "child_ref" in event:
                event["child_ref"] = f"{RAW_PREFIX}{n:06d}"
            else:
                event["establishment_fte"] = n / 10  # keep workforce snapshots distinct
            event["recorded_at"] = f"{event['effective_date']}T16:{rng.randrange(60):02d}:{n % 60:02d}+01:00"
            if n % MALFORMED_EVERY == MALFORMED_EVERY - 1:
                kind = (n // MALFORMED_EVERY) % 4
                if kind == 0:
                    fh.write('{"event_type": "icpc.held", "child_ref": "' + f"{RAW_PREFIX}{n:06d}" + '", \n')
                    expected["json_invalid"] += 1
                    continue
                if kind == 1:
                    event["team"] = "cp_99"
                    expected["team (team)"] += 1
                elif kind == 2:
                    event.pop("la_code")
                    expected["missing (la_code)"] += 1
                else:
                    event["notes"] = f"{RAW_PREFIX}{n:06d} seen at school"
                    expected["extra_forbidden"] += 1
            fh.write(json.dumps(event) + "\n")
    return expected


def test_bulk_load_of_100000_events_counts_what_the_topics_hold_and_reloads_with_the_same_ids(kafka_bootstrap, tmp_path):
    path = tmp_path / "events.jsonl"
    expected_rejections = write_file(path)
    assert sum(expected_rejections.values()) == 1000
    s = topic_settings(kafka_bootstrap, teams="cp_1,lac_1")
    ensure_topics(s)

    publisher = EventPublisher(s, source_system="loader", source="loader", **PRODUCER_OPTIONS)
    try:
        first = load_files([path], publisher)
    finally:
        publisher.close()
    assert (first.read, first.published, first.dead_lettered, first.kafka_failures) == (100_000, 99_000, 1_000, 0)
    assert first.rejected_by_reason == expected_rejections

    first_ends = {topic: end_offsets(s.bootstrap, topic) for topic in (s.events_topic, s.deadletter_topic)}
    assert sum(first_ends[s.events_topic].values()) == first.published
    assert sum(first_ends[s.deadletter_topic].values()) == first.dead_lettered

    publisher = EventPublisher(s, source_system="loader", source="loader", **PRODUCER_OPTIONS)
    try:
        second = load_files([path], publisher)
    finally:
        publisher.close()
    assert (second.published, second.dead_lettered) == (99_000, 1_000)
    events = read_records(s.bootstrap, s.events_topic)
    letters = read_records(s.bootstrap, s.deadletter_topic)
    assert (len(events), len(letters)) == (198_000, 2_000)

    def by_load(records, topic):
        ends = first_ends[topic]
        return ([r for r in records if r.offset < ends[r.partition]],
                [r for r in records if r.offset >= ends[r.partition]])

    events_first, events_second = by_load(events, s.events_topic)
    letters_first, letters_second = by_load(letters, s.deadletter_topic)
    assert (len(events_first), len(letters_first)) == (first.published, first.dead_lettered)
    assert (len(events_second), len(letters_second)) == (second.published, second.dead_lettered)
    ids_first = Counter(parse_wire(r.value).event_id for r in events_first)
    ids_second = Counter(parse_wire(r.value).event_id for r in events_second)
    assert len(ids_first) == 99_000 and set(ids_first.values()) == {1}   # 99,000 distinct ids
    assert ids_second == ids_first                                       # the reload: the same ids
    # identifier scan over everything written
    for r in events + letters:
        assert RAW_PREFIX.encode() not in r.value and (r.key is None or RAW_PREFIX.encode() not in r.key)
