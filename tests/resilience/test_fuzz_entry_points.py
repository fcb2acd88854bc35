"""Fuzzing every entry point of the pipeline on the real stack.

(a) raw bytes written straight to the events topic, read by a real engine worker: it never dies,
    every event is accounted for on its own /metrics, and no dead letter repeats fuzz input;
(b) the bulk loader (``casewatch load`` as a subprocess) with fuzzed JSONL and CSV lines: no
    traceback, the summary adds up, a non-zero exit when anything was rejected;
(c) the ingest HTTP API with fuzzed methods, paths, headers and content types: never a 5xx.

Fuzz inputs are drawn by Hypothesis (derandomised, so a CI run is repeatable) and sent in one go,
then checked once: the engine and the loader are real processes, too slow to start per example.
"""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from casewatch.stack import components as stack_components
from schemas.events import EVENT_TYPES
from schemas.examples import valid_examples
from services.ingest.api import create_app
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics
from tests.conftest import REPO
from tests.support.engine_io import (LA, child_ref, producer_for, read_dead_letters, referral, sample_sum,
                                     scrape)

TODAY = "2026-11-02"
PROCESSED = "casewatch_events_processed_total"
DUPLICATES = "casewatch_events_duplicate_total"
DEAD = "casewatch_events_dead_lettered_total"
UUID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FUZZ = dict(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))


def collect(strategy, n: int) -> list:
    """``n`` examples drawn by Hypothesis (derandomised)."""
    drawn: list = []

    @hsettings(max_examples=n, **FUZZ)
    @given(strategy)
    def draw(value):
        drawn.append(value)

    draw()
    return drawn


# -- (a) the events topic ------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)
wrong_types = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.text(max_size=30))


@st.composite
def envelope_with_impossible_content(draw):
    """A well-formed envelope whose own fields (or envelope values) are wrong, of wrong type, or
    impossible: unknown codes, dates that are not dates, extra fields holding names."""
    event = dict(draw(st.sampled_from(list(valid_examples().values()))))
    event["event_id"] = str(uuid.UUID(int=draw(st.integers(0, 2 ** 128 - 1))))
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.sampled_from(sorted(event) + ["NameOfChild", "notes", "dob"]))
        event[field] = draw(wrong_types | st.sampled_from(["the 45th of Smarch", "9999-99-99", "", "Jane Doe"]))
    for f in ("event_id", "event_type", "la_code"):  # keep the envelope present (decoded, then judged)
        event.setdefault(f, "x")
        if not event[f]:
            event[f] = "x"
    return event


raw_messages = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    envelope_with_impossible_content().map(lambda e: json.dumps(e).encode()),
    st.lists(envelope_with_impossible_content(), min_size=1, max_size=3).map(lambda b: json.dumps(b).encode()),
)

# The names of the fields of every event type: a dead letter may name a field, never hold its value.
FIELD_NAMES = {name for model in EVENT_TYPES.values() for name in model.model_fields}
NAME_LIKE_ID = "Jane-Smith-born-2015-04-01-Leeds-xyz"   # 36 characters, like a UUID's length
assert len(NAME_LIKE_ID) == 36


def planted_messages() -> list[bytes]:
    """Cases a random draw would rarely reach: deep nesting, huge strings, raw ids in the envelope."""
    huge = "A" * 250_000
    impossible = dict(valid_examples()["assessment.completed"], event_id=str(uuid.uuid4()),
                      authorisation_date="the 45th of Smarch")
    name_in_envelope = dict(valid_examples()["referral.received"], event_id=NAME_LIKE_ID, event_type="JaneSmith")
    return [
        b"[" * 100_000 + b"]" * 100_000,                          # nesting deeper than any parser allows
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        json.dumps({"event_id": huge, "event_type": huge, "la_code": huge}).encode(),
        json.dumps(dict(valid_examples()["referral.received"], event_id=str(uuid.uuid4()), notes=huge)).encode(),
        json.dumps(impossible).encode(),
        json.dumps(name_in_envelope).encode(),
        b"\xff\xfe\x00\x9f not utf-8 \xc3\x28",
        b"null", b"0", b'"a string"', b"{}", b"[{}, 1, null]",
    ]


