"""casewatch throughput benchmark (a script, not a test).

Loads one fixed, generated event set (the seeded simulator) into a real Kafka topic once, then in
the same run measures events/s for
  (a) a plain aiokafka consumer decoding the messages (json.loads),
  (b) a bare faust-streaming agent that only decodes them (benchmarks/faust_decode_app.py),
  (c) the casewatch engine (`casewatch engine`, own app id), until the sum of its
      casewatch_events_processed_total reaches N,
and reports (c)/(b) and (c)/(a); plus state bytes per child (the engine's compacted history) and
the time to build the figures' samples for 20 authorities. Writes JSON and a short table.

  python benchmarks/run.py --bootstrap 127.0.0.1:29092        # against a running Kafka
  python benchmarks/run.py --quick                             # smoke mode: small set, own broker
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REF_FIELDS = ("child_ref", "episode_ref", "worker_ref", "referral_ref", "assessment_ref", "s47_ref",
              "from_contact_ref", "plan_ref")
BENCH_KEY = b"benchmark-pseudonymisation-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pseudonymise(event: dict) -> dict:
    """Through the ingest edge's pseudonymiser when present; otherwise the same documented form
    (``ps_`` + 32 hex of a keyed HMAC-SHA-256), so no raw-looking id enters Kafka."""
    out = dict(event)
    for name in REF_FIELDS:
        if out.get(name):
            digest = hmac.new(BENCH_KEY, str(out[name]).encode(), hashlib.sha256).hexdigest()[:32]
            out[name] = f"ps_{digest}"
    return out


def event_set(population: int, years: float, seed: int, las: list[str]) -> list[dict]:
    from services.simulator.authority import authority_events
    until = date(2026, 3, 31)
    start = date(until.year - int(years), until.month, until.day) if years >= 1 else date(2025, 10, 1)
    return [pseudonymise(e) for e in authority_events(las, population, seed, start, until, warmup_years=2)]


def load_topic(bootstrap: str, topic: str, events: list[dict], partitions: int) -> float:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1)
    t0 = time.perf_counter()
    for e in events:
        key = (e.get("child_ref") or f"wf:{e['la_code']}:{e['team']}").encode()
        producer.send(topic, key=key, value=json.dumps(e, separators=(",", ":")).encode())
    producer.flush()
    producer.close()
    return time.perf_counter() - t0


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


def wait_for_count(proc: subprocess.Popen, read, n: int, timeout: float) -> float:
    """Seconds from the first counted message to ``n`` (polling ``read()``)."""
    deadline = time.monotonic() + timeout
    t0 = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the measured process exited early")
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


def run_engine(bootstrap: str, topic: str, n: int, state: Path, partitions: int, timeout: float) -> float:
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    env = dict(os.environ, CASEWATCH_KAFKA_BOOTSTRAP=bootstrap, CASEWATCH_EVENTS_TOPIC=topic,
               CASEWATCH_DEADLETTER_TOPIC=f"bench-dlq-{tag}", CASEWATCH_ENGINE_APP_ID=f"bench-engine-{tag}",
               CASEWATCH_ENGINE_METRICS_PORT=str(port), CASEWATCH_STATE_DIR=str(state / "engine"),
               CASEWATCH_PARTITIONS=str(partitions), CASEWATCH_FIXED_TODAY="2026-03-31",
               CASEWATCH_LA_CODES="E06000004", PYTHONPATH=str(REPO))
    log = open(state / "engine.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "casewatch.cli", "engine"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        return wait_for_count(proc, lambda: engine_processed(f"http://127.0.0.1:{port}/metrics"), n, timeout)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def state_bytes_per_child(events: list[dict]) -> float:
    from casewatch.domain.history import compact
    per_child: dict[str, list] = {}
    for e in events:
        if e.get("child_ref"):
            per_child.setdefault(e["child_ref"], []).append(compact(e))
    total = sum(len(json.dumps(v, separators=(",", ":"))) for v in per_child.values())
    return total / max(1, len(per_child))


def render_time_20_authorities(population: int) -> tuple[float, int]:
    """Seconds to produce every series of 20 authorities' figures (the exporter's walk)."""
    from casewatch.domain.aggregate import Aggregate
    from casewatch.domain.calendar import WorkingDayCalendar
    from casewatch.domain.history import ChildHistory, compact
    from casewatch.domain.indicators import contribution
    from services.simulator.authority import authority_events
    cal = WorkingDayCalendar()
    as_of = date(2026, 3, 31)
    las = [f"E06{i:06d}" for i in range(1, 21)]
    by_key: dict[str, list] = {}
    for e in authority_events(las, population, 9, date(2025, 10, 1), as_of, warmup_years=1):
        key = e.get("child_ref") or f"wf:{e['la_code']}:{e['team']}"
        by_key.setdefault(f"{e['la_code']}:{key}", []).append(compact(e))
    agg = Aggregate(cal, as_of)
    for events in by_key.values():
        agg.apply(None, contribution(ChildHistory(events), as_of, cal))
    t0 = time.perf_counter()
    lines = [f"{m}{sorted(labels.items())} {v}" for m, labels, v in agg.samples()]
    return time.perf_counter() - t0, len(lines)


def start_own_kafka(state: Path):
    from casewatch.config import Settings
    from casewatch.stack.manager import StackManager
    settings = Settings(state_dir=state / "stack", kafka_port=free_port(), kafka_controller_port=free_port(),
                        prometheus_port=free_port(), alertmanager_port=free_port())
    manager = StackManager(settings, parts=["kafka"], demo=False, log=lambda m: print(m, file=sys.stderr))
    manager.up()
    return manager, settings.bootstrap


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="Kafka bootstrap servers (required unless --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: a small event set; starts its own broker")
    ap.add_argument("--population", type=int, default=40000)
    ap.add_argument("--years", type=float, default=2.0)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--skip-engine", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per measurement")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.population, args.years, args.timeout = 3000, 0.5, 300.0
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
        results: dict = {"events": n, "population": args.population, "years": args.years,
                         "partitions": args.partitions, "quick": args.quick}
        a = asyncio.run(plain_consumer(bootstrap, topic, n))
        results["a_plain_aiokafka_events_per_s"] = n / a
        b = run_faust(bootstrap, topic, n, state, args.timeout)
        results["b_bare_faust_events_per_s"] = n / b
        if not args.skip_engine:
            c = run_engine(bootstrap, topic, n, state, args.partitions, args.timeout)
            results["c_engine_events_per_s"] = n / c
            results["ratio_c_over_b"] = b / c
            results["ratio_c_over_a"] = a / c
        results["state_bytes_per_child"] = state_bytes_per_child(events)
        render_s, series = render_time_20_authorities(1000 if args.quick else 10000)
        results["samples_walk_20_authorities_s"] = render_s
        results["series_20_authorities"] = series
        results["not_measured"] = ["ingest->metrics latency p50/p99", "2 workers vs 1"]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{'measure':<36} value")
        for k, v in results.items():
            if isinstance(v, float):
                print(f"{k:<36} {v:,.3f}")
            elif not isinstance(v, list):
                print(f"{k:<36} {v}")
        print(f"(JSON: {args.out})")
        return 0
    finally:
        if manager is not None:
            manager.down()


if __name__ == "__main__":
    sys.exit(main())
