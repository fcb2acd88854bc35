"""casewatch benchmark (a script, not a test).

Loads one fixed, generated event set (the seeded simulator) into a real Kafka topic once, then in
the same run measures
  (a) events/s of a plain aiokafka consumer decoding the messages (json.loads),
  (b) events/s of a bare faust-streaming agent that only decodes them (benchmarks/faust_decode_app.py),
  (c) events/s of the casewatch engine (`casewatch engine`, own app id), until the sum of its
      casewatch_events_processed_total reaches N; ratios (c)/(b) and (c)/(a);
  (d) the same with two `casewatch engine` workers (one app id, two --metrics-port) vs one;
  (e) end-to-end latency, ingest HTTP call -> count visible on the engine's /metrics, p50/p99,
      at a fixed rate through a real `casewatch ingest` process and a real engine;
  (f) the engine's stored table value (JSON {"p":..,"e":[..]}) bytes per child, read back from
      the engine's changelog topic after (c);
  (g) the time of an HTTP GET of /metrics (median of 20) over the engine's own exposition
      (EngineMetrics over PartitionedFigures) holding 20 authorities' figures;
  (h) with --large: one worker's time to process a ~500,000-event 2-year history.
Writes JSON (<out>/<timestamp>.json and <out>/latest.json) and a short table with the targets.

  python benchmarks/run.py --bootstrap 127.0.0.1:29092 --large   # against a running Kafka
  python benchmarks/run.py --quick                               # smoke mode: small set, own broker
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import threading
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from casewatch.domain.events import WORKFORCE_KEY_PREFIX, event_partition_key  # noqa: E402  (after the path)
from casewatch.stack.loopback import free_port  # noqa: E402

BENCH_KEY = b"benchmark-pseudonymisation-key-0123456789"


def pseudonymise(event: dict) -> dict:
    """Through the ingest edge's pseudonymiser (scoped by the event's authority, contract C3), so no
    raw-looking id enters Kafka and one id in two authorities is two children. The identifier
    fields are the schema's (IDENTIFIER_FIELDS), never a list of our own."""
    return _pseudonymiser().event(event)


@lru_cache(maxsize=1)
def _pseudonymiser():
    from casewatch.edge.pseudonymise import Pseudonymiser
    return Pseudonymiser(BENCH_KEY)


def event_set(population: int, years: float, seed: int, las: list[str]) -> list[dict]:
    from casewatch.simulation.authority import authority_events
    until = date(2026, 3, 31)
    start = date(until.year - int(years), until.month, until.day) if years >= 1 else date(2025, 10, 1)
    return [pseudonymise(e) for e in authority_events(las, population, seed, start, until, warmup_years=2)]


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def load_topic(bootstrap: str, topic: str, events: list[dict], partitions: int) -> float:
    from kafka import KafkaProducer
    create_topic(bootstrap, topic, partitions)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1)
    t0 = time.perf_counter()
    for e in events:
        key = event_partition_key(e).encode()
        producer.send(topic, key=key, value=json.dumps(e, separators=(",", ":")).encode())
    producer.flush()
    producer.close()
    return time.perf_counter() - t0


def load_topic_grouped(bootstrap: str, topic: str, events: list[dict], partitions: int,
                       per_message: int = 200) -> int:
    """The bulk-replay form (``casewatch replay`` default): each child's events together, as JSON
    arrays of at most ``per_message`` events, keyed by the child. Returns the message count."""
    from kafka import KafkaProducer
    create_topic(bootstrap, topic, partitions)
    groups: dict[str, list] = {}
    for e in events:
        groups.setdefault(event_partition_key(e), []).append(e)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1,
                             max_request_size=8 * 1024 * 1024)
    messages = 0
    for key, group in groups.items():
        for start in range(0, len(group), per_message):
            producer.send(topic, key=key.encode(),
                          value=json.dumps(group[start:start + per_message], separators=(",", ":")).encode())
            messages += 1
    producer.flush()
    producer.close()
    return messages