def expected_events(value: bytes) -> int:
    """How many events a message holds for the engine's accounting: a JSON array is a batch of one
    child's events (each element is applied or dead-lettered; an empty batch is itself one dead
    letter); anything else is one."""
    try:
        decoded = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return 1
    return max(len(decoded), 1) if isinstance(decoded, list) else 1


def fuzz_strings(value: bytes) -> set[str]:
    """The string values (and keys) of a fuzz message, long enough to mean something, except those
    a dead letter may name: a UUID-form event id, a catalogue event type, a field name."""
    out: set[str] = set()
    try:
        decoded = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = value.decode("utf-8", errors="ignore")
        # (the same exceptions: raw bytes that spell a catalogue event type are not a leak when
        # another message's dead letter names that type)
        return {text} if len(text.strip()) >= 8 and text not in EVENT_TYPES and text not in FIELD_NAMES else set()

    def walk(v):
        if isinstance(v, str):
            if len(v) >= 6 and not UUID_FORM.fullmatch(v) and v not in EVENT_TYPES and v not in FIELD_NAMES:
                out.add(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
    walk(decoded)
    return out


def strings_of(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for x in value for s in strings_of(x)]
    if isinstance(value, dict):
        return [s for k, x in value.items() for s in [k, *strings_of(x)]]
    return [str(value)]


def test_engine_survives_fuzzed_topic_and_accounts_for_every_event(local_stack):
    settings = local_stack.settings_for(fixed_today=TODAY)
    ensure_topics(settings)
    proc = local_stack.start_engine(settings, name="engine-fuzz")
    try:
        messages = collect(raw_messages, 600) + planted_messages()
        keys = collect(st.one_of(st.just(b""), st.binary(max_size=40), st.builds(lambda n: child_ref(n).encode(),
                                                                                 st.integers(0, 50))), 50)
        producer = producer_for(settings)
        futures = [producer.send(settings.events_topic, key=keys[i % len(keys)] or None, value=m)
                   for i, m in enumerate(messages)]
        # ... and one valid event after all the poison, which must count.
        good = referral(9999, "2026-10-01")
        futures.append(producer.send(settings.events_topic, key=good["child_ref"].encode(),
                                     value=json.dumps(good).encode()))
        producer.flush()
        for f in futures:
            f.get(timeout=30)
        producer.close()
        expected = sum(expected_events(m) for m in messages) + 1

        def accounted(text: str) -> float:
            # A cross-event rule break is applied (kept in the history) and dead-lettered too.
            return (sample_sum(text, PROCESSED) + sample_sum(text, DUPLICATES) + sample_sum(text, DEAD)
                    - sample_sum(text, DEAD, stage="rules"))

        deadline = time.monotonic() + 120
        text = scrape(settings)
        while time.monotonic() < deadline and accounted(text) < expected:
            assert proc.alive, f"engine died:\n{local_stack.processes.tail('engine-fuzz', 40)}"
            time.sleep(1)
            text = scrape(settings)
        time.sleep(3)  # nothing more may arrive: not over-counted either
        text = scrape(settings)
        assert proc.alive, f"engine died:\n{local_stack.processes.tail('engine-fuzz', 40)}"
        assert stack_components.http_ok(f"http://{settings.host}:{settings.engine_metrics_port}/metrics")[0]
        print(f"\n[fuzz topic] {len(messages)} fuzz messages holding {expected - 1} events, "
              f"applied {sample_sum(text, PROCESSED):.0f}, duplicates {sample_sum(text, DUPLICATES):.0f}, "
              f"dead-lettered {sample_sum(text, DEAD):.0f}")
        assert accounted(text) == expected, (
            [line for line in text.splitlines() if line.startswith(DEAD)],
            local_stack.processes.tail("engine-fuzz", 60))
        assert sample_sum(text, PROCESSED, event_type="referral.received", la=LA) >= 1

        dead = int(sample_sum(text, DEAD))
        letters = read_dead_letters(settings, expected=dead, timeout=60)
        assert len(letters) == dead
        inputs = set().union(*(fuzz_strings(m) for m in messages))
        for letter in letters:
            assert letter["source"] == "engine" and letter["stage"] in ("decode", "apply", "rules")
            assert letter["errors"] and letter["errors"][0]["type"] and letter["errors"][0]["msg"]
            written = strings_of(letter["payload"]) + strings_of(letter["errors"])
            leaked = [v for v in inputs if any(v in s for s in written)]
            assert not leaked, f"a dead letter repeats fuzz input ({len(leaked)} value(s))"
    finally:
        local_stack.stop("engine-fuzz")


# -- (b) the bulk loader -------------------------------------------------------------------------

line_text = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=120)


