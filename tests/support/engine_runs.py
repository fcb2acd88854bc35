"""Publishing a generated event set, reading an engine's figures back from /metrics, and the
barrier the engine tests wait on: every partition assigned, each partition applied up to the
topic's end offset (read here with kafka-python), every worker caught up."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import date
from functools import lru_cache

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from casewatch.domain.indicators import MAX_METRICS
from casewatch.domain.events import event_partition_key

REF_FIELDS = ("child_ref", "episode_ref", "worker_ref", "referral_ref", "assessment_ref", "s47_ref",
              "from_contact_ref", "plan_ref")
OPERATIONAL = ("casewatch_events_", "casewatch_consumer_lag", "casewatch_assigned_partitions",
               "casewatch_children_tracked", "casewatch_newest_event", "casewatch_calendar_",
               "casewatch_engine_")
TEST_KEY = b"engine-tests-key-0123456789abcdef0123"


def pseudonym(value: str, la_code: str) -> str:
    """The ingest edge's pseudonym of a case-system id of the authority ``la_code`` (contract C3)."""
    from casewatch.edge.pseudonymise import Pseudonymiser
    return Pseudonymiser(TEST_KEY).pseudonym(value, la_code)


@lru_cache(maxsize=4)
def demo_events(population: int = 40000, seed: int = 7, until: date = date(2026, 11, 2),
                years: int = 2) -> tuple[dict, ...]:
    """A seeded synthetic authority's events, with references already pseudonymised."""
    from casewatch.simulation.authority import authority_events
    start = date(until.year - years, until.month, until.day)
    out = []
    for event in authority_events(["E06000004"], population, seed, start, until):
        event = dict(event)
        for f in REF_FIELDS:
            if isinstance(event.get(f), str):
                event[f] = pseudonym(event[f], event["la_code"])
        out.append(event)
    return tuple(out)


def event_key(event: dict) -> bytes:
    return event_partition_key(event).encode()


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


def indicator_names(scraped: dict[tuple[str, tuple], float]) -> set[str]:
    """The indicator series' names in one worker's scrape (everything but the engine's own)."""
    return {name for name, _ in scraped if not name.startswith(OPERATIONAL)}


def health(url: str) -> dict:
    """A worker's /healthz (``url`` is its /metrics or /healthz address)."""
    url = url.replace("/metrics", "/healthz")
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


class EndOffsets:
    """The events topic's end offsets (next offset to be written, per partition), read with
    kafka-python: what the test knows reached Kafka, independent of the engine."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)

    def read(self) -> dict[int, int]:
        partitions = self.consumer.partitions_for_topic(self.topic) or set()
        ends = self.consumer.end_offsets([TopicPartition(self.topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}

    def close(self) -> None:
        self.consumer.close()


def barrier_gap(healths: list[dict], ends: dict[int, int]) -> str | None:
    """What still separates the workers from the barrier (None: reached): every partition of
    ``ends`` assigned to exactly one worker, applied up to its end offset, every worker caught up."""
    owners: dict[int, list[int]] = {}
    for n, h in enumerate(healths):
        if not h.get("caught_up"):
            return f"worker {n} is catching up ({', '.join(h.get('catching_up', []))})"
        for p, applied in h.get("applied_offsets", {}).items():
            owners.setdefault(int(p), []).append(applied)
    if set(owners) != set(ends):
        return f"partitions assigned {sorted(owners)}, topic has {sorted(ends)}"
    for p, applied in sorted(owners.items()):
        if len(applied) != 1:
            return f"partition {p} is held by {len(applied)} workers"
        if applied[0] != ends[p]:
            return f"partition {p} applied up to offset {applied[0]} of {ends[p]}"
    return None


def wait_until_caught_up(urls: list[str], bootstrap: str, topic: str, timeout: float = 600.0) -> dict:
    """Wait for the barrier (``barrier_gap``) with the end offsets read from Kafka; return the
    figures, scraped between two /healthz readings that both show the barrier with the same
    offsets (so no rebalance or new message came between)."""
    deadline = time.monotonic() + timeout
    gap = "not read yet"
    ends_reader = EndOffsets(bootstrap, topic)
    try:
        while time.monotonic() < deadline:
            try:
                ends = ends_reader.read()
                before = [health(u) for u in urls]
                gap = barrier_gap(before, ends)
                if gap is None:
                    current = figures(urls)
                    after = [health(u) for u in urls]
                    if [h["applied_offsets"] for h in after] == [h["applied_offsets"] for h in before] \
                            and barrier_gap(after, ends) is None:
                        return current
                    gap = "the workers moved while their figures were read"
            except OSError as exc:  # a worker not answering (yet)
                gap = f"a worker did not answer ({type(exc).__name__})"
            time.sleep(1.0)
    finally:
        ends_reader.close()
    raise AssertionError(f"the engine never reached the barrier in {timeout:.0f} s: {gap}")


@contextmanager
def cpu_hog(seconds: float = 900.0):
    """A bounded busy loop on one core beside the test (a loaded machine), stopped when the block
    ends, or by itself after ``seconds``."""
    code = ("import time\nend = time.monotonic() + %f\nwhile time.monotonic() < end:\n    pass\n" % seconds)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def lag(urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        for (name, _), value in scrape(url).items():
            if name == "casewatch_consumer_lag_messages":
                total += value
    return total


def wait_until_settled(urls: list[str], timeout: float = 400.0, partitions: int | None = None,
                       settings=None) -> dict:
    """The barrier (``barrier_gap``); return the figures. With ``settings`` the end offsets are
    read from Kafka (``wait_until_caught_up``); without, from the workers' own /healthz (each
    worker's view of its partitions' ends), for ``partitions`` partitions when given."""
    if settings is not None:
        return wait_until_caught_up(urls, settings.bootstrap, settings.events_topic, timeout)
    deadline = time.monotonic() + timeout
    gap = "not read yet"
    while time.monotonic() < deadline:
        try:
            before = [health(u) for u in urls]
            ends = {int(p): e for h in before for p, e in h.get("end_offsets", {}).items() if e is not None}
            if partitions is not None and len(ends) != partitions:
                gap = f"{len(ends)} of {partitions} partitions assigned"
            else:
                gap = barrier_gap(before, ends) if ends else "no partition assigned"
            if gap is None:
                current = figures(urls)
                after = [health(u) for u in urls]
                if [h["applied_offsets"] for h in after] == [h["applied_offsets"] for h in before] \
                        and all(h["caught_up"] for h in after):
                    return current
                gap = "the workers moved while their figures were read"
        except OSError as exc:
            gap = f"a worker did not answer ({type(exc).__name__})"
        time.sleep(1.0)
    raise AssertionError(f"the engine never reached the barrier in {timeout:.0f} s: {gap}")
