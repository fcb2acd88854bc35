"""Erasure of one child: ``casewatch erase --child REF --la CODE`` (docs/dpia-data-flow.md §8).

What holds a child, and how it is removed:

* **Kafka topics** (the events, the dead letters, the engine's ``case_histories`` changelog, and any
  other topic of the cluster): every topic is scanned; a topic with a record whose key, value or
  headers hold the child's pseudonym (or its raw id) is *rewritten*. A second pass removes what
  names the removed events only by their event ids (the ``.sources`` topic's records, an engine
  dead letter about a rule break). Every other record is copied,
  partition by partition and in order (key, value, headers, timestamp), to a scratch topic; the
  topic is deleted and created again with the same partitions and configs; the records are copied
  back and the scratch topic deleted. The committed offsets of every consumer group on the topic
  are moved to the same place in the rewritten log (a record's new offset is its old offset less
  the erased records before it), so the engine neither skips nor re-reads anything.

  Why not tombstones alone: a tombstone is a record *keyed by the pseudonym*, which the broker keeps
  for ``delete.retention.ms`` after compaction, and compaction never touches the active segment, so
  the child's history would stay on disk for an unbounded time. (The engine does honour a tombstone
  on restore: Faust's memory store deletes a key whose changelog value is None.) A rewrite leaves
  nothing; Kafka then deletes the old topic's files from disk after ``file.delete.delay.ms``
  (one minute by default).
* **The engine's figures**: the engine keeps them in memory and rebuilds them from its changelog
  when it starts. Erasure therefore runs with the engine stopped (it refuses while a consumer group
  reading a topic it must rewrite has members); once restarted the engine has no trace of the child.
  Writers (ingest, the feeds) must be stopped too: a topic whose end moved while it was copied is
  not swapped, and the command says so.
* **The DfE feed's snapshot state** (SQLite under the state directory): the child's row is deleted
  and overwritten (``secure_delete``). A pending DfE ``purge`` request for the child is removed.

Every run appends one audit line to ``<state dir>/audit/erasure.log``: when, by whom, the authority,
a one-way reference of the erasure (a keyed hash that cannot be turned back into the pseudonym or
the id), and how many records were removed where. It never holds the raw id or the pseudonym.
Running it again for the same child finds nothing and removes nothing (idempotent).

A DfE ``purge`` of a whole child (``services/feeds/dfe_api.py``) voids the child's events at once
(its figures drop live) and queues an erasure request; ``casewatch erase --pending`` carries out
the queued ones. A purge below the child (an episode, a plan, an assessment) queues the erasure of
the voided events only: their records are left out, the child's stored history in the engine's
changelog (and any replay message holding them) is rewritten without them, and their event-sources
records and dead letters go by event id; the child's other events stay.
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from casewatch.config import Settings
from casewatch.errors import ErasureError  # noqa: F401 - also importable from here

ONS_LA_CODE_PATTERN = r"^(E0[6-9]\d{6}|E1\d{7})$"
INTERNAL_TOPIC_PREFIX = "__"
SCRATCH_MARK = ".erasure-"
POLL_MS = 500


# -- who ---------------------------------------------------------------------------------------
def child_pseudonym(settings: Settings, child_ref: str, la_code: str) -> str:
    """The child's pseudonym as ingest makes it (``casewatch.edge.pseudonymise``); a reference that
    is already a pseudonym is taken as it is."""
    import inspect

    from casewatch.edge.pseudonymise import PSEUDONYM_RE, Pseudonymiser
    if PSEUDONYM_RE.match(child_ref):
        return child_ref
    pseudonymiser = Pseudonymiser.from_settings(settings)
    if "la_code" in inspect.signature(pseudonymiser.pseudonym).parameters:  # pseudonyms scoped by authority
        return pseudonymiser.pseudonym(child_ref, la_code=la_code)
    return pseudonymiser.pseudonym(child_ref)


def audit_reference(settings: Settings, pseudonym: str) -> str:
    """A one-way reference of an erasure for the audit log, keyed so that it cannot be confirmed
    from a guessed pseudonym without the key."""
    key = settings.read_pseudonymisation_key() or b""
    return "er_" + hmac.new(key, b"erasure-audit|" + pseudonym.encode(), hashlib.sha256).hexdigest()[:20]


# -- the queue of DfE purges -------------------------------------------------------------------
class ErasureQueue:
    """Erasure requests (a DfE ``purge`` of a whole child) waiting for ``casewatch erase --pending``:
    one JSON line each, ``{"la_code", "child", "requested_at"}`` (child = the pseudonym), in a 600
    file under the state directory. A request is removed once it was carried out."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def of(cls, settings: Settings) -> "ErasureQueue":
        return cls(settings.state_dir / "erasure" / "pending.jsonl")

    def request(self, la_code: str, child_key: str, events: Iterable[str] | None = None) -> None:
        """Queue the erasure of a child, or with ``events`` (event ids of originals) of those events."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        entry = {"la_code": la_code, "child": child_key}
        if events is not None:
            entry["events"] = sorted(events)
        if any({k: r.get(k) for k in entry} == entry and ("events" in entry) == ("events" in r)
               for r in self.pending()):
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({**entry, "requested_at": _now()}) + "\n")

    def pending(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def remove(self, child_key: str, events: Iterable[str] | None = None) -> bool:
        """Remove the child's requests (all of them; with ``events`` only the request of those)."""
        rows = self.pending()
        wanted = sorted(events) if events is not None else None
        kept = [r for r in rows if not (r["child"] == child_key and (wanted is None or r.get("events") == wanted))]
        if len(kept) == len(rows):
            return False
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(tmp, self.path)
        return True


