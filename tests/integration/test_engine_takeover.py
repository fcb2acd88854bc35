"""A partition changing hands, on the real stack (issue 18): the worker that takes partitions over
serves exactly the figures of those partitions, the one that gives them up keeps serving exactly
the figures of the partitions it keeps, and a rebalance rebuilds only the partitions that moved
(``casewatch_engine_rebuilt_partitions_total``), for both table stores (docs/operations.md,
"Table store").

The references are separate uninterrupted runs, each of a worker of its own consumer group on a
topic that holds only the events of one set of partitions (sent to the same partition numbers),
so "the figures of those partitions" is measured, not derived from the workers under test.

A worker with the rocksdb store killed with kill -9 mid-load has recorded in each partition's
database the changelog offset it holds (where its restore starts again), takes its own partitions
back from its table on disk and ends with the figures of an uninterrupted run, and its changelog
alone (a worker with an empty directory) gives them too.

Every wait is the barrier of ``tests/support/engine_runs.py`` (every partition assigned, each
applied up to the end offset read from Kafka, every worker caught up).
"""
from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from casewatch.adapters.kafka.topics import ensure_topics
from casewatch.domain.indicators import MAX_METRICS
from tests.integration.test_engine_consistency import Watch
from tests.support.engine_runs import EndOffsets, demo_events, event_key, figures, health, scrape, wait_until_caught_up
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

