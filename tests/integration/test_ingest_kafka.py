"""Ingest against a real Kafka broker: topics, every event type through Kafka and back, and the
HTTP API fuzzed with Hypothesis (real publisher)."""
from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from casewatch.config import Settings
from schemas import IDENTIFIER_FIELDS, parse_event, parse_wire
from schemas.code_lists import all_code_lists, latest_year
from schemas.examples import valid_examples
from services.ingest.api import create_app
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.edge.pseudonymise import Pseudonymiser
from casewatch.adapters.kafka.topics import ensure_topics
from tests.support.kafka_topics import read_topic

pytestmark = pytest.mark.integration

KEY = "integration-test-key-0123456789abcdef012345"
TOKEN = "fuzz-token-0123456789"
RAW_PREFIX = "RAWID-"


def topic_settings(kafka_bootstrap: str, **kw) -> Settings:
    tag = uuid.uuid4().hex[:10]
    base = dict(kafka_bootstrap=kafka_bootstrap, events_topic=f"ingest-ev-{tag}", deadletter_topic=f"ingest-dl-{tag}",
                partitions=3, pseudonymisation_key=KEY, ingest_tokens=json.dumps({"fuzzsys": TOKEN}))
    base.update(kw)
    return Settings(**base)


def raw_example(event_type: str, n: int) -> dict:
    """A valid example carrying raw case-system identifiers, as a source system would send it."""
    event = valid_examples()[event_type]
    event.pop("source_system", None)
    event["event_id"] = str(uuid.uuid4())
    for name in IDENTIFIER_FIELDS:
        if name in event:
            event[name] = f"{RAW_PREFIX}{name}-{n}"
    return event


def test_topics_are_created_with_explicit_configs_and_again_is_fine(kafka_bootstrap):
    s = topic_settings(kafka_bootstrap, partitions=4)
    assert sorted(ensure_topics(s)) == sorted([s.events_topic, s.deadletter_topic, s.events_sources_topic])
    assert ensure_topics(s) == []
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["topic"]: t for t in admin.describe_topics([s.events_topic, s.deadletter_topic])}
        assert len(described[s.events_topic]["partitions"]) == 4
        assert len(described[s.deadletter_topic]["partitions"]) == 1
        resources = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, s.events_topic),
                                            ConfigResource(ConfigResourceType.TOPIC, s.deadletter_topic),
                                            ConfigResource(ConfigResourceType.TOPIC, s.events_sources_topic)])
    finally:
        admin.close()
    configs = {}
    for response in resources:
        for result in response.resources:
            configs[result[3]] = {c[0]: c[1] for c in result[4]}
    assert configs[s.events_topic]["retention.ms"] == "-1"
    assert configs[s.events_topic]["cleanup.policy"] == "delete"
    assert configs[s.events_topic]["min.insync.replicas"] == "1"
    assert configs[s.deadletter_topic]["retention.ms"] == str(2 * 365 * 24 * 3600 * 1000)
    # event id -> source system: one record per event id, kept as long as the events
    assert configs[s.events_sources_topic]["cleanup.policy"] == "compact"


def test_every_event_type_round_trips_model_kafka_model(kafka_bootstrap):
    s = topic_settings(kafka_bootstrap)
    ensure_topics(s)
    publisher = EventPublisher(s, source_system="roundtrip")
    pseudonymiser = Pseudonymiser(KEY.encode(), s.pseudonymisation_key_version)
    sent = {}
    try:
        for n, event_type in enumerate(valid_examples()):
            raw = raw_example(event_type, n)
            checked = publisher.send_and_wait(raw)
            assert checked.ok, (event_type, checked.errors)
            expected = parse_event(dict(pseudonymiser.event(raw), source_system="roundtrip"))
            sent[expected.event_id] = expected
    finally:
        publisher.close()
    records = read_topic(s, s.events_topic)
    assert len(records) == len(sent) == len(valid_examples())
    for key, value in records:
        model = parse_wire(value)
        assert model == sent[model.event_id]
        assert key.decode() == model.partition_key
    assert read_topic(s, s.deadletter_topic) == []