# -- Kafka -------------------------------------------------------------------------------------
@dataclass
class TopicRewrite:
    topic: str
    removed: int = 0
    kept: int = 0
    swapped: bool = False


@dataclass
class ErasureReport:
    topics: dict[str, int] = field(default_factory=dict)   # topic -> records removed
    snapshot_state: int = 0                                 # rows removed from the feed's state
    pending_removed: bool = False
    table_directories: int = 0                              # engine workers' on-disk tables removed

    @property
    def total(self) -> int:
        return sum(self.topics.values()) + self.snapshot_state


def _kafka_config(settings: Settings) -> dict:
    from casewatch.adapters.kafka.security import kafka_python_config
    return {"bootstrap_servers": settings.bootstrap, **kafka_python_config(settings)}


def _matches(needles: tuple[bytes, ...], record) -> bool:
    parts = [record.key or b"", record.value or b""]
    parts += [v or b"" for _, v in (record.headers or [])]
    return any(n in p for p in parts for n in needles)


def _partitions(consumer, topic: str) -> list:
    from kafka import TopicPartition
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        time.sleep(0.2)
    raise ErasureError(f"topic {topic} has no partitions the client can see: check the broker and run erase again")


def _read(settings: Settings, topic: str, on_record: Callable, group_id: str | None = None) -> dict:
    """Every record of ``topic`` from the beginning to the end offsets seen at the start, in offset
    order per partition; returns those end offsets."""
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(enable_auto_commit=False, group_id=group_id, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000, max_partition_fetch_bytes=8 * 1024 * 1024,
                             **_kafka_config(settings))
    try:
        tps = _partitions(consumer, topic)
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if consumer.position(tp) < ends[tp]}
        idle_since = time.monotonic()
        while remaining:
            batch = consumer.poll(timeout_ms=POLL_MS)
            if not batch:
                if time.monotonic() - idle_since > 30:
                    raise ErasureError(f"topic {topic} could not be read to its end: check the broker and run "
                                       "erase again")
                continue
            idle_since = time.monotonic()
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        on_record(tp.partition, record)
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
        return {tp.partition: ends[tp] for tp in tps}
    finally:
        consumer.close()


def _end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(enable_auto_commit=False, **_kafka_config(settings))
    try:
        tps = _partitions(consumer, topic)
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


