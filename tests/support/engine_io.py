"""Publishing events to a real engine's topic and reading what the engine shows on /metrics.

Figures are read from the engine's own exposition (what Prometheus would scrape), parsed with
prometheus-client's text parser, and summed over the label sets a check names.
"""
from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Callable

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from casewatch.config import Settings

LA = "E06000004"


def child_ref(n: int) -> str:
    """A pseudonymised-looking child reference: ``ps_`` + 32 lowercase hex."""
    return "ps_" + uuid.UUID(int=(0x5EED << 100) + n).hex


def referral(n: int, referral_date: str, source: str = "6", team: str = "assessment_1") -> dict:
    return {
        "event_id": str(uuid.uuid4()), "event_type": "referral.received", "schema_version": 1,
        "la_code": LA, "team": team, "child_ref": child_ref(n), "effective_date": referral_date,
        "referral_date": referral_date, "source": source, "referral_nfa": False,
    }


def producer_for(settings: Settings) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", linger_ms=5)


def publish(settings: Settings, events: list[dict], producer: KafkaProducer | None = None) -> None:
    own = producer is None
    producer = producer or producer_for(settings)
    futures = [producer.send(settings.events_topic, key=e["child_ref"].encode(),
                             value=json.dumps(e).encode()) for e in events]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    if own:
        producer.close()


def publish_raw(settings: Settings, key: bytes, value: bytes) -> None:
    producer = producer_for(settings)
    producer.send(settings.events_topic, key=key, value=value).get(timeout=30)
    producer.close()


def metrics_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.engine_metrics_port}/metrics"


def scrape(settings: Settings) -> str:
    with urllib.request.urlopen(metrics_url(settings), timeout=10) as resp:
        return resp.read().decode()


def sample_sum(text: str, sample_name: str, **labels: str) -> float:
    """The sum of the samples called ``sample_name`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def wait_for_figure(settings: Settings, sample_name: str, predicate: Callable[[float], bool],
                    timeout: float = 60.0, **labels: str) -> float:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        try:
            value = sample_sum(scrape(settings), sample_name, **labels)
            if predicate(value):
                return value
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{sample_name}{labels} never satisfied the check; last value {value}")


def read_dead_letters(settings: Settings, expected: int, timeout: float = 30.0) -> list[dict]:
    consumer = KafkaConsumer(settings.deadletter_topic, bootstrap_servers=settings.bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    records: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer:
                records.append(json.loads(message.value))
    finally:
        consumer.close()
    return records
