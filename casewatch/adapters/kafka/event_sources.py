"""Which source system sent each stored event: the ingest API's check that a correction (a void, or
an amendment through ``correction_of``) targets an event of the same source.

Every event the publisher stores is accompanied, in the same acknowledgement, by one record on the
compacted topic ``<events topic>.sources`` (``Settings.events_sources_topic``): key = the event id,
value = ``{"source_system": ..., "event_type": ...}``. No reference, date or code: the record is
pseudonymous only through the event id. Compaction keeps one record per event id however long the
events are kept.

``EventSources`` is each ingest worker's view of that topic: a dictionary filled from the topic
(read from the beginning on the first look-up, then from where it stopped) and from the worker's
own stores. A look-up that misses reads the topic up to its end offsets of that moment first, so an
event another worker acknowledged before the correction was sent is always found; several workers
and restarts need nothing else. The first source to store an event id keeps it: the API refuses an
event re-using another source's event id (checked against what the worker has read, refreshed at
most once a second), so no source can take over another's event id to correct it. When Kafka does
not answer in time, ``KafkaUnavailable`` (the API answers 503 and the client resends).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from casewatch.config import Settings
from casewatch.adapters.kafka.security import kafka_python_config
from casewatch.adapters.kafka.publisher import KafkaUnavailable


@dataclass(frozen=True)
class Origin:
    source_system: str
    event_type: str


class EventSources:
    """event id -> ``Origin``. Without ``settings`` it holds only what ``remember`` was told (tests)."""

    def __init__(self, settings: Settings | None = None, timeout: float = 10.0):
        self._settings = settings
        self._timeout = timeout
        # event id (as an int) -> one shared object per (source system, event type): ~100 bytes an event
        self._known: dict[int, tuple[str, str]] = {}
        self._origins: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._consumer: KafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._refreshed = float("-inf")
        self._closed = False

    def __len__(self) -> int:
        return len(self._known)

    @staticmethod
    def _key(event_id: str) -> int | None:
        try:
            return uuid.UUID(event_id).int
        except (ValueError, AttributeError, TypeError):
            return None

    def _origin(self, source_system: str, event_type: str) -> tuple[str, str]:
        pair = (source_system, event_type)
        return self._origins.setdefault(pair, pair)

    def remember(self, event_id: str, source_system: str, event_type: str) -> None:
        key = self._key(event_id)
        if key is not None:
            with self._lock:
                self._known.setdefault(key, self._origin(source_system, event_type))

    def _get(self, key: int) -> Origin | None:
        found = self._known.get(key)
        return None if found is None else Origin(*found)

    def warm_up(self, attempts: int = 30, pause: float = 2.0) -> bool:
        """Read the topic to its end once (at a worker's start, in the background), so the first
        corrections do not wait for it; True when done. Without ``settings``: nothing to read."""
        if self._settings is None:
            return True
        for _ in range(attempts):
            if self._closed:
                return False
            try:
                self.catch_up()
                return True
            except KafkaUnavailable:  # not reachable yet, or a long topic: go on where it stopped
                time.sleep(pause)
        return False

    def known_origin(self, event_id: str) -> Origin | None:
        """``origin`` from what this worker has read so far (no Kafka round trip)."""
        key = self._key(event_id)
        return None if key is None else self._get(key)

    def refresh(self, max_age: float = 1.0) -> None:
        """Read what is new on the topic unless that was done less than ``max_age`` seconds ago."""
        if self._settings is not None and time.monotonic() - self._refreshed >= max_age:
            self.catch_up()

    def origin(self, event_id: str) -> Origin | None:
        """Where ``event_id`` came from, or None when no stored event has that id."""
        key = self._key(event_id)
        if key is None:
            return None
        found = self._get(key)
        if found is None and self._settings is not None:
            self.catch_up()
            found = self._get(key)
        return found

    # -- the topic ----------------------------------------------------------------------------
    def _open(self) -> KafkaConsumer:
        s = self._settings
        try:
            return KafkaConsumer(bootstrap_servers=s.bootstrap, group_id=None, enable_auto_commit=False,
                                 client_id="casewatch-ingest-event-sources", request_timeout_ms=10000,
                                 **kafka_python_config(s))
        except KafkaError as exc:
            raise KafkaUnavailable(f"Kafka is not reachable ({type(exc).__name__})") from None

    def catch_up(self) -> None:
        """Read the topic up to its current end offsets (``KafkaUnavailable`` if not in time)."""
        deadline = time.monotonic() + self._timeout
        with self._lock:
            try:
                if self._consumer is None:
                    self._consumer = self._open()
                consumer = self._consumer
                if not self._partitions:
                    numbers = consumer.partitions_for_topic(self._settings.events_sources_topic) or set()
                    self._partitions = [TopicPartition(self._settings.events_sources_topic, p) for p in sorted(numbers)]
                    if not self._partitions:
                        return  # no topic yet: nothing was ever stored with a source record
                    consumer.assign(self._partitions)
                    consumer.seek_to_beginning(*self._partitions)
                self._refreshed = time.monotonic()
                ends = consumer.end_offsets(self._partitions)
                while any(consumer.position(tp) < ends[tp] for tp in self._partitions):
                    if time.monotonic() > deadline:
                        raise KafkaUnavailable("the event-sources topic was not read to its end in time")
                    for messages in consumer.poll(timeout_ms=1000, max_records=50_000).values():
                        for message in messages:
                            self._apply(message.key, message.value)
            except KafkaError as exc:
                raise KafkaUnavailable(f"the event-sources topic cannot be read ({type(exc).__name__})") from None

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        event_key = self._key(key.decode("ascii", errors="replace")) if key else None
        if event_key is None:
            return
        if value is None:  # a tombstone (erasure)
            self._known.pop(event_key, None)
            return
        try:
            data = json.loads(value)
            origin = self._origin(str(data["source_system"]), str(data["event_type"]))
        except (ValueError, KeyError, TypeError):
            return
        self._known.setdefault(event_key, origin)  # the first source to store an id keeps it

    def close(self) -> None:
        self._closed = True
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
                self._partitions = []