class Kafka:
    """The admin operations erasure needs (kafka-python)."""

    def __init__(self, settings: Settings):
        from kafka import KafkaAdminClient
        self.settings = settings
        self.admin = KafkaAdminClient(request_timeout_ms=30000, client_id="casewatch-erase",
                                      **_kafka_config(settings))

    def close(self) -> None:
        self.admin.close()

    def topics(self) -> list[str]:
        return sorted(t for t in self.admin.list_topics() if not t.startswith(INTERNAL_TOPIC_PREFIX))

    def describe(self, topic: str) -> tuple[int, dict[str, str]]:
        """The topic's partition count and the configs set on the topic itself."""
        from kafka.admin import ConfigResource, ConfigResourceType
        meta = self.admin.describe_topics([topic])[0]
        partitions = len(meta["partitions"])
        for _ in range(50):
            result = self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            resources = [res for response in result for res in response.resources]
            if resources and all(res[0] == 0 for res in resources):
                break
            time.sleep(0.2)  # a topic just created: its configs are not known yet
        else:
            raise ErasureError(f"the configs of topic {topic} cannot be read: check the broker and run erase again")
        configs = {}
        for res in resources:
            # DescribeConfigs v1+: (name, value, read_only, config_source, is_sensitive, synonyms);
            # source 1 (DYNAMIC_TOPIC_CONFIG) = set on the topic itself
            for name, value, read_only, source, *_ in res[4]:
                if source == 1 and value is not None and not read_only:
                    configs[name] = value
        return partitions, configs

    def create(self, topic: str, partitions: int, configs: dict[str, str]) -> None:
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError
        deadline = time.monotonic() + 60
        while True:
            try:
                self.admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=dict(configs))],
                                         timeout_ms=30000)
                return
            except TopicAlreadyExistsError:  # the deletion is still going on
                if time.monotonic() > deadline:
                    raise ErasureError(f"topic {topic} could not be created again: create it with its old "
                                       "partitions and configs, then run erase again") from None
                time.sleep(0.5)

    def delete(self, topic: str) -> None:
        self.admin.delete_topics([topic], timeout_ms=30000)
        deadline = time.monotonic() + 60
        while topic in self.admin.list_topics():
            if time.monotonic() > deadline:
                raise ErasureError(f"topic {topic} was not deleted within a minute: check the broker")
            time.sleep(0.3)

    def groups_on(self, topic: str) -> dict[str, dict[int, int]]:
        """Consumer groups with committed offsets on ``topic``: group -> {partition: offset}."""
        out = {}
        for group in self.admin.list_consumer_groups():
            group_id = group[0]
            offsets = self.admin.list_consumer_group_offsets(group_id)
            mine = {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic and om.offset >= 0}
            if mine:
                out[group_id] = mine
        return out

    def active_members(self, group_id: str) -> int:
        described = self.admin.describe_consumer_groups([group_id])
        return sum(len(d.members) for d in described)


KEEP = object()   # a transform's answer: copy the record as it is


def _copy(settings: Settings, source: str, target: str, transform: Callable | None,
          removed: dict[int, list[int]] | None) -> tuple[int, int, dict[int, int]]:
    """Copy ``source`` to ``target`` partition for partition. ``transform(record)`` answers KEEP
    (copy it), None (leave it out; its offset goes to ``removed``) or new value bytes (copy it with
    that value). Returns (records copied, records left out, end offsets of ``source``)."""
    from kafka import KafkaProducer
    producer = KafkaProducer(acks="all", linger_ms=20, max_in_flight_requests_per_connection=1,
                             enable_idempotence=True, batch_size=256 * 1024, **_kafka_config(settings))
    counts = {"kept": 0, "removed": 0}
    futures = []

    def on_record(partition: int, record) -> None:
        value = record.value
        if transform is not None:
            out = transform(record)
            if out is None:
                counts["removed"] += 1
                if removed is not None:
                    removed.setdefault(partition, []).append(record.offset)
                return
            if out is not KEEP:
                value = out
        futures.append(producer.send(target, key=record.key, value=value, partition=partition,
                                     timestamp_ms=record.timestamp, headers=list(record.headers or [])))
        counts["kept"] += 1

    try:
        ends = _read(settings, source, on_record)
        producer.flush()
        for f in futures:
            f.get(timeout=60)
    finally:
        producer.close()
    return counts["kept"], counts["removed"], ends


