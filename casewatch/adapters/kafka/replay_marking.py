"""Marking replayed history on the events topic, so the engine knows a replay is in progress.

A replay, import or load of history sends its events with the Kafka header ``casewatch-replay``
(value: the run's ASCII id). When the run ends, the producer sends one *control record* to every
partition of the events topic: key ``__casewatch_control__``, empty value, headers
``casewatch-control: replay-end`` and the same ``casewatch-replay`` run id.

The engine treats a partition as catching up from the first replay-marked record it applies until
that partition's replay-end for the same run (docs/operations.md, "Catching up"): while any of its
partitions is inside a run, a worker reports ``casewatch_engine_caught_up 0`` and publishes no
indicator series, so no figure from a half-loaded history reaches Prometheus or a page. Control
records are not events: the engine never counts them nor sends them to the dead-letter topic.

Use with a kafka-python ``KafkaProducer`` (e.g. ``EventPublisher.producer``)::

    with replay_run(publisher.producer, settings.events_topic) as run_id:
        publisher.send_grouped(events)

or, step by step, ``mark_producer(producer, run_id, topic)`` then ``send_replay_end(...)``.
"""
from __future__ import annotations

import secrets
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

REPLAY_HEADER = "casewatch-replay"
CONTROL_HEADER = "casewatch-control"
REPLAY_END = b"replay-end"
CONTROL_KEY = b"__casewatch_control__"

_MARKED = "_casewatch_unmarked_send"  # attribute holding the producer's own send while marked


def new_run_id(kind: str = "replay") -> str:
    """A run id: what kind of run (``replay``, ``import``, ``load``, ``history``), when it began
    (UTC) and a random part, all ASCII, e.g. ``replay-20261201T051800Z-3fa94c1e``."""
    if not kind.isascii() or not kind.replace("-", "").replace("_", "").isalnum():
        raise ValueError("a run kind is a short ASCII word such as 'replay' or 'import'")
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def replay_headers(run_id: str) -> list[tuple[str, bytes]]:
    """The headers of a replay-marked record of ``run_id``."""
    return [(REPLAY_HEADER, _ascii(run_id))]


def replay_end_headers(run_id: str) -> list[tuple[str, bytes]]:
    """The headers of ``run_id``'s replay-end control record."""
    return [(CONTROL_HEADER, REPLAY_END), (REPLAY_HEADER, _ascii(run_id))]


def mark_producer(producer: Any, run_id: str, topic: str | None = None) -> Any:
    """Make every record ``producer`` (a kafka-python ``KafkaProducer``) sends from now on carry the
    ``casewatch-replay`` header of ``run_id`` (only records to ``topic`` when it is given, so e.g.
    dead letters stay unmarked). Headers a caller passes are kept. Returns the producer.
    :func:`unmark_producer` undoes it; marking an already marked producer replaces the run."""
    unmarked = getattr(producer, _MARKED, None) or producer.send
    marking = replay_headers(run_id)

    def send(send_topic, value=None, key=None, headers=None, partition=None, timestamp_ms=None):
        if topic is None or send_topic == topic:
            headers = [*(headers or []), *marking]
        return unmarked(send_topic, value=value, key=key, headers=headers, partition=partition,
                        timestamp_ms=timestamp_ms)

    setattr(producer, _MARKED, unmarked)
    producer.send = send
    return producer


def unmark_producer(producer: Any) -> Any:
    """Stop marking ``producer``'s records (see :func:`mark_producer`)."""
    unmarked = getattr(producer, _MARKED, None)
    if unmarked is not None:
        producer.send = unmarked
        delattr(producer, _MARKED)
    return producer


def send_replay_end(producer: Any, topic: str, run_id: str, timeout: float = 30.0) -> int:
    """Flush ``producer``, then send ``run_id``'s replay-end control record to every partition of
    ``topic`` and wait until Kafka acknowledged each. Returns the number of partitions.

    Raises kafka-python's ``KafkaError`` (e.g. ``KafkaTimeoutError``) when Kafka does not take or
    acknowledge them in ``timeout`` seconds; the engine then ends the run on its own once no record
    of it arrived for ``CASEWATCH_ENGINE_REPLAY_SILENCE_SECONDS``."""
    send = getattr(producer, _MARKED, None) or producer.send
    producer.flush(timeout=timeout)  # every record of the run is before its end marker
    partitions = sorted(producer.partitions_for(topic) or ())
    if not partitions:
        raise ValueError(f"the topic {topic} has no partitions")
    headers = replay_end_headers(run_id)
    futures = [send(topic, value=b"", key=CONTROL_KEY, headers=headers, partition=p) for p in partitions]
    producer.flush(timeout=timeout)
    for future in futures:
        future.get(timeout=timeout)
    return len(partitions)


@contextmanager
def replay_run(producer: Any, topic: str, run_id: str | None = None, kind: str = "replay",
               timeout: float = 30.0) -> Iterator[str]:
    """Mark ``producer``'s records to ``topic`` as one run for the duration of the block, and send
    the run's replay-end to every partition when the block ends, normally or not (a failed or
    interrupted run must not leave the engine catching up). Yields the run id."""
    run_id = run_id or new_run_id(kind)
    mark_producer(producer, run_id, topic)
    try:
        yield run_id
    finally:
        unmark_producer(producer)
        send_replay_end(producer, topic, run_id, timeout=timeout)


# -- reading (the engine) ------------------------------------------------------------------------
def replay_marking(headers) -> tuple[str | None, bool]:
    """``(run id or None, is a replay-end control record)`` of a record's headers (a sequence of
    ``(name, bytes)`` pairs, as aiokafka and kafka-python give them, or a mapping)."""
    if not headers:
        return None, False
    run_id, end = None, False
    for name, value in (headers.items() if isinstance(headers, dict) else headers):
        if name == REPLAY_HEADER:
            run_id = value.decode("ascii", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
        elif name == CONTROL_HEADER:
            end = value == REPLAY_END or value == REPLAY_END.decode()
    return run_id, end


def is_control(headers) -> bool:
    """True for a casewatch control record (any ``casewatch-control`` header): not an event."""
    if not headers:
        return False
    names = headers.keys() if isinstance(headers, dict) else (name for name, _ in headers)
    return CONTROL_HEADER in names


def _ascii(run_id: str) -> bytes:
    if not run_id or not run_id.isascii() or len(run_id) > 200:
        raise ValueError("a replay run id is 1-200 ASCII characters")
    return run_id.encode("ascii")
