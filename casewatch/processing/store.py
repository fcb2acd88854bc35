"""A child's stored history (the ``case_histories`` table's value): encode, extend, decode. No Faust here;
the Faust side of the changelog is casewatch/adapters/faust/changelog.py.
"""
from __future__ import annotations

import json
from typing import Any, Callable


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
