"""Writing the ``case_histories`` table's changelog a batch at a time.

Faust's ``Table.send_changelog`` wraps every record in a ``FutureMessage``, queues it in the
producer buffer and hands it to aiokafka one by one: about 60 µs of a 250 µs event on the
one-event-per-message path (measured with the benchmark: the engine ran 4,585 events/s with it
and 6,312 without any changelog at all). Here the records of one ``take_events`` batch are
appended to one aiokafka ``BatchBuilder`` per changelog partition and submitted together: the same
topic, partition, key and value as ``send_changelog`` would write (the table restores from it
unchanged), far fewer Python steps per record.

Durability is unchanged: before committing offsets Faust flushes the producer (``Consumer.commit``
awaits ``app.producer.flush()``, which flushes this same aiokafka producer), so no offset is
committed before the changelog records of the events it covers were sent. A batch whose delivery
failed is sent again before the next one, with each key's *current* value (never the failed,
possibly older one, which could overwrite a newer value in the compacted topic).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

log = logging.getLogger("casewatch.engine")


class ChangelogWriter:
    """Collects ``(partition, key, value)`` records, then sends them as per-partition batches.

    ``producer`` is a callable returning the started aiokafka producer (Faust's transport producer
    creates it at start-up); ``topic`` the changelog topic's name; ``current(key)`` the key's
    value in the table now (for re-sending after a failed delivery)."""

    def __init__(self, producer: Callable[[], Any], topic: str, current: Callable[[bytes], bytes | None]):
        self._producer = producer
        self.topic = topic
        self._current = current
        self._pending: dict[int, dict[bytes, bytes]] = {}
        self._in_flight: list[tuple[Any, int, dict[bytes, bytes]]] = []
        self.resent_batches = 0

    def add(self, partition: int, key: bytes, value: bytes) -> None:
        """Queue the newest value of ``key`` (a later value of the same key replaces it)."""
        self._pending.setdefault(partition, {})[key] = value

    async def flush(self) -> None:
        """Submit every queued record (first re-queueing any earlier batch that failed)."""
        self._requeue_failed()
        if not self._pending:
            return
        producer = self._producer()
        pending, self._pending = self._pending, {}
        for partition, records in pending.items():
            batch, in_batch = producer.create_batch(), {}
            for key, value in records.items():
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    in_batch[key] = value
                    continue
                if in_batch:  # full: send it and start another
                    await self._submit(producer, batch, partition, in_batch)
                    batch, in_batch = producer.create_batch(), {}
                    if batch.append(key=key, value=value, timestamp=None) is not None:
                        in_batch[key] = value
                        continue
                # larger than a whole batch: the producer's ordinary path takes it
                future = await producer.send(self.topic, value, key=key, partition=partition)
                self._in_flight.append((future, partition, {key: value}))
            if in_batch:
                await self._submit(producer, batch, partition, in_batch)

    async def _submit(self, producer, batch, partition: int, records: dict[bytes, bytes]) -> None:
        future = await producer.send_batch(batch, self.topic, partition=partition)
        self._in_flight.append((future, partition, records))

    def _requeue_failed(self) -> None:
        still: list = []
        for future, partition, records in self._in_flight:
            if not future.done():
                still.append((future, partition, records))
                continue
            if future.cancelled() or future.exception() is not None:
                self.resent_batches += 1
                log.warning("a changelog batch of %d records was not delivered; sending it again",
                            len(records))
                mine = self._pending.setdefault(partition, {})
                for key in records:
                    value = self._current(key)
                    if value is not None and key not in mine:
                        mine[key] = value
        self._in_flight = still


# -- the table's value: {"p": <partition>, "e": [<compacted event>, ...]} ----------------------------
def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def encode_history(partition: int, events: list[dict]) -> bytes:
    """A key's stored value: its partition (a rebuild groups keys by it) and its events."""
    return _dumps({"p": partition, "e": events})


def extend_history(previous: bytes | None, partition: int, appended: list[dict],
                   history: Callable[[], list[dict]]) -> bytes:
    """``previous`` with ``appended`` added at the end of its events, without re-encoding the
    events already there (the same bytes as ``encode_history`` of the whole list). Falls back to
    encoding ``history()`` when ``previous`` is absent or not of that form."""
    head = b'{"p":%d,"e":[' % partition
    if previous and appended and previous.startswith(head) and previous.endswith(b"]}") \
            and len(previous) > len(head) + 2:
        return previous[:-2] + b"," + _dumps(appended)[1:-1] + b"]}"
    return encode_history(partition, history())


def decode_history(value: bytes) -> tuple[int, list[dict]]:
    """``(partition, events)`` of a stored value."""
    stored = json.loads(value)
    return stored["p"], stored["e"]