@st.composite
def jsonl_line(draw) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=80)).replace(b"\n", b" ").replace(b"\r", b" ")
    if kind == 1:
        return draw(line_text).encode()
    if kind == 2:
        return json.dumps(draw(json_values)).encode()
    if kind == 3:
        return json.dumps(draw(envelope_with_impossible_content())).encode()
    event = dict(draw(st.sampled_from(list(valid_examples().values()))))
    event["child_ref"] = f"RAWCHILD-{draw(st.integers(0, 10 ** 6))}" if "child_ref" in event else None
    event = {k: v for k, v in event.items() if v is not None}
    event["event_id"] = str(uuid.UUID(int=draw(st.integers(0, 2 ** 128 - 1))))
    return json.dumps(event).encode()


def run_loader(settings, path):
    env = stack_components.settings_env(settings)
    result = subprocess.run([sys.executable, "-m", "casewatch.cli", "load", str(path)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    match = re.search(r"read (\d+), published (\d+), dead-lettered (\d+)", result.stdout)
    assert match, f"no summary line (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result, tuple(int(g) for g in match.groups())


def test_bulk_loader_with_fuzzed_jsonl_and_csv(local_stack, tmp_path):
    settings = local_stack.settings_for()
    ensure_topics(settings)

    lines = collect(jsonl_line(), 400)
    lines += [b"[" * 100_000, b'{"event_id": "' + b"B" * 300_000 + b'"}', b"\xff\xfe\x00", b"null"]
    jsonl = tmp_path / "fuzz.jsonl"
    jsonl.write_bytes(b"\n".join(lines) + b"\n")
    non_blank = sum(1 for line in lines if line.strip())

    result, (read, published, dead) = run_loader(settings, jsonl)
    print(f"\n[fuzz loader jsonl] {len(lines)} lines: read {read}, published {published}, dead-lettered {dead}")
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert read == non_blank
    assert published + dead == read
    assert dead > 0 and result.returncode == 1
    assert published > 0  # the valid events among the fuzz still get through

    header = ["event_type", "event_id", "la_code", "team", "child_ref", "referral_date", "source", "referral_nfa",
              "reasons", "extra"]
    cell = st.one_of(line_text, st.sampled_from(["referral.received", "E06000004", "cp_1", "2025-13-45", "true", "6",
                                                 "ps_" + "0" * 32, "1;2;3", "NaN", "-1e309"]))
    rows = collect(st.lists(cell, min_size=1, max_size=len(header) + 3), 200)
    rows += [["referral.received", str(uuid.uuid4()), "E06000004", "cp_1", "RAWCSV-1", "2026-10-01", "6", "false",
              "", ""]]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    csv_path = tmp_path / "fuzz.csv"
    csv_path.write_text(buf.getvalue(), encoding="utf-8")
    expected_rows = sum(1 for _ in csv.DictReader(io.StringIO(buf.getvalue())))

    result, (read, published, dead) = run_loader(settings, csv_path)
    print(f"[fuzz loader csv] {len(rows)} rows: read {read}, published {published}, dead-lettered {dead}")
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert read == expected_rows
    assert published + dead == read
    assert published >= 1 and dead > 0 and result.returncode == 1


# -- (c) the ingest HTTP API: methods, paths, headers, content types -------------------------------

TOKEN = "fuzz-http-token-0123456789"


@st.composite
def http_request(draw):
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = draw(st.one_of(
        st.sampled_from(["/v1/events"] * 4 + ["/v1/events:batch"] * 3),
        st.sampled_from(["/v1/events", "/v1/events:batch", "/healthz", "/metrics", "/openapi.json", "/docs",
                         "/v1/events/", "/v1/events:batch/../healthz", "/v1/%00", "/v1/events?x=1",
                         "//v1/events", "/v1/events%3Abatch", "/" + "a" * 5000]),
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e, blacklist_characters="#?"),
                max_size=60).map(lambda p: "/" + p)))
    headers = {}
    auth = draw(st.sampled_from(["valid", "none", "wrong", "garbage"]))
    if auth == "valid":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif auth == "wrong":
        headers["Authorization"] = "Bearer not-the-token"
    elif auth == "garbage":
        headers["Authorization"] = draw(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                                                max_size=80))
    ctype = draw(st.one_of(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                            "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                                            "application/json; charset=utf-16", ""]),
                           st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)))
    if ctype:
        headers["Content-Type"] = ctype
    if draw(st.booleans()):
        headers["Content-Length"] = draw(st.sampled_from(["0", "-1", "abc", "99999999999", "5"]))
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.text(alphabet=st.characters(min_codepoint=0x41, max_codepoint=0x5a), min_size=1, max_size=10))
        headers[f"X-{name}"] = draw(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                                            max_size=200))
    body = draw(st.one_of(st.binary(max_size=300),
                          st.just(json.dumps(valid_examples()["referral.received"]).encode()),
                          st.just(b"\xff\xfe{\x00}")))
    return method, path, headers, body