async def plain_consumer(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"bench-plain-{uuid.uuid4().hex[:8]}", enable_auto_commit=False)
    await consumer.start()
    count, t0 = 0, None
    try:
        while count < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if t0 is None:
                    t0 = time.perf_counter()
                for record in records:
                    json.loads(record.value)
                    count += 1
    finally:
        await consumer.stop()
    return time.perf_counter() - t0


def wait_for_count(procs, read, n: int, timeout: float) -> float:
    """Seconds from the first counted message to ``n`` (polling ``read()``)."""
    procs = procs if isinstance(procs, (list, tuple)) else [procs]
    deadline = time.monotonic() + timeout
    t0 = None
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a measured process exited early")
        try:
            value = read()
        except OSError:
            value = 0
        if value > 0 and t0 is None:
            t0 = time.perf_counter()
        if value >= n:
            return time.perf_counter() - (t0 or time.perf_counter())
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {n} messages")


def http_json_count(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return int(json.load(resp)["count"])


def engine_processed_cheaply(metrics_url: str) -> int:
    """The engine's processed-event count from /healthz (a full /metrics render 5 times a second
    took ~4% of the engine's time in a profile; Prometheus scrapes every 15 s)."""
    with urllib.request.urlopen(metrics_url.replace("/metrics", "/healthz"), timeout=5) as resp:
        return int(json.load(resp)["events_processed"])


def engine_processed(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return int(sum(float(m.group(1)) for m in
                   re.finditer(r"^casewatch_events_processed_total\{[^}]*\} (\S+)$", text, re.M)))


def run_faust(bootstrap: str, topic: str, n: int, state: Path, timeout: float) -> float:
    port = free_port()
    env = dict(os.environ, BENCH_BOOTSTRAP=bootstrap, BENCH_TOPIC=topic, BENCH_PORT=str(port),
               BENCH_APP_ID=f"bench-faust-{uuid.uuid4().hex[:8]}", BENCH_STATE_DIR=str(state / "faust"),
               PYTHONPATH=str(REPO))
    log = open(state / "faust.log", "w")
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "faust_decode_app.py"), "worker",
                             "-l", "warn"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        return wait_for_count(proc, lambda: http_json_count(f"http://127.0.0.1:{port}/count"), n, timeout)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def engine_env(bootstrap: str, topic: str, app_id: str, state: Path, partitions: int,
               la_codes: str = "E06000004") -> dict:
    return dict(os.environ, CASEWATCH_KAFKA_BOOTSTRAP=bootstrap, CASEWATCH_EVENTS_TOPIC=topic,
                CASEWATCH_DEADLETTER_TOPIC=f"{topic}-dlq", CASEWATCH_ENGINE_APP_ID=app_id,
                CASEWATCH_STATE_DIR=str(state / "engine"), CASEWATCH_PARTITIONS=str(partitions),
                CASEWATCH_FIXED_TODAY="2026-03-31", CASEWATCH_LA_CODES=la_codes, PYTHONPATH=str(REPO))


def start_engines(env: dict, ports: list[int], state: Path, name: str) -> list[tuple[subprocess.Popen, object]]:
    out = []
    for i, port in enumerate(ports):
        log = open(state / f"{name}-{i}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "casewatch.cli", "engine", "--metrics-port", str(port)],
                                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        out.append((proc, log))
    return out


def start_group(bootstrap: str, topic: str, state: Path, partitions: int, workers: int, prefix: str):
    """``workers`` engines in one new consumer group: (app id, processes, /metrics URLs, pids)."""
    app_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ports = [free_port() for _ in range(workers)]
    procs = start_engines(engine_env(bootstrap, topic, app_id, state, partitions), ports, state,
                          f"{prefix}-{workers}w-{app_id}")
    return app_id, procs, [f"http://127.0.0.1:{port}/metrics" for port in ports], [p.pid for p, _ in procs]


def stop_all(procs: list[tuple[subprocess.Popen, object]]) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc, log in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def run_engine(bootstrap: str, topic: str, n: int, state: Path, partitions: int, timeout: float,
               workers: int = 1) -> tuple[float, str]:
    """Seconds for ``workers`` engine processes (one app id) to apply ``n`` events, and the app id."""
    app_id, procs, urls, pids = start_group(bootstrap, topic, state, partitions, workers, "bench-engine")
    cpu_at_first: list[float] = []

    def total() -> int:
        got = 0
        for url in urls:
            try:
                got += engine_processed_cheaply(url)
            except OSError:
                pass
        if got and not cpu_at_first:
            cpu_at_first.append(cpu_seconds(pids))
        return got
    try:
        if workers == 1:
            elapsed = wait_for_count([p for p, _ in procs], total, n, timeout)
        else:
            elapsed = wait_for_workers([p for p, _ in procs], urls, n, timeout, partitions)
        if cpu_at_first:
            CPU[workers] = (cpu_seconds(pids) - cpu_at_first[0]) / n * 1e6
        return elapsed, app_id
    finally:
        stop_all(procs)


CPU: dict[int, float] = {}  # workers -> engine CPU microseconds per event in the last run_engine


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes so far (Linux /proc; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


async def load_topic_fast(bootstrap: str, topic: str, events: list[dict]) -> float:
    """Publish ``events`` (one a message, keyed by child) with aiokafka: several times faster than
    the engine consumes, so a measurement that starts with an empty topic is not load-bound."""
    from aiokafka import AIOKafkaProducer
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1024 * 1024,
                                max_request_size=8 * 1024 * 1024, acks=1)
    await producer.start()
    t0 = time.perf_counter()
    try:
        for e in events:
            key = event_partition_key(e).encode()
            await producer.send(topic, json.dumps(e, separators=(",", ":")).encode(), key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - t0


def run_engine_formed(bootstrap: str, events: list[dict], state: Path, partitions: int, timeout: float,
                      workers: int) -> float:
    """Seconds for ``workers`` engines to apply ``events`` published to a new topic only after
    the workers' group holds every partition (the events then arrive faster than they apply)."""
    topic = f"bench-formed-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions)
    _, procs, urls, pids = start_group(bootstrap, topic, state, partitions, workers, "bench-formed")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if any(p.poll() is not None for p, _ in procs):
                raise RuntimeError("a measured engine exited early")
            try:
                assigned = [engine_assigned(url) for url in urls]
            except OSError:
                assigned = [0]
            if all(a > 0 for a in assigned) and sum(assigned) == partitions and len(assigned) == workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the engines' group never formed")
            time.sleep(0.3)
        time.sleep(2.0)  # let the assignment settle (no further rebalance in flight)
        cpu0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        asyncio.run(load_topic_fast(bootstrap, topic, events))

        def total() -> int:
            return sum(engine_processed_cheaply(url) for url in urls)
        while total() < len(events):
            if time.perf_counter() - t0 > timeout or any(p.poll() is not None for p, _ in procs):
                raise RuntimeError(f"{workers} engine(s) did not apply {len(events)} events")
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
        CPU[workers] = (cpu_seconds(pids) - cpu0) / len(events) * 1e6
        return elapsed
    finally:
        stop_all(procs)


def engine_assigned(url: str) -> int:
    with urllib.request.urlopen(url.replace("/metrics", "/healthz"), timeout=5) as resp:
        return int(json.load(resp)["assigned_partitions"])


def wait_for_workers(procs, urls: list[str], n: int, timeout: float, partitions: int) -> float:
    """Several workers: seconds from the first counted message to ``n``. Also records, in
    ``STEADY``, the rate once every worker holds partitions and all are assigned (after the
    start-up rebalance)."""
    deadline = time.monotonic() + timeout
    t0 = steady_t = None
    steady_count = 0
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a measured process exited early")
        value, assigned = 0, []
        for url in urls:
            try:
                value += engine_processed_cheaply(url)
                assigned.append(engine_assigned(url))
            except OSError:
                assigned.append(0)
        now = time.perf_counter()
        if value > 0 and t0 is None:
            t0 = now
        if steady_t is None and all(a > 0 for a in assigned) and sum(assigned) == partitions:
            steady_t, steady_count = now, value
        if value >= n:
            if steady_t is not None and now > steady_t and n > steady_count:
                STEADY["events_per_s"] = (n - steady_count) / (now - steady_t)
                STEADY["events_after_rebalance"] = n - steady_count
            return now - (t0 or now)
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {n} messages")


STEADY: dict = {}


def stored_bytes_per_child(bootstrap: str, app_id: str) -> tuple[float, int]:
    """Mean size of the latest ``case_histories`` value per child key, read from the engine's
    changelog topic (what the engine really stores and restores); workforce keys excluded."""
    from kafka import KafkaConsumer
    topic = f"{app_id}-case_histories-changelog"
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000, group_id=None)
    latest: dict[bytes, int] = {}
    for record in consumer:
        if record.key is None or record.key.startswith(WORKFORCE_KEY_PREFIX.encode()):
            continue
        if record.value is None:
            latest.pop(record.key, None)
        else:
            latest[record.key] = len(record.value)
    consumer.close()
    return (sum(latest.values()) / len(latest) if latest else 0.0), len(latest)


def state_bytes_per_child(events: list[dict], partitions: int) -> float:
    """Cross-check of the stored form computed here: {"p": partition, "e": compacted events}."""
    from casewatch.domain.history import compact
    from casewatch.processing.store import encode_history
    per_child: dict[str, list] = {}
    for e in events:
        if e.get("child_ref"):
            per_child.setdefault(e["child_ref"], []).append(compact(e))
    total = sum(len(encode_history(zlib.crc32(k.encode()) % partitions, v)) for k, v in per_child.items())
    return total / max(1, len(per_child))


def render_time_20_authorities(population: int, partitions: int) -> tuple[float, int, int]:
    """Median seconds of 20 HTTP GETs of /metrics (each rendered afresh) served by the engine's own exposition
    (``EngineMetrics`` over ``PartitionedFigures``, rebuilt the engine's way from 20 authorities'
    events); also the series count and the body size."""
    from casewatch.config import Settings
    from casewatch.domain.history import compact
    from casewatch.bootstrap import make_calendar
    from casewatch.adapters.prometheus.exposition import EngineMetrics, start_exposition
    from casewatch.processing.figures import PartitionedFigures
    from casewatch.simulation.authority import authority_events
    as_of = date(2026, 3, 31)
    las = [f"E06{i:06d}" for i in range(1, 21)]
    settings = Settings(la_codes=",".join(las))
    by_partition: dict[int, dict[str, list]] = {p: {} for p in range(partitions)}
    for e in authority_events(las, population, 9, date(2025, 10, 1), as_of, warmup_years=1):
        key = event_partition_key(e)
        key = f"{e['la_code']}:{key}"
        by_partition[zlib.crc32(key.encode()) % partitions].setdefault(key, []).append(compact(e))
    figures = PartitionedFigures(make_calendar(settings), lambda: as_of)
    for p, keys in by_partition.items():
        figures.rebuild(p, keys.items())
    metrics = EngineMetrics(figures, settings)
    metrics.catch_up.rebuilt(range(partitions))  # caught up: the render includes every indicator
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start_exposition(metrics, "127.0.0.1", port))
        started.set()
        loop.run_forever()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(30)
    try:
        times, body = [], b""
        for _ in range(21):
            # As if an event had changed the figures since the last scrape (the usual case at a
            # 15 s scrape interval): the exposition renders afresh instead of serving its cache.
            figures.version += 1
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
                body = resp.read()
            times.append(time.perf_counter() - t0)
        times = times[1:]  # the first GET warms up the connection path
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return statistics.median(times), series, len(body)


# -- end-to-end latency: ingest HTTP call -> count visible on the engine's /metrics ------------------
def latency_events(n: int) -> list[dict]:
    """``n`` referrals, each of a new child (raw-looking ids: the ingest edge pseudonymises them)."""
    run = uuid.uuid4().hex[:8]
    out = []
    for i in range(n):
        out.append({"event_id": str(uuid.uuid4()), "event_type": "referral.received", "schema_version": 1,
                    "effective_date": "2026-03-02", "recorded_at": "2026-03-02T10:00:00+00:00",
                    "la_code": "E06000004", "team": "assessment_1", "child_ref": f"BENCH-{run}-{i:07d}",
                    "referral_date": "2026-03-02", "source": "2A", "referral_nfa": False,
                    "reasons": ["3B"], "primary_need": "N1"})
    return out


def wait_http(url: str, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} never answered")


async def post_at_rate(url: str, token: str, events: list[dict], rate: float,
                       senders: int = 64) -> tuple[list[float], list[int]]:
    """Event i is posted at start + i/rate by one of ``senders`` concurrent senders (a bounded
    number, so a slow server shows as a lower achieved rate rather than an unbounded queue in the
    client). Returns each event's send time and HTTP status. The client is aiohttp: httpx's
    client took ~80% of a core at 200 requests/s here and was itself the bottleneck."""
    import aiohttp
    sent = [0.0] * len(events)
    statuses = [0] * len(events)
    bodies = [json.dumps(e).encode() for e in events]
    next_index = iter(range(len(events)))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=senders)
    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        start = time.perf_counter() + 0.2

        async def sender():
            for i in next_index:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[i] = time.perf_counter()
                try:
                    async with client.post(url, data=bodies[i]) as resp:
                        await resp.read()
                        statuses[i] = resp.status
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    statuses[i] = -1
        await asyncio.gather(*(sender() for _ in range(min(senders, len(events)))))
    return sent, statuses


