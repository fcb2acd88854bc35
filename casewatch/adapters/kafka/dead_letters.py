"""The dead-letter topic's one record and its one reader.

:class:`DeadLetterRecord` is the record of the dead-letter topic: what was refused, why, by whom,
when and at which stage. It is written (ingest, loader and replay rejections:
casewatch/adapters/kafka/publisher.py; feed mapping rejections: services/feeds/envelope.py) and
read (here) through its :meth:`~DeadLetterRecord.encode` and :meth:`~DeadLetterRecord.decode`. The
engine's refusals (decode, rules and apply stages) carry the same fields, written as a plain JSON
object by services/engine/app.py; :meth:`~DeadLetterRecord.decode` reads them alike.

:func:`read_dead_letters` reads the topic from its start to its current end; :func:`find` looks one
dead letter up by its number, partition and offset (``0:17``, or ``17`` for partition 0).
:data:`REPLAYABLE_SOURCES` names the refusals a replay may publish again. The ``casewatch dlq list |
show N | replay`` commands that use them are the ingest service's (services/ingest/dlq.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

from kafka import KafkaConsumer, TopicPartition

from casewatch.adapters.kafka.security import kafka_python_config
from casewatch.config import Settings

REPLAYABLE_SOURCES = ("ingest", "loader", "replay")
_FIELDS = ("payload", "errors", "source", "received_at", "stage")


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of the dead-letter topic: what was refused (``payload``, identifiers
    pseudonymised and free text redacted by its writer), why (``errors``: ``loc``, ``msg``,
    ``type`` each, the type a fixed reason code), who refused it (``source``: ingest, loader,
    replay, a feed, the engine), when (``received_at``, RFC 3339 UTC) and at which ``stage``
    (decode, validation, map, rules...). A field a record read back lacks is None."""

    payload: Any
    errors: list[dict]
    source: str | None
    stage: str | None
    received_at: str | None = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(
        timespec="milliseconds"))

    def to_dict(self) -> dict:
        """The JSON object of the record (fields that are None left out, ``payload`` always kept)."""
        out = {"payload": self.payload, "errors": self.errors, "source": self.source,
               "received_at": self.received_at, "stage": self.stage}
        return {k: v for k, v in out.items() if v is not None or k == "payload"}

    def encode(self) -> bytes:
        """The record's bytes on the topic: compact UTF-8 JSON (a value JSON cannot hold, as text)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")

    @classmethod
    def from_dict(cls, value: dict) -> "DeadLetterRecord":
        errors = value.get("errors")
        return cls(value.get("payload"), errors if isinstance(errors, list) else [],
                   *(value.get(k) if isinstance(value.get(k), str) else None
                     for k in ("source", "stage", "received_at")))

    @classmethod
    def decode(cls, raw: bytes | None) -> "DeadLetterRecord":
        """The record from its bytes; bytes that are no record give one that says so."""
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError, TypeError):
            return cls(None, [{"loc": "", "msg": "unreadable dead letter", "type": "undecodable"}], None, None, None)
        return cls.from_dict(value if isinstance(value, dict) else {})


@dataclass
class StoredDeadLetter:
    """A dead letter read back from the topic: its place (partition, offset) and its record."""
    partition: int
    offset: int
    record: DeadLetterRecord

    @property
    def number(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def value(self) -> dict:
        return self.record.to_dict()


def read_dead_letters(settings: Settings, timeout: float = 10.0) -> Iterator[StoredDeadLetter]:
    """Every dead letter from the start of the topic to its current end, in order."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=int(timeout * 1000), client_id="casewatch-dlq",
                             receive_message_max_bytes=64 * 1024 * 1024,
                             **kafka_python_config(settings))
    try:
        partitions = consumer.partitions_for_topic(settings.deadletter_topic)
        if not partitions:
            return
        tps = [TopicPartition(settings.deadletter_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > consumer.position(tp)}
        while remaining:
            batch = consumer.poll(timeout_ms=int(timeout * 1000))
            if not batch:
                break
            for tp, messages in sorted(batch.items(), key=lambda kv: kv[0].partition):
                for message in messages:
                    if message.offset >= ends[tp]:
                        continue
                    yield StoredDeadLetter(tp.partition, message.offset, DeadLetterRecord.decode(message.value))
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


def find(settings: Settings, number: str) -> StoredDeadLetter | None:
    partition, _, offset = number.rpartition(":")
    want = (int(partition) if partition else 0, int(offset))
    for letter in read_dead_letters(settings):
        if (letter.partition, letter.offset) == want:
            return letter
    return None

