"""Attack/erasure test on the real stack: `casewatch erase --child REF --la CODE` leaves nothing of
the child. A child's events (through the DfE adapter, so the feed's snapshot store holds it too) and
a dead letter of it reach Kafka; the engine counts it; after erase (engine stopped, then started
again) a scan of every topic of the cluster, every file of the state directory and the engine's
/metrics finds neither its pseudonym nor its raw id, its figures are gone and the other child's
stay; a second erase removes nothing; the audit log holds neither."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from casewatch.stack import components as stack_components
from casewatch.adapters.kafka.topics import ensure_topics
from services.feeds.dfe_api import SnapshotAdapter
from casewatch.adapters.sqlite.snapshot_state import SqliteSnapshotStore
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.edge.pseudonymise import Pseudonymiser
from tests.conftest import LocalStack, _session_settings
from tests.support.engine_runs import wait_until_settled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]
LA = "E06000004"


@pytest.fixture(scope="module")
def local_stack():
    """A broker and a state directory of this module's own. Erasure scans every topic of the
    cluster and every file of the state directory by design; on the session's shared stack that
    would mean the whole test session's data (minutes per scan), here only this module's."""
    import tempfile

    from casewatch.stack.manager import StackManager
    state_dir = Path(tempfile.mkdtemp(prefix="casewatch-erase-test-"))
    manager = StackManager(_session_settings(state_dir), parts=["kafka"], demo=False,
                           log=lambda msg: print(msg, file=sys.stderr))
    try:
        manager.up()
    except stack_components.StackError as exc:
        manager.down()
        pytest.fail(f"the erasure tests' broker could not start: {exc}", pytrace=False)
    yield LocalStack(manager.settings, manager)
    manager.down()


def _child(ref: str, episode: str, referral: str) -> dict:
    return {"la_child_id": ref, "social_care_episodes": [{
        "social_care_episode_id": episode, "referral_date": referral, "referral_source": "6",
        "referral_no_further_action_flag": False,
        "child_and_family_assessments": [{"child_and_family_assessment_id": f"{episode}A",
                                          "start_date": referral}]}]}


def _every_topic_record(settings) -> list[tuple[str, bytes]]:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        topics = [t for t in admin.list_topics() if not t.startswith("__")]
    finally:
        admin.close()
    out = []
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=10000)
    try:
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                batch = consumer.poll(timeout_ms=5000)
                assert batch, f"{topic} stopped short of its end"
                for records in batch.values():
                    for r in records:
                        out.append((topic, b"|".join([r.key or b"", r.value or b"",
                                                      *[v or b"" for _, v in r.headers or []]])))
    finally:
        consumer.close()
    return out


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in needles):
                found.append(str(path.relative_to(root)))
    return found


def _erase(settings, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack_components.settings_env(settings)}
    return subprocess.run([sys.executable, "-m", "casewatch.cli", "erase", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_erase_leaves_nothing_of_the_child_in_topics_state_dir_or_metrics(local_stack):
    settings = local_stack.settings_for(fixed_today="2026-11-02")
    ensure_topics(settings)
    gone_ref, kept_ref = f"ERASE-{uuid.uuid4().hex[:10]}", f"KEEP-{uuid.uuid4().hex[:10]}"
    pseudonymiser = Pseudonymiser.from_settings(settings)
    gone_ps = pseudonymiser.pseudonym(gone_ref, LA)
    needles = [gone_ps.encode(), gone_ref.encode()]

    # The child's events through the DfE adapter (its snapshot state in the state dir), the other
    # child's too, and a dead letter of the child (an event with a bad code) through ingest's publisher.
    publisher = EventPublisher(settings, source_system="dfe_api", source="dfe_api")
    store_path = settings.state_dir / "feeds" / f"dfe_api_state-{uuid.uuid4().hex[:6]}.sqlite"
    store = SqliteSnapshotStore(store_path)

    def publish(events):
        publisher.wait([publisher.publish(publisher.check(ev)) for ev in events])

    adapter = SnapshotAdapter({"808": LA}, publish, lambda dls: None, store, pseudonymiser.pseudonym)
    ctx = adapter.context(808)
    adapter.receive(ctx, [_child(gone_ref, "EP1", "2026-09-01"), _child(kept_ref, "EP2", "2026-09-02")])
    bad = {"event_id": str(uuid.uuid4()), "event_type": "referral.received", "schema_version": 1, "la_code": LA,
           "team": "unassigned", "child_ref": gone_ref, "referral_date": "2026-09-03", "source": "ZZ"}
    checked = publisher.check(bad)
    assert not checked.ok
    publisher.wait([publisher.publish(checked)])
    publisher.close()
    store.close()
    records = _every_topic_record(settings)
    assert any(gone_ps.encode() in rec for _, rec in records)
    # The child's event ids: the event-sources topic names its events by them (key = event id).
    gone_ids = [json.loads(rec.split(b"|", 1)[1])["event_id"].encode() for t, rec in records
                if t == settings.events_topic and gone_ps.encode() in rec]
    assert len(gone_ids) == 2
    assert any(any(i in rec for i in gone_ids) for t, rec in records if t == settings.events_sources_topic)

    url = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
    local_stack.start_engine(settings)
    try:
        before = wait_until_settled([url], settings=settings)
    finally:
        local_stack.stop("engine")
    referrals_before = sum(v for (name, _), v in before.items() if name.startswith("casewatch_referrals")
                           and not name.startswith(("casewatch_referrals_nfa", "casewatch_referral_decisions")))
    assert referrals_before > 0

    done = _erase(settings, "--child", gone_ref, "--la", LA)
    assert done.returncode == 0, done.stdout + done.stderr
    assert gone_ref not in done.stdout + done.stderr and gone_ps not in done.stdout + done.stderr
    assert settings.events_topic in done.stdout and settings.deadletter_topic in done.stdout

    # The rewritten topics kept their partitions and configs (the changelog is still compacted).
    from casewatch.erasure import Kafka
    kafka = Kafka(settings)
    try:
        changelog = f"{settings.engine_app_id}-case_histories-changelog"
        assert changelog in done.stdout
        assert kafka.describe(changelog)[1].get("cleanup.policy") == "compact"
        partitions, configs = kafka.describe(settings.events_topic)
        assert partitions == settings.partitions and configs.get("retention.ms") == "-1"
    finally:
        kafka.close()

    # Figures: the engine restores from its rewritten changelog and no longer counts the child.
    local_stack.start_engine(settings)
    try:
        after = wait_until_settled([url], settings=settings)
        metrics_text = urllib.request.urlopen(url, timeout=30).read().decode()
    finally:
        local_stack.stop("engine")
    referrals_after = sum(v for (name, _), v in after.items() if name.startswith("casewatch_referrals")
                          and not name.startswith(("casewatch_referrals_nfa", "casewatch_referral_decisions")))
    # by hand: two children with one referral each were counted; the erased child's is gone
    assert referrals_after == referrals_before / 2
    assert not any(n.decode() in metrics_text for n in needles)

    # Every topic of the cluster: nothing of the child (the other child is still there).
    records = _every_topic_record(settings)
    assert [t for t, rec in records if any(n in rec for n in needles)] == []
    assert [t for t, rec in records if any(i in rec for i in gone_ids)] == []
    kept_ps = pseudonymiser.pseudonym(kept_ref, LA).encode()
    assert any(kept_ps in rec for t, rec in records if t == settings.events_topic)

    # Every file of the state dir (Kafka segments, the feed's SQLite, audit log, engine data):
    # Kafka removes a deleted topic's files after file.delete.delay.ms (1 minute by default).
    deadline = time.monotonic() + 150
    holding = _files_holding(settings.state_dir, needles)
    while holding and time.monotonic() < deadline:
        time.sleep(5)
        holding = _files_holding(settings.state_dir, needles)
    assert holding == []

    # Idempotent and audited: a second run removes nothing; two audit lines, neither naming the child.
    again = _erase(settings, "--child", gone_ref, "--la", LA)
    assert again.returncode == 0 and "nothing of that child was left" in again.stdout
    audit = (settings.state_dir / "audit" / "erasure.log").read_text().splitlines()
    mine = [json.loads(line) for line in audit[-2:]]
    assert [m["outcome"] for m in mine] == ["removed", "nothing_left"]
    assert mine[0]["erasure_ref"] == mine[1]["erasure_ref"]
    # by hand: referral.received and assessment.started of the child; its one dead letter
    removed = mine[0]["removed"]
    assert removed["snapshot_state"] == 1 and removed["topics"][settings.events_topic] == 2
    assert removed["topics"][settings.deadletter_topic] == 1
    assert oct((settings.state_dir / "audit" / "erasure.log").stat().st_mode & 0o777) == "0o600"


def test_erase_refuses_while_the_engine_reads_the_topic_and_explains_in_one_sentence(local_stack):
    settings = local_stack.settings_for(fixed_today="2026-11-02")
    ensure_topics(settings)
    ref = f"BUSY-{uuid.uuid4().hex[:10]}"
    publisher = EventPublisher(settings, source_system="dfe_api", source="dfe_api")
    ev = {"event_id": str(uuid.uuid4()), "event_type": "referral.received", "schema_version": 1, "la_code": LA,
          "team": "unassigned", "child_ref": ref, "referral_date": "2026-09-03", "source": "6"}
    publisher.wait([publisher.publish(publisher.check(ev))])
    publisher.close()
    local_stack.start_engine(settings)
    try:
        wait_until_settled([f"http://{settings.host}:{settings.engine_metrics_port}/metrics"], settings=settings)
        done = _erase(settings, "--child", ref, "--la", LA)
    finally:
        local_stack.stop("engine")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "stop it" in done.stderr and ref not in done.stderr
    # nothing was removed: the child's event is still there
    pseudonym = Pseudonymiser.from_settings(settings).pseudonym(ref, LA).encode()
    assert any(pseudonym in rec for t, rec in _every_topic_record(settings) if t == settings.events_topic)


def test_a_dfe_purge_of_a_child_takes_the_erasure_path(local_stack):
    """A DfE ``purge`` of a whole child voids its events (figures drop at once), deletes its snapshot
    state and queues its erasure; `casewatch erase --pending` then removes it, voids included,
    from every topic, and empties the queue."""
    from casewatch.erasure import ErasureQueue
    settings = local_stack.settings_for()
    ensure_topics(settings)
    ref = f"PURGE-{uuid.uuid4().hex[:10]}"
    pseudonymiser = Pseudonymiser.from_settings(settings)
    ps = pseudonymiser.pseudonym(ref, LA)
    publisher = EventPublisher(settings, source_system="dfe_api", source="dfe_api")
    store = SqliteSnapshotStore(settings.state_dir / "feeds" / f"dfe_api_state-{uuid.uuid4().hex[:6]}.sqlite")
    queue = ErasureQueue.of(settings)
    adapter = SnapshotAdapter({"808": LA}, lambda evs: publisher.wait([publisher.publish(publisher.check(e))
                                                                        for e in evs]),
                              lambda dls: None, store, pseudonymiser.pseudonym, request_erasure=queue.request)
    ctx = adapter.context(808)
    adapter.receive(ctx, [_child(ref, "EP1", "2026-09-01")])
    adapter.receive(ctx, [{"la_child_id": ref, "purge": True}])
    publisher.close()
    assert store.get(ps) is None
    store.close()
    assert [r["child"] for r in queue.pending()] == [ps]
    assert oct(queue.path.stat().st_mode & 0o777) == "0o600"
    in_events = [rec for t, rec in _every_topic_record(settings) if t == settings.events_topic and ps.encode() in rec]
    assert len(in_events) == 4   # by hand: referral.received, assessment.started and their two voids

    done = _erase(settings, "--pending")
    assert done.returncode == 0, done.stdout + done.stderr
    assert queue.pending() == []
    assert [t for t, rec in _every_topic_record(settings) if ps.encode() in rec or ref.encode() in rec] == []
    assert "no erasure is pending" in _erase(settings, "--pending").stdout


def test_a_dfe_purge_below_the_child_erases_that_level_only(local_stack):
    """A DfE purge of one assessment voids it and queues the erasure of that level; `erase --pending`
    removes the assessment's event and its void from every topic (events, event sources, the
    engine's stored history) while the child's referral stays, and the engine's figures are those
    of the referral alone."""
    from casewatch.erasure import ErasureQueue
    from casewatch.processing.store import decode_history
    settings = local_stack.settings_for(fixed_today="2026-11-02")
    ensure_topics(settings)
    ref = f"LEVEL-{uuid.uuid4().hex[:10]}"
    pseudonymiser = Pseudonymiser.from_settings(settings)
    ps = pseudonymiser.pseudonym(ref, LA)
    publisher = EventPublisher(settings, source_system="dfe_api", source="dfe_api")
    store = SqliteSnapshotStore(settings.state_dir / "feeds" / f"dfe_api_state-{uuid.uuid4().hex[:6]}.sqlite")
    queue = ErasureQueue.of(settings)
    sent: list[dict] = []

    def publish(evs):
        sent.extend(evs)
        publisher.wait([publisher.publish(publisher.check(e)) for e in evs])

    adapter = SnapshotAdapter({"808": LA}, publish, lambda dls: None, store, pseudonymiser.pseudonym,
                              request_erasure=queue.request)
    ctx = adapter.context(808)
    child = _child(ref, "EP1", "2026-09-01")
    adapter.receive(ctx, [child])
    url = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
    local_stack.start_engine(settings)           # the engine stores the assessment in its changelog
    try:
        wait_until_settled([url], settings=settings)
        child["social_care_episodes"][0]["child_and_family_assessments"][0]["purge"] = True
        adapter.receive(ctx, [child])
        voided = wait_until_settled([url], settings=settings)
    finally:
        local_stack.stop("engine")
    publisher.close()
    store.close()
    started = next(e for e in sent if e["event_type"] == "assessment.started")
    void = next(e for e in sent if e["event_type"] == "event.voided")
    referral = next(e for e in sent if e["event_type"] == "referral.received")
    assert [r.get("events") for r in queue.pending()] == [[started["event_id"]]]

    done = _erase(settings, "--pending")
    assert done.returncode == 0, done.stdout + done.stderr
    assert queue.pending() == []
    gone = [started["event_id"].encode(), void["event_id"].encode()]
    records = _every_topic_record(settings)
    assert [t for t, rec in records if any(g in rec for g in gone)] == []
    assert any(referral["event_id"].encode() in rec for t, rec in records if t == settings.events_topic)
    changelog = f"{settings.engine_app_id}-case_histories-changelog"
    stored = [rec.split(b"|", 1)[1] for t, rec in records if t == changelog and rec.startswith(ps.encode())]
    assert stored and all([e["event_id"] for e in decode_history(v)[1]] == [referral["event_id"]]
                          for v in stored if v)
    local_stack.start_engine(settings)
    try:
        after = wait_until_settled([url], settings=settings)
    finally:
        local_stack.stop("engine")
    assert after == voided   # the figures of the referral alone, as after the void
