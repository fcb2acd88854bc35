"""A child's stored history (the ``case_histories`` table's value): encode, extend, decode. No Faust here;
the Faust side of the changelog is casewatch/adapters/faust/changelog.py.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterator, Protocol

import orjson


# -- the table's value: {"p": <partition>, "e": [<compacted event>, ...]} ----------------------------
# Compact JSON written with orjson (PyPI ``orjson``: the changelog encoding was 7.8 µs of an event
# in the benchmark's profile with the standard library's encoder). What orjson refuses (an integer
# beyond 64 bits, a key that is not a string) is written by the standard library as before; values
# are read by either (a stored value written by the standard library, non-ASCII as \u escapes,
# reads back the same), so old changelog values still decode.
def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=str)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, separators=(",", ":"), default=str).encode()


def loads(raw: bytes | str) -> Any:
    """JSON bytes to Python values: orjson, and the standard library for what orjson does not
    accept (NaN, UTF-16/32, lone surrogates), so anything ``json.loads`` reads is read, and what it
    refuses raises its error (the processor dead-letters a record's undecodable bytes by it)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def encode_history(partition: int, events: list[dict]) -> bytes:
    """A key's stored value: its partition (a rebuild groups keys by it) and its events."""
    # Copied to a bytes object of its own length: orjson hands back its whole output buffer (at
    # least a few KB, with the length set below it), and this value is kept in the table for every
    # key. Uncopied, a region's worker (5 authorities, 214,292 children) peaked at 2,912 MB against
    # 2,175 MB (benchmarks/run.py --region 5); the copy costs well under a microsecond.
    return memoryview(_dumps({"p": partition, "e": events})).tobytes()


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
    stored = loads(value)
    return stored["p"], stored["e"]


# -- where the values live ---------------------------------------------------------------------------
class HistoryStore(Protocol):
    """The table of stored histories, addressed by the key's partition and the key (the engine's
    is casewatch/adapters/faust/changelog.py's ``TableHistories``)."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...
    def put(self, partition: int, key: bytes, value: bytes) -> None: ...
    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]: ...


def partition_histories(store: HistoryStore, partition: int) -> Iterator[tuple[str, list[dict]]]:
    """``(key, events)`` of every stored history of ``partition``, what a rebuild of its figures
    reads."""
    for key, value in store.items(partition):
        _, events = decode_history(value)
        yield key.decode(), events
