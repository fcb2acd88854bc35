"""Publishing a generated event set and reading an engine's figures back from /metrics."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from datetime import date
from functools import lru_cache

from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from casewatch.domain.indicators import MAX_METRICS

REF_FIELDS = ("child_ref", "episode_ref", "worker_ref", "referral_ref", "assessment_ref", "s47_ref",
              "from_contact_ref", "plan_ref")
OPERATIONAL = ("casewatch_events_", "casewatch_consumer_lag", "casewatch_assigned_partitions",
               "casewatch_children_tracked", "casewatch_newest_event", "casewatch_calendar_")
TEST_KEY = b"engine-tests-key-0123456789abcdef0123"


def pseudonym(value: str) -> str:
    return "ps_" + hmac.new(TEST_KEY, value.encode(), hashlib.sha256).hexdigest()[:32]


@lru_cache(maxsize=4)
def demo_events(population: int = 40000, seed: int = 7, until: date = date(2026, 11, 2),
                years: int = 2) -> tuple[dict, ...]:
    """A seeded synthetic authority's events, with references already pseudonymised."""
    from services.simulator.authority import authority_events
    start = date(until.year - years, until.month, until.day)
    out = []
    for event in authority_events(["E06000004"], population, seed, start, until):
        event = dict(event)
        for f in REF_FIELDS:
            if isinstance(event.get(f), str):
                event[f] = pseudonym(event[f])
        out.append(event)
    return tuple(out)


def event_key(event: dict) -> bytes:
    key = event.get("child_ref") or f"wf:{event['la_code']}:{event['team']}"
    return key.encode()


def publish(bootstrap: str, topic: str, events, raw: list[bytes] | None = None) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024, max_in_flight_requests_per_connection=5)
    n = 0
    for event in events:
        producer.send(topic, key=event_key(event), value=json.dumps(event, default=str).encode())
        n += 1
    for value in raw or []:
        producer.send(topic, key=b"poison", value=value)
    producer.flush(timeout=120)
    producer.close()
    return n


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(url, timeout=30).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def figures(urls: list[str]) -> dict[tuple[str, tuple], float]:
    """The indicator series summed over workers (maxima for the max-type gauges), without the
    operational series that legitimately differ between runs."""
    total: dict[tuple[str, tuple], float] = {}
    for url in urls:
        for key, value in scrape(url).items():
            if key[0].startswith(OPERATIONAL):
                continue
            if key[0] in MAX_METRICS:
                total[key] = max(total.get(key, 0.0), value)
            else:
                total[key] = round(total.get(key, 0.0) + value, 6)
    return {k: v for k, v in total.items() if v != 0}


def lag(urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        for (name, _), value in scrape(url).items():
            if name == "casewatch_consumer_lag_messages":
                total += value
    return total


def wait_until_settled(urls: list[str], timeout: float = 400.0, partitions: int | None = None) -> dict:
    """Wait until the workers have no lag and their figures stop changing; return the figures."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        time.sleep(6)
        try:
            if partitions is not None:
                assigned = sum(v for url in urls for (n, _), v in scrape(url).items()
                               if n == "casewatch_assigned_partitions")
                if assigned != partitions:
                    continue
            if lag(urls) > 0:
                continue
            current = figures(urls)
        except OSError:
            continue
        if current and current == previous:
            return current
        previous = current
    raise AssertionError("the engine never settled (lag or figures kept changing)")
