"""The first vertical slice, end to end on the real stack: a referral event goes into Kafka, the
Faust engine counts it, /metrics shows it, Prometheus scrapes it and PromQL returns 1."""
from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import date

import pytest
from kafka import KafkaProducer

from casewatch.adapters.kafka.topics import ensure_topics

pytestmark = pytest.mark.e2e


def test_a_referral_travels_from_kafka_to_a_promql_answer(local_stack):
    settings = local_stack.settings_for()
    ensure_topics(settings)
    local_stack.start_engine(settings)
    try:
        today = date.today().isoformat()
        event = {
            "event_id": str(uuid.uuid4()), "event_type": "referral.received", "schema_version": 1,
            "la_code": "E06000004", "team": "assessment_1", "child_ref": "ps_" + "ab" * 16,
            "effective_date": today, "referral_date": today, "source": "6",
            "referral_nfa": False,
        }
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
        producer.send(settings.events_topic, key=event["child_ref"].encode(),
                      value=json.dumps(event).encode()).get(timeout=30)
        producer.flush()
        producer.close()

        # The engine's own /metrics shows the event and the referral figure.
        url = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
        local_stack.wait_for_query(
            'sum(casewatch_events_processed_total{job="casewatch-engine",event_type="referral.received"})',
            lambda r: r and float(r[0]["value"][1]) == 1.0, timeout=90)
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'casewatch_events_processed_total{event_type="referral.received",la="E06000004"} 1.0' in text

        result = local_stack.query(
            'sum(casewatch_referrals{job="casewatch-engine",la="E06000004",window="28d",source_group="police"})')
        assert float(result[0]["value"][1]) == 1.0
    finally:
        local_stack.stop("engine")
