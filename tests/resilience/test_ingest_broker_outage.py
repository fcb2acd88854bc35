"""Kafka stopped while case systems are posting: clients get 503 with Retry-After, nothing is
acknowledged that was not stored, and after Kafka is back every acknowledged event is there once."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from casewatch.stack import components as stack_components
from schemas.examples import valid_examples
from services.ingest.api import create_app
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics
from tests.support.kafka_topics import read_topic

pytestmark = pytest.mark.integration

TOKEN = "outage-token-0123456789"


def _referral() -> dict:
    event = valid_examples()["referral.received"]
    event["event_id"] = str(uuid.uuid4())
    # a case system sends its own ids (a ps_ reference would be refused, 403)
    for name in ("child_ref", "from_contact_ref", "episode_ref"):
        if name in event:
            event[name] = f"LCS-{name}-{event['event_id'][:8]}"
    return event


def test_kafka_down_gives_503_and_every_acknowledged_event_survives(local_stack):
    settings = local_stack.settings_for(ingest_tokens=json.dumps({"lcs": TOKEN}))
    ensure_topics(settings)
    publisher = EventPublisher(settings, source_system="ingest", source="ingest", ack_timeout=5.0,
                               max_block_ms=3000, delivery_timeout_ms=6000)
    app = create_app(settings, publisher=publisher)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    acknowledged: list[str] = []
    refused = 0
    with TestClient(app) as client:
        # Five more acknowledged after the restart. The restarted broker takes its partitions'
        # leadership back one by one, so on a loaded machine a request to a partition not yet led may
        # still be refused with 503 (the producer's ack timeout) after the first 202: like a case
        # system, send another request until the deadline (a refused request's event is not counted
        # as acknowledged; it may or may not be stored, as the 503 says).
        recovered = 0
        while recovered < 5:
            event = _referral()
            resp = client.post("/v1/events", json=event, headers=headers)
            if resp.status_code == 202:
                acknowledged.append(event["event_id"])
                recovered += 1
                continue
            assert resp.status_code == 503, resp.text
            assert time.monotonic() < deadline, "ingest did not recover on every partition after Kafka came back"
            time.sleep(2)

        local_stack.processes.stop("kafka", kill=True)
        try:
            for _ in range(3):
                event = _referral()
                resp = client.post("/v1/events", json=event, headers=headers)
                assert resp.status_code == 503, resp.text
                assert int(resp.headers["Retry-After"]) > 0
                assert "kafka" in resp.text.lower()
                refused += 1
        finally:
            kafka = stack_components.kafka_component(local_stack.settings, lambda msg: None)
            local_stack.manager.start_component(kafka)  # same data directory

        deadline = time.monotonic() + 90
        while True:
            event = _referral()
            resp = client.post("/v1/events", json=event, headers=headers)
            if resp.status_code == 202:
                acknowledged.append(event["event_id"])
                break
            assert resp.status_code == 503, resp.text
            assert time.monotonic() < deadline, "ingest never recovered after Kafka came back"
            time.sleep(2)
        for _ in range(5):
            event = _referral()
            resp = client.post("/v1/events", json=event, headers=headers)
            assert resp.status_code == 202, resp.text
            acknowledged.append(event["event_id"])

    assert refused == 3
    stored = [json.loads(value)["event_id"] for _, value in read_topic(settings, settings.events_topic)]
    for event_id in acknowledged:
        assert stored.count(event_id) == 1, "an acknowledged event is missing or stored twice"