def measure_latency(bootstrap: str, state: Path, partitions: int, rate: float, seconds: float,
                    timeout: float) -> dict:
    """Posts ``rate * seconds`` single events to a real ``casewatch ingest``; a thread polls a real
    engine's /metrics every 20 ms. The k-th event sent is taken as seen when
    casewatch_events_processed_total first reaches k (counts, not identities: ordinal matching)."""
    from casewatch.config import Settings
    from casewatch.adapters.kafka.topics import ensure_topics
    tag = uuid.uuid4().hex[:8]
    topic = f"bench-latency-{tag}"
    ensure_topics(Settings(kafka_bootstrap=bootstrap, events_topic=topic, deadletter_topic=f"{topic}-dlq",
                           partitions=partitions))
    n = int(rate * seconds)
    events = latency_events(n)
    token = uuid.uuid4().hex
    ingest_port, engine_port = free_port(), free_port()
    ingest_env = dict(os.environ, CASEWATCH_KAFKA_BOOTSTRAP=bootstrap, CASEWATCH_EVENTS_TOPIC=topic,
                      CASEWATCH_DEADLETTER_TOPIC=f"{topic}-dlq", CASEWATCH_INGEST_PORT=str(ingest_port),
                      CASEWATCH_PSEUDONYMISATION_KEY=BENCH_KEY.decode(), CASEWATCH_LA_CODES="E06000004",
                      CASEWATCH_INGEST_TOKENS=json.dumps({"benchmark": token}), PYTHONPATH=str(REPO))
    ingest_log = open(state / "ingest.log", "w")
    ingest = subprocess.Popen([sys.executable, "-m", "casewatch.cli", "ingest"], env=ingest_env, cwd=REPO,
                              stdout=ingest_log, stderr=subprocess.STDOUT)
    engines = start_engines(engine_env(bootstrap, topic, f"bench-latency-{tag}", state, partitions),
                            [engine_port], state, "engine-latency")
    metrics_url = f"http://127.0.0.1:{engine_port}/metrics"
    polls: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            t = time.perf_counter()
            try:
                count = engine_processed(metrics_url)
                polls.append((time.perf_counter(), count))
            except OSError:
                pass
            rest = 0.02 - (time.perf_counter() - t)
            if rest > 0:
                time.sleep(rest)
    try:
        wait_http(f"http://127.0.0.1:{ingest_port}/healthz", ingest, 60, "casewatch ingest")
        wait_http(metrics_url, engines[0][0], 90, "casewatch engine")
        # a warm-up event, so partition assignment and first-fetch costs are not in the figures
        warm = latency_events(1)
        asyncio.run(post_at_rate(f"http://127.0.0.1:{ingest_port}/v1/events", token, warm, 1.0))
        wait_for_count(engines[0][0], lambda: engine_processed(metrics_url), 1, 120)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        t0 = time.perf_counter()
        sent, statuses = asyncio.run(post_at_rate(f"http://127.0.0.1:{ingest_port}/v1/events", token, events, rate))
        send_s = time.perf_counter() - t0
        accepted = sum(1 for s in statuses if s == 202)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (not polls or polls[-1][1] < 1 + accepted):
            time.sleep(0.1)
        stop.set()
        poller.join(5)
    finally:
        stop.set()
        stop_all(engines)
        ingest.terminate()
        try:
            ingest.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ingest.kill()
        ingest_log.close()
    if accepted < 0.99 * n:
        raise RuntimeError(f"the ingest API accepted only {accepted} of {n} events")
    seen: list[float] = []
    k = 2  # count 1 is the warm-up event
    for t, count in polls:
        while k <= count and k <= accepted + 1:
            seen.append(t)
            k += 1
    if len(seen) < accepted:
        raise RuntimeError(f"only {len(seen)} of {accepted} events became visible on /metrics")
    sent_accepted = sorted(t for t, status in zip(sent, statuses) if status == 202)
    latencies = sorted(b - a for a, b in zip(sent_accepted, seen))
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    refused = {str(status): statuses.count(status) for status in set(statuses) if status != 202}
    return {"latency_events": n, "latency_events_accepted": accepted, "latency_not_accepted_by_status": refused,
            "latency_target_rate_per_s": rate,
            "latency_achieved_rate_per_s": (n - 1) / max(max(sent) - min(sent), 1e-9) if n > 1 else n / send_s,
            "latency_p50_ms": q[49] * 1000, "latency_p99_ms": q[98] * 1000,
            "latency_max_ms": latencies[-1] * 1000}