def _event_ids(value: bytes | None) -> set[bytes]:
    """The event ids of a record of the events topic (one event, or a JSON array of one child's)."""
    try:
        decoded = json.loads(value or b"")
    except (ValueError, RecursionError):
        return set()
    events = decoded if isinstance(decoded, list) else [decoded]
    return {e["event_id"].encode() for e in events if isinstance(e, dict) and isinstance(e.get("event_id"), str)}


def without_records_holding(needles: tuple[bytes, ...], removed_event_ids: set[bytes] | None = None) -> Callable:
    """A transform leaving out every record whose key, value or headers hold one of ``needles``
    (the event ids of what it leaves out go to ``removed_event_ids``)."""
    def transform(record):
        if not _matches(needles, record):
            return KEEP
        if removed_event_ids is not None:
            removed_event_ids.update(_event_ids(record.value))
        return None
    return transform


def without_events(child: bytes, roots: frozenset[str], removed_event_ids: set[bytes]) -> Callable:
    """A transform taking the events ``roots`` name (their originals, amendments and voids: an event
    whose ``event_id`` or ``correction_of`` is a root) out of the child's records: an event record
    is left out, a JSON array of the child's events (a replay message) and the engine's stored
    history (changelog) lose those events, a dead letter about one is left out."""
    from casewatch.processing.store import decode_history, encode_history

    def hit(event) -> bool:
        if not isinstance(event, dict):
            return False
        if event.get("event_id") in roots or event.get("correction_of") in roots:
            if isinstance(event.get("event_id"), str):
                removed_event_ids.add(event["event_id"].encode())
            return True
        return False

    def transform(record):
        if record.key != child and not (record.value and child in record.value):
            return KEEP
        try:
            decoded = json.loads(record.value or b"")
        except (ValueError, RecursionError):
            return KEEP
        if isinstance(decoded, dict) and "e" in decoded and "p" in decoded:       # the engine's history
            partition, events = decode_history(record.value)
            kept = [e for e in events if not hit(e)]
            return KEEP if len(kept) == len(events) else encode_history(partition, kept)
        if isinstance(decoded, list):                                               # a replay message
            kept = [e for e in decoded if not hit(e)]
            if len(kept) == len(decoded):
                return KEEP
            return json.dumps(kept, separators=(",", ":")).encode() if kept else None
        if isinstance(decoded, dict) and (hit(decoded) or hit(decoded.get("payload"))):  # an event, a dead letter
            return None
        return KEEP
    return transform


def rewrite_topic(settings: Settings, kafka: Kafka, topic: str, needles: tuple[bytes, ...],
                  log: Callable[[str], None], removed_event_ids: set[bytes] | None = None,
                  transform: Callable | None = None) -> TopicRewrite:
    """Rewrite ``topic`` without the records that hold any of ``needles`` (see the module doc), or
    through ``transform`` when given. The event ids of what is removed go to ``removed_event_ids``."""
    result = TopicRewrite(topic)
    transform = transform or without_records_holding(needles, removed_event_ids)
    found = {"n": 0}

    def count(_partition, record):
        if transform(record) is not KEEP:
            found["n"] += 1

    _read(settings, topic, count)
    if not found["n"]:
        return result
    groups = kafka.groups_on(topic)
    for group_id in groups:
        if kafka.active_members(group_id):
            raise ErasureError(f"consumer group {group_id} is reading {topic}: stop it (e.g. the engine) and run "
                               "erase again")
    partitions, configs = kafka.describe(topic)
    scratch = f"{topic}{SCRATCH_MARK}{uuid.uuid4().hex[:8]}"
    kafka.create(scratch, partitions, configs)
    removed: dict[int, list[int]] = {}
    try:
        kept, gone, ends = _copy(settings, topic, scratch, transform, removed)
        if _end_offsets(settings, topic) != ends:
            raise ErasureError(f"something is still writing to {topic}: stop ingest, the feeds and the engine, "
                               "then run erase again")
        kafka.delete(topic)
        kafka.create(topic, partitions, configs)
        _copy(settings, scratch, topic, None, None)
    except BaseException:
        if topic in kafka.admin.list_topics():
            kafka.delete(scratch)
        else:
            log(f"  the records of {topic} without the child are kept in {scratch}; "
                "re-create the topic and copy them back")
        raise
    kafka.delete(scratch)
    _move_offsets(settings, topic, groups, removed)
    result.removed, result.kept, result.swapped = found["n"], kept, True   # left out or changed
    return result


