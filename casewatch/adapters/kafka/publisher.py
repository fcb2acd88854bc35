"""Publishing case events to Kafka (kafka-python ``KafkaProducer``).

* ``acks="all"`` and an idempotent producer: a record counts as stored only when every in-sync
  replica has it, and producer retries never write it twice.
* Key: the pseudonymised ``child_ref`` (``workforce.snapshot``: ``wf:<la_code>:<team>``), so a
  child's events stay in order in one partition. Value: the compact JSON of the validated,
  pseudonymised event.
* A record that fails validation goes to the dead-letter topic instead (docs/events.md), with
  identifier fields pseudonymised and every value that could hold free text redacted.
* Every stored event also gets a record ``event_id -> {source_system, event_type}`` on the
  compacted event-sources topic (``casewatch/adapters/kafka/event_sources.py``), acknowledged with it, so
  the ingest API can check that a correction targets an event of the same source.
* Input hygiene before validation: text with a lone UTF-16 surrogate (anywhere) and references that
  are already pseudonyms (unless the source may send them) are field errors; dates outside the
  configured plausible range are rejected by the schema (``date_range``).
* Kafka unreachable: ``KafkaUnavailable`` (the API answers 503, the loader stops and says so).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any, Iterable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from casewatch.adapters.kafka.security import kafka_python_config
from casewatch.bootstrap import today_for
from casewatch.config import Settings
from schemas import EventBase, ValidationFailure, parse_event
from schemas import IDENTIFIER_FIELDS
from schemas.types import TEAM_PATTERN
from casewatch.adapters.kafka.dead_letters import DeadLetterRecord
from casewatch.edge.pseudonymise import (PSEUDONYM_RE, PSEUDONYM_REFUSED_MESSAGE, REDACTED, Pseudonymiser,
                                         dead_letter_payload, has_lone_surrogate)
from casewatch.adapters.kafka.exceptions import KafkaUnavailable  # noqa: F401 - also importable from here

log = logging.getLogger("casewatch.ingest")

STAGE_VALIDATION = "validation"
STAGE_DECODE = "decode"


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class StoredTogether:
    """The future of an event and of its event-sources record: ``get`` waits for both; callbacks
    fire on the event's acknowledgement, errbacks on either failure."""

    def __init__(self, main, *others):
        self.main = main
        self.others = others

    def get(self, timeout=None):
        result = self.main.get(timeout=timeout)
        for other in self.others:
            other.get(timeout=timeout)
        return result

    def add_callback(self, fn, *args, **kwargs):
        self.main.add_callback(fn, *args, **kwargs)
        return self

    def add_errback(self, fn, *args, **kwargs):
        for future in (self.main, *self.others):
            future.add_errback(fn, *args, **kwargs)
        return self

    @property
    def is_done(self) -> bool:
        return all(getattr(f, "is_done", False) for f in (self.main, *self.others))

    def succeeded(self) -> bool:
        return all(f.succeeded() for f in (self.main, *self.others))


TEAM_RE = re.compile(TEAM_PATTERN)
DERIVED_FIELDS = ("effective_date", "collection_year")
UNICODE_MESSAGE = "contains invalid Unicode (a lone UTF-16 surrogate); send UTF-8 text"