def start_own_kafka(state: Path):
    from casewatch.config import Settings
    from casewatch.stack.manager import StackManager
    settings = Settings(state_dir=state / "stack", kafka_port=free_port(), kafka_controller_port=free_port(),
                        prometheus_port=free_port(), alertmanager_port=free_port())
    manager = StackManager(settings, parts=["kafka"], demo=False, log=lambda m: print(m, file=sys.stderr))
    manager.up()
    return manager, settings.bootstrap


TARGETS = {
    "ratio_c_over_b": (">=", 0.60, "engine >= 60% of bare faust"),
    "large_replay_s": ("<=", 90.0, "500k-event replay <= 90 s"),
    "latency_p99_ms": ("<=", 1000.0, "p99 <= 1 s at 500 ev/s"),
    "state_bytes_per_child": ("<=", 2048.0, "<= 2 KB state per child"),
    "metrics_get_20_authorities_ms": ("<=", 100.0, "/metrics <= 100 ms for 20 LAs"),
    "ratio_2_workers_over_1": (">=", 1.70, "2 workers >= 1.7x one"),
}


def table(results: dict) -> str:
    lines = [f"{'measure':<38} {'value':>14}  target"]
    for k, v in results.items():
        if isinstance(v, (list, dict)):
            continue
        text = f"{v:,.3f}" if isinstance(v, float) else str(v)
        mark = ""
        if k in TARGETS and isinstance(v, (int, float)):
            op, limit, label = TARGETS[k]
            ok = v >= limit if op == ">=" else v <= limit
            mark = f"{label}: {'met' if ok else 'NOT met'}"
            achieved = results.get("latency_achieved_rate_per_s", 0.0)
            if k == "latency_p99_ms" and achieved < 0.95 * 500:
                mark += f" (but measured at {achieved:,.0f} ev/s, not 500: the posting rate was not reached)"
            if k == "large_replay_s" and results.get("large_events", 0) < 450_000:
                mark += " (a smaller history than 500k events)"
        lines.append(f"{k:<38} {text:>14}  {mark}")
    return "\n".join(lines)