# -- Hypothesis fuzzing of the HTTP API ------------------------------------------------------------

EXAMPLES = valid_examples()
CODES = sorted({c for lists in all_code_lists()[latest_year()].values() for c in lists})
counter = iter(range(10**9))


def raw_id() -> str:
    return f"{RAW_PREFIX}{next(counter):08d}"


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                      st.sampled_from(CODES))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                          max_leaves=12)


@st.composite
def mutated_event(draw):
    event_type = draw(st.sampled_from(sorted(EXAMPLES)))
    event = dict(EXAMPLES[event_type])
    event.pop("source_system", None)
    event["event_id"] = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    for name in IDENTIFIER_FIELDS:
        if name in event:
            event[name] = raw_id()
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["delete", "replace", "code", "add", "raw_in_field", "none"]))
        names = sorted(event)
        if action == "delete" and names:
            event.pop(draw(st.sampled_from(names)))
        elif action == "replace" and names:
            event[draw(st.sampled_from(names))] = draw(json_value)
        elif action == "code" and names:
            event[draw(st.sampled_from(names))] = draw(st.sampled_from(CODES))
        elif action == "add":
            event[draw(st.sampled_from(["notes", "name", "upn", "x"]))] = raw_id()
        elif action == "raw_in_field" and names:
            event[draw(st.sampled_from(names))] = raw_id()
    return event


garbage = st.one_of(
    st.binary(max_size=300),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.just(b"{" * 5000),
    st.just(b"[" * 100000),
    st.integers(1_000_000, 1_200_000).map(lambda n: b'{"notes": "' + b"x" * n + b'"}'),
)
body = st.one_of(
    mutated_event().map(lambda e: ("one", json.dumps(e).encode())),
    st.lists(mutated_event(), min_size=1, max_size=5).map(lambda es: ("batch", json.dumps(es).encode())),
    garbage.map(lambda b: ("one", b)),
    garbage.map(lambda b: ("batch", b)),
)


def test_fuzzed_http_bodies_never_5xx_and_every_record_is_accounted_for(kafka_bootstrap):
    s = topic_settings(kafka_bootstrap, la_codes="E06000004", teams="cp_1,lac_1,unassigned")
    ensure_topics(s)
    publisher = EventPublisher(s, source_system="ingest", source="ingest")
    accepted: Counter = Counter()
    rejected_records = 0
    statuses: Counter = Counter()
    with TestClient(create_app(s, publisher=publisher)) as client:
        @hsettings(max_examples=2000, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))
        @given(body)
        def post(case):
            nonlocal rejected_records
            endpoint, data = case
            path = "/v1/events" if endpoint == "one" else "/v1/events:batch"
            r = client.post(path, content=data, headers={"Authorization": f"Bearer {TOKEN}",
                                                         "Content-Type": "application/json"})
            statuses[r.status_code] += 1
            assert r.status_code < 500
            assert r.status_code in (202, 207, 413, 422)
            if r.status_code == 413:
                return
            result = r.json()
            results = [result] if endpoint == "one" else result["results"]
            for item in results:
                if item["status"] == "accepted":
                    accepted[item["event_id"]] += 1
                else:
                    rejected_records += 1
                    assert item["errors"], "every rejection has a reason"
                    for e in item["errors"]:
                        assert set(e) == {"loc", "msg", "type"} and e["msg"]
                        assert RAW_PREFIX not in json.dumps(e)

        post()
    assert sum(statuses.values()) >= 2000
    assert statuses[202] > 50 and statuses[422] > 50  # the generator reaches both sides
    events = read_topic(s, s.events_topic)
    letters = read_topic(s, s.deadletter_topic)
    assert Counter(parse_wire(v).event_id for _, v in events) == accepted  # each accepted one exactly once
    assert len(letters) == rejected_records
    for _, value in letters:
        letter = json.loads(value)
        assert letter["errors"] and letter["source"] == "ingest"
    # the identifier scan: no raw identifier reaches Kafka, in events or dead letters
    for key, value in events + letters:
        assert RAW_PREFIX.encode() not in value and (key is None or RAW_PREFIX.encode() not in key), value.decode()[:3000]