def _move_offsets(settings: Settings, topic: str, groups: dict[str, dict[int, int]],
                  removed: dict[int, list[int]]) -> None:
    """Commit each group's offsets at the same place of the rewritten topic."""
    from bisect import bisect_left

    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    for group_id, offsets in groups.items():
        new = {}
        for partition, offset in offsets.items():
            gone_before = bisect_left(sorted(removed.get(partition, [])), offset)
            new[TopicPartition(topic, partition)] = OffsetAndMetadata(offset - gone_before, "", -1)
        consumer = KafkaConsumer(group_id=group_id, enable_auto_commit=False, **_kafka_config(settings))
        try:
            consumer.assign(list(new))
            consumer.commit(new)
        finally:
            consumer.close(autocommit=False)


# -- the whole erasure -------------------------------------------------------------------------
def snapshot_state_files(settings: Settings) -> list[Path]:
    feeds = settings.state_dir / "feeds"
    return sorted(feeds.glob("*.sqlite")) if feeds.is_dir() else []


def remove_engine_tables(settings: Settings, log: Callable[[str], None] = print) -> int:
    """Remove this machine's engine workers' table directories (``Settings.engine_tables_dir``).

    The topics were rewritten without the child, the ``case_histories`` changelog among them, but a
    table kept on disk (``CASEWATCH_ENGINE_STORE=rocksdb``) does not follow a rewritten changelog:
    it would keep the erased history and only read the changelog's tail. Without its directory a
    worker restores the rewritten changelog whole. Erasure runs with the engine stopped (it refuses
    while a consumer group reads a topic it rewrites), so nothing holds these directories.
    Workers on other machines: docs/operations.md "Table store"."""
    import shutil
    removed = 0
    tables = settings.engine_tables_dir
    for directory in sorted(tables.glob("worker-*")) if tables.is_dir() else []:
        shutil.rmtree(directory)
        removed += 1
    if removed:
        log(f"  {removed} engine table directory(ies) under {tables} removed: the workers restore the "
            "rewritten changelog whole")
    return removed


def erase_child(settings: Settings, child_ref: str, la_code: str, *,
                snapshot_files: Iterable[Path] | None = None, events: Iterable[str] | None = None,
                log: Callable[[str], None] = print) -> ErasureReport:
    """Remove one child from every topic, the feed's snapshot state and the erasure queue; with
    ``events`` (event ids of originals: a DfE purge below the child) only those events, their
    amendments and voids, from every topic (the child and its snapshot state stay)."""
    import re
    if not re.match(ONS_LA_CODE_PATTERN, la_code or ""):
        raise ErasureError("--la takes the authority's ONS code, e.g. E06000004")
    pseudonym = child_pseudonym(settings, child_ref, la_code)
    needles = (pseudonym.encode(),) if child_ref == pseudonym else (pseudonym.encode(), child_ref.encode())
    report = ErasureReport()
    kafka = Kafka(settings)
    try:
        topics = [t for t in kafka.topics() if SCRATCH_MARK not in t]
        event_ids: set[bytes] = set()
        roots = frozenset(events) if events is not None else None
        for topic in topics:
            transform = without_events(pseudonym.encode(), roots, event_ids) if roots is not None else None
            done = rewrite_topic(settings, kafka, topic, needles, log, event_ids, transform)
            if done.removed:
                report.topics[topic] = done.removed
                log(f"  {topic}: {done.removed} record(s) removed or rewritten, {done.kept} kept")
        # Second pass: what names the removed events only by their ids (the event-sources topic's
        # records, keyed by event id; the engine's dead letters about a rule break).
        if event_ids:
            for topic in topics:
                done = rewrite_topic(settings, kafka, topic, tuple(sorted(event_ids)), log)
                if done.removed:
                    report.topics[topic] = report.topics.get(topic, 0) + done.removed
                    log(f"  {topic}: {done.removed} record(s) about the child's events removed")
    finally:
        kafka.close()
    from casewatch.adapters.sqlite.snapshot_state import SqliteSnapshotStore
    if roots is None:
        for path in snapshot_files if snapshot_files is not None else snapshot_state_files(settings):
            store = SqliteSnapshotStore(path)
            try:
                report.snapshot_state += int(store.delete(pseudonym))
            finally:
                store.close()
    if report.topics:
        report.table_directories = remove_engine_tables(settings, log)
    report.pending_removed = ErasureQueue.of(settings).remove(pseudonym, roots)
    write_audit(settings, pseudonym, la_code, report, "erase_child" if roots is None else "erase_events")
    return report