FIXED_TODAY = "2026-11-02"
REBUILT = ("casewatch_engine_rebuilt_partitions_total", ())


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a keyed record (murmur2, as kafka-python and the Java client)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def publish_to_partitions(bootstrap: str, topic: str, events, partitions: int,
                          only: set[int] | None = None) -> int:
    """Send each event to its key's default partition (only those in ``only`` when given)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    sent = 0
    for event in events:
        key = event_key(event)
        partition = partition_of(key, partitions)
        if only is None or partition in only:
            producer.send(topic, key=key, value=json.dumps(event, default=str).encode(), partition=partition)
            sent += 1
    producer.flush(timeout=120)
    producer.close()
    return sent


def held(url: str) -> set[int]:
    """The events partitions a worker holds (its /healthz)."""
    return {int(p) for p in health(url)["applied_offsets"]}


def rebuilt(url: str) -> float:
    return scrape(url)[REBUILT]


def persisted_offsets(settings) -> dict[int, int]:
    """The changelog offset each partition's RocksDB database (of the worker on
    ``engine_metrics_port``) records as held (Faust's persisted offset key), read with rocksdict."""
    from rocksdict import AccessType, Options, Rdict
    found = {}
    for path in settings.engine_worker_dir.rglob("case_histories-*.db"):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            offset = db.get(b"__faust\0offset__")
        finally:
            db.close()
        if offset is not None:
            found[int(path.name.removesuffix(".db").rpartition("-")[2])] = int(offset)
    return found


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_a_worker_taking_partitions_over_serves_their_figures_and_only_moved_partitions_are_rebuilt(
        local_stack, store):
    settings = local_stack.settings_for(fixed_today=FIXED_TODAY, engine_store=store)
    ensure_topics(settings)
    n = settings.partitions
    events = demo_events(population=5000)
    first, second = events[: len(events) * 2 // 3], events[len(events) * 2 // 3:]
    port2 = settings.engine_metrics_port + 1
    url1 = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
    url2 = f"http://{settings.host}:{port2}/metrics"
    assert publish_to_partitions(settings.bootstrap, settings.events_topic, first, n) == len(first)

    local_stack.start_engine(settings, name="engine")
    try:
        # One worker alone: every partition rebuilt once, at its first assignment.
        wait_until_caught_up([url1], settings.bootstrap, settings.events_topic)
        assert held(url1) == set(range(n))
        assert rebuilt(url1) == n
        # The store asked for: rocksdb keeps one database per partition in the worker's own
        # directory (named by its metrics port); the memory store writes none.
        datadir = settings.state_dir / "engine" / settings.engine_app_id / f"worker-{settings.engine_metrics_port}"
        databases = list(datadir.rglob("case_histories-*.db"))
        assert (len(databases) == n) if store == "rocksdb" else not databases, databases

        # A second worker joins and takes partitions over.
        with Watch([url1, url2]) as watch:
            local_stack.start_engine(settings, name="engine-2", metrics_port=port2)
            wait_until_caught_up([url1, url2], settings.bootstrap, settings.events_topic)
        kept, taken = held(url1), held(url2)
        assert kept and taken and kept | taken == set(range(n)) and not kept & taken
        # The worker that kept partitions rebuilt none; the one that took partitions over rebuilt
        # exactly those.
        assert rebuilt(url1) == n
        assert rebuilt(url2) == len(taken)
        watch.assert_no_indicator_while_catching_up()
        assert max(sum(r) for r in watch.rounds) <= n, "a partition's figures held by two workers at once"

        # Both work on: the rest of the events, then each worker's figures against the reference
        # run of exactly its partitions.
        publish_to_partitions(settings.bootstrap, settings.events_topic, second, n)
        wait_until_caught_up([url1, url2], settings.bootstrap, settings.events_topic)
        assert (held(url1), held(url2)) == (kept, taken), "a further rebalance moved partitions"
        figures_kept, figures_taken = figures([url1]), figures([url2])

        # The second worker leaves: the first takes its partitions back, rebuilding only those.
        local_stack.stop("engine-2")
        alone = wait_until_caught_up([url1], settings.bootstrap, settings.events_topic)
        assert held(url1) == set(range(n))
        assert rebuilt(url1) == n + len(taken)
    finally:
        local_stack.stop("engine-2")
        local_stack.stop("engine")

    references = {}
    for name, partitions in (("kept", kept), ("taken", taken)):
        ref = local_stack.settings_for(fixed_today=FIXED_TODAY, engine_store="memory")
        ensure_topics(ref)
        publish_to_partitions(ref.bootstrap, ref.events_topic, events, n, only=partitions)
        ref_port = free_port()
        ref_url = f"http://{ref.host}:{ref_port}/metrics"
        local_stack.start_engine(ref, name=f"engine-ref-{name}", metrics_port=ref_port)
        try:
            references[name] = wait_until_caught_up([ref_url], ref.bootstrap, ref.events_topic)
        finally:
            local_stack.stop(f"engine-ref-{name}")
    assert references["kept"] and references["taken"]
    # The worker that took partitions over serves exactly their figures; the one that gave them up
    # exactly those of the partitions it kept.
    assert figures_taken == references["taken"]
    assert figures_kept == references["kept"]
    # After taking them back, the first worker serves the figures of every partition: the sum of
    # the two references (maxima for the max-type series, as the boards combine workers).
    combined = dict(references["kept"])
    for key, value in references["taken"].items():
        if key[0] in MAX_METRICS:
            combined[key] = max(combined.get(key, 0.0), value)
        else:
            combined[key] = round(combined.get(key, 0.0) + value, 6)
    assert alone == {k: v for k, v in combined.items() if v != 0}


def test_a_rocksdb_worker_killed_mid_load_restarts_on_its_table_and_gives_the_uninterrupted_figures(local_stack):
    # The table on disk may then hold histories whose changelog records were never delivered; the
    # restarted worker reads their events again (not committed) and must still count each once.
    settings = local_stack.settings_for(fixed_today=FIXED_TODAY, engine_store="rocksdb")
    ensure_topics(settings)
    n = settings.partitions
    events = demo_events(population=5000)
    half = len(events) // 2
    url = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
    publish_to_partitions(settings.bootstrap, settings.events_topic, events[:half], n)
    local_stack.start_engine(settings)
    try:
        deadline = time.monotonic() + 300
        processed = 0.0
        while time.monotonic() < deadline:
            processed = sum(v for (name, _), v in scrape(url).items() if name == "casewatch_events_processed_total")
            if processed >= half // 3:
                break
            time.sleep(0.1)
        assert 0 < processed < half, "the worker finished before it could be interrupted"
        local_stack.stop("engine", kill=True)
        # Each partition's database on disk records the changelog offset up to which it holds the
        # table (the worker recorded it as its changelog batches were delivered), within the
        # changelog as Kafka has it: the restart's restore starts there, not at the beginning.
        persisted = persisted_offsets(settings)
        changelog = EndOffsets(settings.bootstrap, f"{settings.engine_app_id}-case_histories-changelog")
        try:
            changelog_ends = changelog.read()
        finally:
            changelog.close()
        assert set(persisted) == set(range(n)), persisted
        assert all(0 <= persisted[p] < changelog_ends[p] for p in range(n)), (persisted, changelog_ends)
        publish_to_partitions(settings.bootstrap, settings.events_topic, events[half:], n)
        with Watch([url]) as watch:
            local_stack.start_engine(settings)
            restarted = wait_until_caught_up([url], settings.bootstrap, settings.events_topic)
        # The changelog holds every history too: a worker with an empty directory of its own (another
        # metrics port) restores it whole and gives the same figures.
        local_stack.stop("engine")
        other_port = free_port()
        other_url = f"http://{settings.host}:{other_port}/metrics"
        local_stack.start_engine(settings, name="engine-other", metrics_port=other_port)
        from_changelog = wait_until_caught_up([other_url], settings.bootstrap, settings.events_topic)
    finally:
        local_stack.stop("engine-other")
        local_stack.stop("engine")
    watch.assert_no_indicator_while_catching_up()

    ref = local_stack.settings_for(fixed_today=FIXED_TODAY, engine_store="memory")
    ensure_topics(ref)
    publish_to_partitions(ref.bootstrap, ref.events_topic, events, n)
    ref_port = free_port()
    ref_url = f"http://{ref.host}:{ref_port}/metrics"
    local_stack.start_engine(ref, name="engine-ref", metrics_port=ref_port)
    try:
        reference = wait_until_caught_up([ref_url], ref.bootstrap, ref.events_topic)
    finally:
        local_stack.stop("engine-ref")
    assert reference and restarted == reference
    assert from_changelog == reference