def _has_surrogate(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return not value.isascii() and has_lone_surrogate(value)  # ASCII text has no surrogate
    if depth > 64:
        return False
    if isinstance(value, list):
        return any(_has_surrogate(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k, depth + 1) or _has_surrogate(v, depth + 1) for k, v in value.items())
    return False


@lru_cache(maxsize=1)
def _field_names() -> frozenset[str]:
    from schemas import EVENT_TYPES
    return frozenset(name for cls in EVENT_TYPES.values() for name in cls.model_fields)


def hygiene_errors(raw: dict, pre_pseudonymised: bool) -> list[dict]:
    """Field errors found before validation: invalid Unicode anywhere, and references that are
    already pseudonyms from a source that may not send them. Never quotes a value."""
    errors = []
    ours = _field_names()
    for position, (name, value) in enumerate(raw.items(), 1):
        bad_name = _has_surrogate(name) if isinstance(name, str) else True
        # a field name that is not ours is input too (it may be a name): located by position only
        loc = name if not bad_name and name in ours else f"(unknown field #{position})"
        if bad_name or _has_surrogate(value):
            errors.append({"loc": loc, "msg": UNICODE_MESSAGE, "type": "unicode_invalid"})
        elif (not pre_pseudonymised and name in IDENTIFIER_FIELDS and isinstance(value, str)
              and PSEUDONYM_RE.match(value)):
            errors.append({"loc": name, "msg": PSEUDONYM_REFUSED_MESSAGE, "type": "pseudonym_not_permitted"})
    return errors


def _merge(first: list[dict], then: list[dict]) -> list[dict]:
    """``first`` and the errors of ``then`` at fields ``first`` does not already name."""
    named = {e["loc"].split(".", 1)[0] for e in first}
    return first + [e for e in then if e["loc"].split(".", 1)[0] not in named]


@dataclass
class Checked:
    """One record after pseudonymisation and validation."""
    event: EventBase | None
    payload: Any                    # the wire event (valid) or the dead-letter payload (invalid)
    errors: list[dict] = field(default_factory=list)
    stage: str = STAGE_VALIDATION

    @property
    def ok(self) -> bool:
        return self.event is not None


class EventPublisher:
    """Validates, pseudonymises and publishes events; dead-letters the ones that fail.

    ``source_system`` is stamped on every event (the authenticated source at the API, ``loader``
    for bulk loads). ``source`` names the dead-letter source (``ingest``, ``loader``, ...).
    ``pre_pseudonymised``: references already of the pseudonym form are accepted (default: only
    for the ``replay`` source system, i.e. ``casewatch replay`` and ``casewatch dlq replay``).
    ``linger_ms``: 0 by default, as a caller of the API waits for its records' acknowledgement (a
    linger would be that much added to every request; records sent while a request is in flight
    are batched anyway); the bulk loader, which does not wait per record, lingers to fill batches.
    """

    def __init__(self, settings: Settings, source_system: str = "loader", *, source: str | None = None,
                 producer: KafkaProducer | None = None, pseudonymiser: Pseudonymiser | None = None,
                 ack_timeout: float = 15.0, max_block_ms: int = 5000, delivery_timeout_ms: int = 30000,
                 check_configured: bool = True, pre_pseudonymised: bool | None = None,
                 linger_ms: int = 0, batch_size: int = 64 * 1024):
        self.settings = settings
        self.pre_pseudonymised = source_system == "replay" if pre_pseudonymised is None else pre_pseudonymised
        self.source_system = source_system
        self.source = source or source_system
        self.pseudonymiser = pseudonymiser or Pseudonymiser.from_settings(settings)
        self.ack_timeout = ack_timeout
        self._producer = producer
        self._producer_config = dict(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True,
            max_in_flight_requests_per_connection=1, linger_ms=linger_ms, batch_size=batch_size,
            max_block_ms=max_block_ms, delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=min(delivery_timeout_ms - 100, 10000),
            allow_auto_create_topics=False, client_id=f"casewatch-ingest-{source_system}",
            reconnect_backoff_max_ms=2000, **kafka_python_config(settings))
        self.teams = settings.team_list if check_configured else None
        self.la_codes = settings.la_code_list if check_configured else None
        self.today = today_for(settings)
        self._date_range: tuple | None = None  # (today, its range): worked out again when the day changes

    @property
    def date_range(self) -> tuple:
        """The plausible dates of an event (earliest, latest), from today's date, asked each time."""
        today = self.today()
        if self._date_range is None or self._date_range[0] != today:
            self._date_range = (today, self.settings.event_date_range(today))
        return self._date_range[1]

    # -- Kafka ------------------------------------------------------------------------------
    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(**self._producer_config)
            except KafkaError as exc:
                raise KafkaUnavailable(f"Kafka is not reachable ({type(exc).__name__})") from None
        return self._producer

    def _send(self, topic: str, key: str | None, value: Any):
        """Send ``value`` (bytes as they are, anything else as compact JSON) under ``key``."""
        try:
            return self.producer.send(topic, key=key.encode("utf-8") if key else None,
                                      value=value if isinstance(value, bytes) else compact_json(value))
        except KafkaError as exc:  # e.g. KafkaTimeoutError: no metadata within max_block_ms
            raise KafkaUnavailable(f"Kafka did not take the record ({type(exc).__name__})") from None

    def wait(self, futures: Iterable, timeout: float | None = None) -> list:
        """Block until every future is acknowledged; ``KafkaUnavailable`` if any is not."""
        results = []
        for future in futures:
            try:
                results.append(future.get(timeout=timeout or self.ack_timeout))
            except KafkaError as exc:
                raise KafkaUnavailable(f"Kafka did not acknowledge a record ({type(exc).__name__})") from None
        return results

    def healthy(self) -> bool:
        """True when the events topic's partitions are known from the broker's metadata."""
        try:
            return bool(self.producer.partitions_for(self.settings.events_topic))
        except (KafkaError, KafkaUnavailable):
            return False

    def flush(self, timeout: float | None = None) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout)
            except KafkaError as exc:
                raise KafkaUnavailable(f"Kafka did not take the buffered records ({type(exc).__name__})") from None

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=timeout)
            finally:
                self._producer = None

    # -- records ----------------------------------------------------------------------------
    def check(self, raw: Any, source_system: str | None = None, *, pre_pseudonymised: bool | None = None,
              extra_errors: list[dict] | None = None, pseudonymised: dict | None = None) -> Checked:
        """Pseudonymise and validate one raw record (no Kafka). ``extra_errors``: field errors found
        by the caller (the API's checks of a correction's target), which reject the record too.
        ``pseudonymised``: ``self.pseudonymiser.event(raw, ...)`` when the caller has it already (the
        loader, which derives the event id from it), so the identifiers are not hashed twice."""
        if not isinstance(raw, dict):
            return Checked(None, self.pseudonymiser.opaque(raw),
                           [{"loc": "", "msg": "an event must be a JSON object", "type": "model_type"}], STAGE_DECODE)
        allowed = self.pre_pseudonymised if pre_pseudonymised is None else pre_pseudonymised
        own = hygiene_errors(raw, allowed) + list(extra_errors or [])
        record = (dict(pseudonymised) if pseudonymised is not None
                  else self.pseudonymiser.event(raw, keep_pseudonyms=allowed))
        record["source_system"] = source_system or self.source_system
        try:
            event = parse_event(record, teams=self.teams, la_codes=self.la_codes, date_range=self.date_range)
            errors = own
        except ValidationFailure as failure:
            # a field the source did not send but was derived (effective_date from the main date)
            # repeats its source's error: only the field that was sent is named
            derived = [e for e in failure.errors if e["loc"] in DERIVED_FIELDS and e["loc"] not in raw]
            reported = [e for e in failure.errors if e not in derived] or derived
            event, errors = None, _merge(own, reported)
        if errors:
            payload = dead_letter_payload(record, errors, teams=self.settings.team_list)
            team = record.get("team")
            if (payload.get("team") == REDACTED and isinstance(team, str) and TEAM_RE.match(team)
                    and not any(e["loc"] == "team" and e["type"] != "team" for e in errors)):
                payload["team"] = self.pseudonymiser.redacted_team(team)  # replayable once configured
            return Checked(None, payload, errors)
        return Checked(event, event.to_wire())

    def publish(self, checked: Checked):
        """Send a checked record to its topic, and a stored event's event-sources record; returns
        the Kafka future (of both)."""
        if checked.ok:
            event = checked.event
            stored = self._send(self.settings.events_topic, event.partition_key, checked.payload)
            origin = self._send(self.settings.events_sources_topic, event.event_id,
                                {"source_system": event.source_system, "event_type": event.event_type})
            return StoredTogether(stored, origin)
        return self.dead_letter(checked.payload, checked.errors, checked.stage)

    def dead_letter(self, payload: Any, errors: list[dict], stage: str, source: str | None = None):
        key = payload.get("child_ref") if isinstance(payload, dict) else None
        if not (isinstance(key, str) and key.startswith("ps_")):
            key = None
        record = DeadLetterRecord(payload, errors, source or self.source, stage, now_rfc3339())
        return self._send(self.settings.deadletter_topic, key, record.encode())

    def send(self, raw: Any) -> Checked:
        """Check one record and publish it (event or dead letter) without waiting for the ack."""
        checked = self.check(raw)
        self.publish(checked)
        return checked

    def send_grouped(self, raws: Iterable[Any], max_events_per_message: int = 200,
                     buffer_events: int = 50_000, progress=None) -> dict[str, int]:
        """Bulk replay: check every record, then send the valid events of each key (child)
        together, as JSON arrays of at most ``max_events_per_message`` events, so the engine pays
        the per-message cost once per child rather than once per event. Order within a child does
        not matter to the engine (its figures are order-independent) and ``event_id``s keep the
        sending idempotent. Invalid records go to the dead-letter topic as usual. At most
        ``buffer_events`` events are held before the groups are sent. Blocks until Kafka has
        acknowledged every message; returns counts."""
        groups: dict[str, list] = {}
        futures: list = []
        counts = {"read": 0, "published": 0, "dead_lettered": 0, "messages": 0}
        buffered = 0

        def send_groups() -> None:
            nonlocal buffered
            for key, group in groups.items():
                for start in range(0, len(group), max_events_per_message):
                    chunk = group[start:start + max_events_per_message]
                    futures.append(self._send(self.settings.events_topic, key, chunk))
                    counts["messages"] += 1
            groups.clear()
            buffered = 0

        for raw in raws:
            counts["read"] += 1
            checked = self.check(raw)
            if checked.ok:
                groups.setdefault(checked.event.partition_key, []).append(checked.payload)
                counts["published"] += 1
                buffered += 1
                if buffered >= buffer_events:
                    send_groups()
            else:
                futures.append(self.dead_letter(checked.payload, checked.errors, checked.stage))
                counts["dead_lettered"] += 1
            if progress is not None:
                progress(1)
        send_groups()
        self.flush()
        self.wait(futures)
        return counts

    def send_and_wait(self, raw: Any) -> Checked:
        checked = self.check(raw)
        self.wait([self.publish(checked)])
        return checked