def write_audit(settings: Settings, pseudonym: str, la_code: str, report: ErasureReport,
                action: str = "erase_child") -> Path:
    audit = settings.state_dir / "audit"
    audit.mkdir(parents=True, exist_ok=True)
    audit.chmod(0o700)
    path = audit / "erasure.log"
    line = {"at": _now(), "by": _operator(), "action": action, "la_code": la_code,
            "erasure_ref": audit_reference(settings, pseudonym),
            "removed": {"topics": report.topics, "snapshot_state": report.snapshot_state,
                        "pending_request": report.pending_removed,
                        "engine_table_directories": report.table_directories},
            "outcome": "removed" if report.total else "nothing_left"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
    return path


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- CLI ---------------------------------------------------------------------------------------
def register(subparsers) -> None:
    p = subparsers.add_parser(
        "erase", help="remove one child from every topic, the figures and the feed state (audited)",
        description="Remove one child from the events, dead-letter and changelog topics (rewritten without "
                    "it) and from the DfE feed's snapshot state, and write an audit line without the child's "
                    "id. Stop the engine, ingest and the feeds first; restart the engine afterwards and it "
                    "rebuilds its figures without the child. Running it again changes nothing.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--child", metavar="REF", help="the child's case-system id (or its ps_ pseudonym)")
    who.add_argument("--pending", action="store_true", help="carry out the erasures queued by DfE purges")
    p.add_argument("--la", metavar="CODE", help="the authority's ONS code, e.g. E06000004 (with --child)")
    p.set_defaults(func=cmd_erase)


def cmd_erase(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from casewatch import bootstrap
    from casewatch.edge.pseudonymise import PseudonymisationKeyError
    settings = bootstrap.settings()
    if args.child is not None and not args.la:
        print("erase: --child needs --la CODE, the authority's ONS code (e.g. --la E06000004)", file=sys.stderr)
        return 2
    jobs = ([(args.child, args.la, None)] if args.child is not None
            else [(r["child"], r["la_code"], r.get("events")) for r in ErasureQueue.of(settings).pending()])
    if not jobs:
        print("erase: no erasure is pending")
        return 0
    for ref, la, events in jobs:
        try:
            report = erase_child(settings, ref, la, events=events, log=print)
        except (ErasureError, PseudonymisationKeyError) as exc:
            print(f"erase: {exc}", file=sys.stderr)
            return 2
        except KafkaError as exc:
            print(f"erase: Kafka at {settings.bootstrap} did not answer ({type(exc).__name__}): start it and run "
                  "erase again", file=sys.stderr)
            return 2
        what = ", ".join(f"{n} from {t}" for t, n in report.topics.items()) or "nothing from the topics"
        print(f"erased: {what}; {report.snapshot_state} feed state row(s). Restart the engine to rebuild its "
              "figures without the child." if report.total else
              "erased: nothing of that child was left (already erased, or never received)")
    return 0