def write_results(out: Path, results: dict) -> list[Path]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2) + "\n"
    if out.suffix == ".json":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stamp}.json", out / "latest.json"]
    for path in paths:
        path.write_text(text)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="Kafka bootstrap servers (required unless --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: a small event set; starts its own broker")
    ap.add_argument("--population", type=int, default=40000)
    ap.add_argument("--years", type=float, default=2.0)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rate", type=float, default=500.0, help="latency: events/s posted to ingest")
    ap.add_argument("--seconds", type=float, default=20.0, help="latency: how long to post")
    ap.add_argument("--large", action="store_true", help="also time one worker over a ~500,000-event history")
    ap.add_argument("--large-events", type=int, default=500_000)
    ap.add_argument("--large-form", choices=("grouped", "single"), default="grouped",
                    help="messages of the large replay: each child's events together, as `casewatch "
                         "replay` sends them (default), or one event per message")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of (b) and (c) each, alternating; the best of each counts (default 2)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per measurement")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                    help="directory for <timestamp>.json and latest.json (or one .json file)")
    args = ap.parse_args(argv)
    if args.quick:
        args.population, args.years, args.timeout = 3000, 0.5, 300.0
        args.rate, args.seconds, args.large, args.repeat = 100.0, 5.0, False, 1
    elif not args.bootstrap:
        ap.error("--bootstrap is required (or --quick, which starts its own broker)")

    state = Path(tempfile.mkdtemp(prefix="casewatch-bench-"))
    manager = None
    try:
        bootstrap = args.bootstrap
        if bootstrap is None:
            manager, bootstrap = start_own_kafka(state)
        events = event_set(args.population, args.years, 17, ["E06000004"])
        n = len(events)
        topic = f"bench-events-{uuid.uuid4().hex[:8]}"
        load_s = load_topic(bootstrap, topic, events, args.partitions)
        print(f"loaded {n} events into {topic} in {load_s:.1f}s", file=sys.stderr)
        results: dict = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "cpu_count": os.cpu_count(), "load_average_1m": os.getloadavg()[0],
                         "events": n, "population": args.population, "years": args.years,
                         "partitions": args.partitions, "quick": args.quick}
        a = asyncio.run(plain_consumer(bootstrap, topic, n))
        results["a_plain_aiokafka_events_per_s"] = n / a
        print(f"(a) {n / a:,.0f} events/s", file=sys.stderr)
        # (b) and (c) alternate --repeat times and the best of each counts: a 2-core machine
        # shared with the broker gives single runs ±10% apart.
        bs, cs, cpus = [], [], []
        for _ in range(args.repeat):
            bs.append(run_faust(bootstrap, topic, n, state, args.timeout))
            print(f"(b) {n / bs[-1]:,.0f} events/s", file=sys.stderr)
            c, app_id = run_engine(bootstrap, topic, n, state, args.partitions, args.timeout)
            cs.append(c)
            cpus.append(CPU.get(1))
            print(f"(c) {n / c:,.0f} events/s", file=sys.stderr)
        b, c = min(bs), min(cs)
        results["b_bare_faust_events_per_s"] = n / b
        results["c_engine_events_per_s"] = n / c
        results["b_runs_events_per_s"] = [round(n / x) for x in bs]
        results["c_runs_events_per_s"] = [round(n / x) for x in cs]
        pairs = sorted(bx / cx for bx, cx in zip(bs, cs))  # each (c) against the (b) just before it
        results["ratio_c_over_b_per_pair"] = [round(r, 3) for r in pairs]
        results["ratio_c_over_b_median_pair"] = statistics.median(pairs)
        results["engine_cpu_us_per_event_1_worker"] = cpus[cs.index(c)]
        results["ratio_c_over_b"] = b / c
        results["ratio_c_over_a"] = a / c
        results["state_bytes_per_child"], results["state_children"] = stored_bytes_per_child(bootstrap, app_id)
        results["state_bytes_per_child_computed"] = state_bytes_per_child(events, args.partitions)
        # (d) Scaling: 1 and then 2 workers whose consumer group has formed (every partition
        # assigned) before the events arrive, so the figure is throughput, not the one-off join.
        formed = {}
        for workers in (1, 2):
            formed[workers] = run_engine_formed(bootstrap, events, state, args.partitions, args.timeout, workers)
            print(f"(d) {workers} worker(s), group formed first: {n / formed[workers]:,.0f} events/s",
                  file=sys.stderr)
        results["c1_formed_group_events_per_s"] = n / formed[1]
        results["c2_two_workers_events_per_s"] = n / formed[2]
        results["ratio_2_workers_over_1"] = formed[1] / formed[2]
        # Where the time goes: engine CPU per event with 1 and 2 workers (equal figures mean the
        # work divides without overhead; the wall-clock ratio is then bounded by the cores the
        # workers and the broker share).
        results["engine_cpu_us_per_event_1_worker_formed"] = CPU.get(1)
        results["engine_cpu_us_per_event_2_workers"] = CPU.get(2)
        # And 2 workers started together on the loaded topic, the second joining while the first
        # already counts: the rebalance and rebuild are inside this figure.
        c2, _ = run_engine(bootstrap, topic, n, state, args.partitions, args.timeout, workers=2)
        results["c2_joining_events_per_s"] = n / c2
        if STEADY:
            results["c2_joining_after_rebalance_events_per_s"] = STEADY["events_per_s"]
        print(f"(d) 2 workers joining on a loaded topic: {n / c2:,.0f} events/s", file=sys.stderr)
        results.update(measure_latency(bootstrap, state, args.partitions, args.rate, args.seconds, args.timeout))
        print(f"(e) p50 {results['latency_p50_ms']:.0f} ms, p99 {results['latency_p99_ms']:.0f} ms",
              file=sys.stderr)
        get_s, series, size = render_time_20_authorities(1000 if args.quick else 10000, args.partitions)
        results["metrics_get_20_authorities_ms"] = get_s * 1000
        results["metrics_series_20_authorities"] = series
        results["metrics_body_bytes_20_authorities"] = size
        if args.large:
            probe = 5000  # events per head of population for a 2-year history, from a small probe
            per_child = len(event_set(probe, 2.0, 23, ["E06000004"])) / probe
            population = int(round(args.large_events / per_child))
            large = event_set(population, 2.0, 23, ["E06000004"])
            large_topic = f"bench-large-{uuid.uuid4().hex[:8]}"
            if args.large_form == "grouped":
                results["large_messages"] = load_topic_grouped(bootstrap, large_topic, large, args.partitions)
            else:
                load_topic(bootstrap, large_topic, large, args.partitions)
                results["large_messages"] = len(large)
            results["large_message_form"] = args.large_form
            results["large_events"] = len(large)
            results["large_population"] = population
            t0 = time.perf_counter()
            busy, _ = run_engine(bootstrap, large_topic, len(large), state, args.partitions, args.timeout)
            results["large_replay_s"] = busy
            results["large_replay_with_startup_s"] = time.perf_counter() - t0
            results["large_events_per_s"] = len(large) / busy
            del large
        else:
            results["not_measured"] = ["500k-event replay (run with --large)"]
        results["load_average_1m_end"] = os.getloadavg()[0]
        paths = write_results(args.out, results)
        print(table(results))
        print(f"(JSON: {', '.join(str(p) for p in paths)}; logs in {state})")
        return 0
    finally:
        if manager is not None:
            manager.down()


if __name__ == "__main__":
    sys.exit(main())