def test_ingest_http_surface_never_answers_5xx(local_stack):
    settings = local_stack.settings_for(ingest_tokens=json.dumps({"fuzzsys": TOKEN}))
    ensure_topics(settings)
    publisher = EventPublisher(settings, source_system="ingest", source="ingest")
    statuses: dict[int, int] = {}
    with TestClient(create_app(settings, publisher=publisher), raise_server_exceptions=False) as client:
        requests = collect(http_request(), 400)
        for method, path, headers, body in requests:
            kwargs = {"headers": headers}
            if method not in ("GET", "HEAD", "OPTIONS"):
                kwargs["content"] = body
            try:
                response = client.request(method, path, **kwargs)
            except Exception as exc:  # noqa: BLE001 - an h11/httpx refusal of a malformed request line
                # The test client refuses some header values and some paths (a path starting "//"
                # reads as a host and port to httpx: InvalidURL) before they reach the app; those
                # requests never test the app, so they are counted apart (and must be few).
                statuses[-1] = statuses.get(-1, 0) + 1
                assert ("LocalProtocolError" in type(exc).__name__ or isinstance(exc, httpx.InvalidURL)
                        or isinstance(exc, (ValueError, UnicodeError))), exc
                continue
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (method, response.status_code)
            if path == "/v1/events" and method == "POST" and headers.get("Authorization") != f"Bearer {TOKEN}":
                assert response.status_code == 401
    publisher.close()
    print(f"\n[fuzz http] {len(requests)} requests, status counts {dict(sorted(statuses.items()))}")
    assert statuses.get(-1, 0) < len(requests) // 10
    assert any(code in statuses for code in (202, 422))  # some requests did reach the handlers
