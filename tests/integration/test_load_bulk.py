"""``casewatch load``: 100,000 events with 1% malformed, against a real Kafka."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from schemas import IDENTIFIER_FIELDS, parse_wire
from casewatch.edge.bulk_load import load_files
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics

from tests.integration.test_ingest_kafka import RAW_PREFIX, read_topic, topic_settings
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

    publisher = EventPublisher(s, source_system="loader", source="loader", max_block_ms=60000,
                               delivery_timeout_ms=120000)
    try:
        first = load_files([path], publisher)
    finally:
        publisher.close()
    assert (first.read, first.published, first.dead_lettered, first.kafka_failures) == (100_000, 99_000, 1_000, 0)
    assert first.rejected_by_reason == expected_rejections

    events = read_topic(s, s.events_topic)
    letters = read_topic(s, s.deadletter_topic)
    assert len(events) == first.published and len(letters) == first.dead_lettered
    ids_first = {parse_wire(v).event_id for _, v in events}
    assert len(ids_first) == 99_000

    publisher = EventPublisher(s, source_system="loader", source="loader", max_block_ms=60000,
                               delivery_timeout_ms=120000)
    try:
        second = load_files([path], publisher)
    finally:
        publisher.close()
    assert (second.published, second.dead_lettered) == (99_000, 1_000)
    events = read_topic(s, s.events_topic)
    assert len(events) == 198_000
    assert Counter(Counter(parse_wire(v).event_id for _, v in events).values()) == {2: 99_000}
    # identifier scan over everything written
    for key, value in events + read_topic(s, s.deadletter_topic):
        assert RAW_PREFIX.encode() not in value and (key is None or RAW_PREFIX.encode() not in key)
