"""One batch of the events topic applied to the figures, without Faust.

The engine's agent (services/engine/app.py) takes the events topic's records in small batches and
hands each batch to :class:`BatchProcessor`, which

* reads each record's replay marking (a replay control record is not an event: never applied,
  never dead-lettered; a run's end is noted once the records before it are applied),
* decodes it (one event, or a JSON array of one child's events from a bulk replay) and checks the
  envelope (``event_id``, ``event_type``, ``la_code`` and a key), dead-lettering what fails
  (``undecodable``, ``empty_batch``, ``missing_envelope_field``, ``missing_key``: stage ``decode``),
* groups the events by (partition, child) so a child with several events in the batch is
  recomputed and written once,
* applies each group to the figures; a group that raises is applied one event at a time so only
  the poison events are set aside (``unprocessable``, stage ``apply``); a cross-event rule break is
  dead-lettered with its reason (stage ``rules``); a duplicate ``event_id`` changes nothing and is
  counted as a duplicate, never twice,
* writes each changed child's history to the store and queues it for the changelog, then flushes
  the changelog.

What is dead-lettered with which reason, what is retried and what stops the stream is declared in
:mod:`casewatch.processing.error_policy`; this module takes its reasons and stages from there.

Everything outside is a port given to the constructor: the figures, the history store
(:class:`casewatch.processing.store.HistoryStore`: stored bytes by partition and key), the changelog (``add`` / ``flush``), the dead-letter sink, the metrics, the
catch-up state, the replay-marking reader, the known event types and the clock. A dead letter
holds an event's id and type only, or for undecodable bytes their size and hash, never content.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, Awaitable, Callable, Iterable, NamedTuple, Protocol

from casewatch.processing.error_policy import DECODE_ERRORS, POISON_ISOLATION, ErrorKind, reason_and_stage
from casewatch.processing.store import HistoryStore, decode_history, extend_history, loads

log = logging.getLogger("casewatch.engine")

ENVELOPE_REQUIRED = ("event_id", "event_type", "la_code")


class Record(NamedTuple):
    """What the processor needs of one consumed record (a named tuple: one is made for every
    consumed message, and a tuple is made several times faster than a frozen dataclass)."""
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any = None  # (name, bytes) pairs, a mapping, or None


class Changelog(Protocol):
    def add(self, partition: int, key: bytes, value: bytes) -> None: ...
    async def flush(self) -> None: ...


class Metrics(Protocol):
    def applied(self, event: dict) -> None: ...
    def duplicate(self) -> None: ...
    def applied_offsets(self, last: dict[int, int]) -> None: ...
    def newest_event_at(self, when: float) -> None: ...


class CatchUpState(Protocol):
    def replay_record(self, partition: int, run_id: str) -> None: ...
    def replay_end(self, partition: int, run_id: str) -> None: ...


DeadLetterSink = Callable[[str, str, dict], Awaitable[None]]  # (reason, stage, payload)
ReplayMarking = Callable[[Any], tuple[str | None, bool, bool]]  # headers -> (run id, is end, is control)


class BatchProcessor:
    def __init__(self, *, figures, store: HistoryStore, changelog: Changelog,
                 dead_letters: DeadLetterSink, metrics: Metrics, catch_up: CatchUpState,
                 marking: ReplayMarking, event_types: Iterable[str], clock: Callable[[], float],
                 rewrite_on_duplicate: bool = False):
        self.figures = figures
        self.store = store
        self.changelog = changelog
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.catch_up = catch_up
        self.marking = marking
        self.event_types = frozenset(event_types)
        self.clock = clock
        # A store that outlives the process (rocksdb) may hold a history whose changelog record was
        # never delivered (the worker died in between); the events are then read again (their
        # offsets were not committed) and are all duplicates. With this set, such a child's stored
        # history is written to the changelog again.
        self.rewrite_on_duplicate = rewrite_on_duplicate

    async def process(self, records: Iterable[Record]) -> int:
        """Apply one batch; returns the number of events newly applied."""
        groups: dict[tuple[int, bytes], list[dict]] = {}
        last: dict[int, int] = {}  # partition -> offset of its last record in the batch
        replay_ends: list[tuple[int, str]] = []
        for record in records:
            last[record.partition] = record.offset
            if record.headers and self._replay_marked(record.partition, record.headers, replay_ends):
                continue  # a control record: not an event
            try:
                decoded = loads(record.value)
            except DECODE_ERRORS:
                await self._dead_letter(ErrorKind.UNDECODABLE, safe_payload(record.value))
                continue
            if decoded == []:
                await self._dead_letter(ErrorKind.EMPTY_BATCH, {})
                continue
            for event in decoded if isinstance(decoded, list) else (decoded,):
                if not isinstance(event, dict) or not all(map(event.get, ENVELOPE_REQUIRED)):
                    await self._dead_letter(ErrorKind.MISSING_ENVELOPE_FIELD, self.envelope_only(event))
                elif not record.key:
                    await self._dead_letter(ErrorKind.MISSING_KEY, self.envelope_only(event))
                else:
                    groups.setdefault((record.partition, record.key), []).append(event)
        set_aside: list[tuple[str, str, dict]] = []
        newly_applied = sum(self._apply_group(partition, key, events, set_aside)
                            for (partition, key), events in groups.items())
        self.metrics.applied_offsets(last)
        for partition, run_id in replay_ends:  # after the run's records before them are applied
            self.catch_up.replay_end(partition, run_id)
        if newly_applied:
            self.metrics.newest_event_at(self.clock())
        for reason, stage, payload in set_aside:
            await self.dead_letters(reason, stage, payload)
        await self.changelog.flush()
        return newly_applied

    async def _dead_letter(self, kind: ErrorKind, payload: dict) -> None:
        reason, stage = reason_and_stage(kind)
        await self.dead_letters(reason, stage, payload)

    def _replay_marked(self, partition: int, headers, replay_ends: list) -> bool:
        """Note a record's replay marking. Returns True for a control record (not an event)."""
        run_id, end, control = self.marking(headers)
        if control:
            if end and run_id:
                replay_ends.append((partition, run_id))
            return True
        if run_id:
            self.catch_up.replay_record(partition, run_id)
        return False

    def _apply_group(self, partition: int, key: bytes, events: list[dict], set_aside: list) -> int:
        """Apply one child's events of the batch; returns how many were newly applied. What cannot
        be applied is added to ``set_aside`` as (reason, stage, payload)."""
        skey = key.decode(errors="replace")
        first_seen = skey not in self.figures.partition(partition).keys
        stored = self._stored_events(partition, key) if first_seen else None
        try:
            results = [self.figures.apply(partition, skey, events, stored)]
        except POISON_ISOLATION:  # the policy's one catch-all: a poison event must not stop the stream
            # ErrorKind.GROUP_NOT_APPLIED: apply the group one event at a time so only the poison
            # events are set aside (ErrorKind.EVENT_NOT_APPLIED).
            results = []
            for event in events:
                try:
                    results.append(self.figures.apply(partition, skey, [event], stored))
                    stored = None
                except POISON_ISOLATION:
                    log.error("an event could not be applied (type %s); sent to dead letters",
                              self.envelope_only(event).get("event_type", "?"))
                    _set_aside(set_aside, ErrorKind.EVENT_NOT_APPLIED, self.envelope_only(event))
        return sum(self._record(key, partition, applied, set_aside) for applied in results)

    def _stored_events(self, partition: int, key: bytes) -> list[dict] | None:
        raw = self.store.get(partition, key)
        return decode_history(raw)[1] if raw else None

    def _record(self, key: bytes, partition: int, applied, set_aside: list) -> int:
        for _ in range(applied.duplicates):
            self.metrics.duplicate()
        if applied.history is None:
            if applied.duplicates and self.rewrite_on_duplicate:
                stored = self.store.get(partition, key)
                if stored is not None:
                    self.changelog.add(partition, key, stored)
            return 0
        # The partition is stored with the events so a rebuild can group keys by partition; the
        # changelog partition is the key's own (in a batch, Faust's "current event" need not be).
        value = extend_history(self.store.get(partition, key), partition, applied.appended,
                               lambda: applied.to_store)
        self.store.put(partition, key, value)
        self.changelog.add(partition, key, value)
        for event in applied.events:
            self.metrics.applied(event)
        for event_id, reason in applied.rejections:
            _set_aside(set_aside, ErrorKind.RULE_BREAK, {"event_id": event_id}, reason)
        return len(applied.events)

    def envelope_only(self, event: object) -> dict:
        """What a dead letter keeps of an event: its id and type when they look like an id and a
        known type, nothing else (an event that never passed ingest may hold anything)."""
        if not isinstance(event, dict):
            return {"not_an_object": type(event).__name__}
        out = {}
        event_id, event_type = event.get("event_id"), event.get("event_type")
        try:
            out["event_id"] = str(uuid.UUID(event_id)) if isinstance(event_id, str) else None
        except ValueError:
            out["event_id"] = None
        if isinstance(event_type, str) and event_type in self.event_types:
            out["event_type"] = event_type
        return {k: v for k, v in out.items() if v is not None}


def _set_aside(set_aside: list, kind: ErrorKind, payload: dict, domain_reason: str | None = None) -> None:
    """Keep a dead letter of ``kind`` until the batch is applied (the policy gives its reason and
    stage; a rule break's reason is the domain's)."""
    reason, stage = reason_and_stage(kind, domain_reason)
    set_aside.append((reason, stage, payload))


def safe_payload(raw: bytes | None) -> dict:
    """A dead-letter rendering of undecodable bytes: only their size and a hash, never content
    (the bytes might hold identifiers that never went through pseudonymisation)."""
    return {"undecodable_bytes": len(raw or b""), "sha256": hashlib.sha256(raw or b"").hexdigest()}
