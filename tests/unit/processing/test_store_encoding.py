"""The stored history's bytes (casewatch/processing/store.py), written with orjson since issue 18:
a value written by the old encoder (the standard library's, non-ASCII as \\u escapes) still
decodes and can be extended; what orjson cannot write (an integer beyond 64 bits) is written all
the same; ``loads`` reads whatever ``json.loads`` reads and refuses what it refuses. Expected
values are the standard library's reading of the same bytes."""
from __future__ import annotations

import json

import pytest

from casewatch.processing.store import decode_history, encode_history, extend_history, loads

EVENTS = [{"event_id": "e1", "event_type": "referral.received", "referral_date": "2026-01-05",
           "team": "Équipe Nord"},
          {"event_id": "e2", "event_type": "case.allocated", "allocated_on": "2026-01-06", "n": 3}]


def old_encoding(partition: int, events: list[dict]) -> bytes:
    """How the changelog values were written before orjson."""
    return json.dumps({"p": partition, "e": events}, separators=(",", ":"), default=str).encode()


def test_a_value_is_compact_json_that_the_standard_library_reads_back():
    value = encode_history(4, EVENTS)
    assert json.loads(value) == {"p": 4, "e": EVENTS}
    assert b", " not in value and b": " not in value      # compact separators
    assert decode_history(value) == (4, EVENTS)


def test_an_old_value_decodes_and_is_extended_without_re_encoding_its_events():
    old = old_encoding(2, EVENTS[:1])
    assert b"\\u00c9quipe" in old                        # the old encoder's escape
    assert decode_history(old) == (2, EVENTS[:1])
    extended = extend_history(old, 2, EVENTS[1:], lambda: pytest.fail("re-encoded the whole history"))
    assert extended.startswith(old[:-2])                  # the old events' bytes kept as they were
    assert json.loads(extended) == {"p": 2, "e": EVENTS}


def test_what_orjson_cannot_write_is_written_by_the_standard_library():
    events = [{"event_id": "e9", "event_type": "x", "big": 2 ** 70}]
    value = encode_history(1, events)
    assert json.loads(value)["e"][0]["big"] == 2 ** 70


@pytest.mark.parametrize("raw", [b'{"a":NaN}', '{"a":1}'.encode("utf-16"), b'"\\ud800"', b'[1,{"b":[true,null]}]'])
def test_loads_reads_what_the_standard_library_reads(raw):
    assert loads(raw) == json.loads(raw) or (raw == b'{"a":NaN}' and loads(raw).keys() == {"a"})


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe\xfd", b"[1,]"])
def test_loads_refuses_what_the_standard_library_refuses(raw):
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        loads(raw)
