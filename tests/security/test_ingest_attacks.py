"""Issue 19, the ingest door, attacked from an authenticated source system (findings 2, 4, 6, 7, 9):
each attack must be refused, with nothing of it stored and nothing personal in the answer.

The API runs with a recording Kafka producer and an in-memory event-sources view (what Kafka holds
is read back from the producer); tests/security/test_ingest_kafka_attacks.py repeats the attacks
that need Kafka itself (several workers, restarts) against a real broker.
"""
from __future__ import annotations

import json
import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from casewatch.config import Settings
from schemas import IDENTIFIER_FIELDS
from schemas.examples import valid_examples
from services.ingest.api import create_app
from casewatch.adapters.kafka.event_sources import EventSources
from casewatch.adapters.kafka.publisher import EventPublisher
from tests.unit.services.ingest.test_ingest_api import RecordedFuture, RecordingProducer, metric

KEY = "security-test-key-0123456789abcdef0123456789"
SERVED = "E06000004,E08000025"
TOKENS = {
    "mosaic": {"token": "tok-mosaic-0001", "la_codes": ["E06000004"]},          # one authority
    "lcs": "tok-lcs-0002",                                                      # old format: every served one
    "replay": {"token": "tok-replay-0003", "pre_pseudonymised": True},          # the replay tool
}
MOSAIC = {"Authorization": "Bearer tok-mosaic-0001"}
LCS = {"Authorization": "Bearer tok-lcs-0002"}
REPLAY = {"Authorization": "Bearer tok-replay-0003"}
CHILD = "ZZ-CHILD-7731"


def settings(**kw) -> Settings:
    base = dict(pseudonymisation_key=KEY, ingest_tokens=json.dumps(TOKENS), events_topic="ev", deadletter_topic="dl",
                la_codes=SERVED, fixed_today="2026-11-02", ingest_max_body_bytes=50_000)
    base.update(kw)
    return Settings(**base)


def client_for(s: Settings, producer=None) -> TestClient:
    producer = producer or RecordingProducer()
    publisher = EventPublisher(s, source_system="ingest", source="ingest", producer=producer)
    client = TestClient(create_app(s, publisher=publisher, event_sources=EventSources()))
    client.producer = producer
    return client


@pytest.fixture
def api():
    with client_for(settings()) as client:
        yield client


def event(event_type: str = "assessment.started", **changes) -> dict:
    """A valid example as a case system sends it: raw ids, a fresh event id, no source_system."""
    out = valid_examples()[event_type]
    out.pop("source_system", None)
    out["event_id"] = str(uuid.uuid4())
    for name in IDENTIFIER_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = CHILD if name == "child_ref" else f"LCS-{name}-9"
    out.update(changes)
    return out


def void_of(target: dict, **changes) -> dict:
    return event("event.voided", correction_of=target["event_id"], child_ref=target.get("child_ref"), **changes)


def stored(api) -> tuple[list, list]:
    return api.producer.on("ev"), api.producer.on("dl")


# -- finding 2: authorisation by source ----------------------------------------------------------

def test_a_void_of_another_source_systems_event_is_403_and_nothing_is_stored(api):
    target = event()
    assert api.post("/v1/events", json=target, headers=LCS).status_code == 202
    before = (len(api.producer.on("ev")), len(api.producer.on("dl")))
    r = api.post("/v1/events", json=void_of(target), headers=MOSAIC)
    assert r.status_code == 403
    assert r.json()["results"][0]["errors"][0] == {
        "loc": "correction_of", "type": "correction_other_source",
        "msg": "names an event of another source system; a source may only correct its own events"}
    # an amendment (an ordinary event naming the one it replaces) is a correction too
    r = api.post("/v1/events", json=event(correction_of=target["event_id"]), headers=MOSAIC)
    assert r.status_code == 403
    assert (len(api.producer.on("ev")), len(api.producer.on("dl"))) == before
    assert metric(api, "casewatch_ingest_requests_total", "forbidden") == 2
    # the source that sent it may void it
    assert api.post("/v1/events", json=void_of(target), headers=LCS).status_code == 202


def test_a_write_for_an_authority_outside_the_tokens_list_is_403_for_the_whole_batch(api):
    inside, outside = event(la_code="E06000004"), event(la_code="E08000025")
    r = api.post("/v1/events:batch", json=[inside, outside], headers=MOSAIC)
    assert r.status_code == 403
    assert [(x["index"], x["errors"][0]["type"]) for x in r.json()["results"]] == [(1, "la_code_not_permitted")]
    assert stored(api) == ([], [])
    # the old token format may write every authority the deployment serves
    assert api.post("/v1/events", json=outside, headers=LCS).status_code == 202
    # an authority nobody serves stays a validation error (422, dead-lettered), as before
    r = api.post("/v1/events", json=event(la_code="E09000001"), headers=MOSAIC)
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "la_code"


def test_a_pre_pseudonymised_reference_from_a_case_system_is_403(api):
    known = "ps_" + "0123456789abcdef" * 2
    for name in ("child_ref", "worker_ref"):
        r = api.post("/v1/events", json=event("case.allocated", **{name: known}), headers=LCS)
        assert r.status_code == 403
        assert r.json()["results"][0]["errors"][0]["type"] == "pseudonym_not_permitted"
    assert stored(api) == ([], [])
    # the replay tool's token may send pseudonyms, which are kept as they are
    r = api.post("/v1/events", json=event("case.allocated", child_ref=known), headers=REPLAY)
    assert r.status_code == 202
    [(_, key, value)] = api.producer.on("ev")
    assert key == known.encode() and value["child_ref"] == known


# -- finding 4: pseudonyms scoped by authority ----------------------------------------------------

def test_the_same_case_system_id_in_two_authorities_is_two_children(api):
    a, b = event(la_code="E06000004"), event(la_code="E08000025")
    assert api.post("/v1/events:batch", json=[a, b], headers=LCS).status_code == 202
    keys = [key for _, key, _ in api.producer.on("ev")]
    refs = [value["child_ref"] for _, _, value in api.producer.on("ev")]
    assert len(set(keys)) == 2 and len(set(refs)) == 2
    # and full-width / padded variants of the id stay the same child within one authority
    c = event(la_code="E06000004", child_ref=" \uff3a\uff3a-CHILD-7731 ")
    assert api.post("/v1/events", json=c, headers=LCS).status_code == 202
    assert api.producer.on("ev")[-1][2]["child_ref"] == refs[0]


# -- item 9 of issue 12: a void that cannot take effect ----------------------------------------

def test_a_void_without_child_ref_of_a_childs_event_is_422_with_a_field_message(api):
    target = event()
    assert api.post("/v1/events", json=target, headers=LCS).status_code == 202
    void = void_of(target)
    del void["child_ref"]
    r = api.post("/v1/events", json=void, headers=LCS)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["loc"] == "child_ref" and error["type"] == "missing" and "assessment.started" in error["msg"]
    assert len(api.producer.on("dl")) == 1
    # a workforce snapshot has no child: its void needs none
    snapshot = event("workforce.snapshot")
    assert api.post("/v1/events", json=snapshot, headers=LCS).status_code == 202
    void = void_of(snapshot)
    void.pop("child_ref", None)
    assert api.post("/v1/events", json=void, headers=LCS).status_code == 202


def test_a_correction_of_an_event_never_stored_is_422_and_dead_lettered_for_a_later_replay(api):
    r = api.post("/v1/events", json=void_of(event()), headers=LCS)
    assert r.status_code == 422
    assert r.json()["errors"][0]["type"] == "correction_target_unknown"
    [(_, _, letter)] = api.producer.on("dl")
    assert uuid.UUID(letter["payload"]["correction_of"])  # kept: the dead letter can be replayed


# -- finding 6: invalid Unicode --------------------------------------------------------------------

@pytest.mark.parametrize("field", ["child_ref", "worker_ref", "team", "start_date", "(key)"])
def test_a_lone_surrogate_is_422_with_a_field_message_and_a_dead_letter_never_500(api, field, caplog):
    caplog.set_level(logging.DEBUG)
    raw = event("case.allocated")
    if field == "(key)":
        raw["note\ud800"] = "x"
    else:
        raw[field] = "W-1\ud800"
    body = json.dumps(raw)  # ensure_ascii: the surrogate travels as the escape \ud800, valid JSON text
    assert "\\ud800" in body
    r = api.post("/v1/events", content=body.encode(), headers=dict(LCS, **{"Content-Type": "application/json"}))
    assert r.status_code == 422
    errors = r.json()["errors"]
    expected_loc = "(unknown field #15)" if field == "(key)" else field
    assert {"loc": expected_loc, "type": "unicode_invalid",
            "msg": "contains invalid Unicode (a lone UTF-16 surrogate); send UTF-8 text"} in errors
    [(_, _, letter)] = api.producer.on("dl")
    assert letter["errors"] == errors
    assert "W-1" not in json.dumps(letter) and "note" not in json.dumps(letter)
    assert metric(api, "casewatch_ingest_events_total", "rejected") == 1
    # in a batch, only that record is rejected
    r = api.post("/v1/events:batch", content=f"[{body}, {json.dumps(event())}]".encode(), headers=LCS)
    assert r.status_code == 207


# -- finding 7: implausible dates ------------------------------------------------------------------

@pytest.mark.parametrize("when", ["9999-12-31", "1066-10-14", "2027-11-03"])
def test_an_implausible_date_is_422_with_its_reason_and_dead_lettered(api, when):
    r = api.post("/v1/events", json=event(start_date=when, effective_date=None), headers=LCS)
    assert r.status_code == 422
    assert {"loc": "start_date", "type": "date_range",
            "msg": "must be a plausible date, from 1990-01-01 to 2027-11-02"} in r.json()["errors"]
    assert len(api.producer.on("dl")) == 1
    # the range is configurable; the edge of the default range is accepted
    r = api.post("/v1/events", json=event(start_date="1990-01-01", effective_date=None), headers=LCS)
    assert r.status_code == 202


def test_the_plausible_range_is_configurable():
    with client_for(settings(earliest_event_date="2020-01-01", latest_event_days_ahead=0)) as api:
        assert api.post("/v1/events", json=event(start_date="2019-12-31", effective_date=None),
                        headers=LCS).status_code == 422
        assert api.post("/v1/events", json=event(start_date="2026-11-03", effective_date=None),
                        headers=LCS).status_code == 422
        assert api.post("/v1/events", json=event(start_date="2026-11-02", effective_date=None),
                        headers=LCS).status_code == 202


# -- body limits -----------------------------------------------------------------------------------

def test_deep_nesting_is_422_and_dead_lettered_without_content_and_large_bodies_413(api):
    for body in (b"[" * 40_000, b'{"a":' * 20 + b"1" + b"}" * 20):
        r = api.post("/v1/events:batch", content=body, headers=LCS)
        assert r.status_code == 422
        assert r.json()["results"][0]["errors"][0]["type"] == "json_too_deep"
    assert all(set(letter["payload"]) == {"undecodable_bytes", "hmac_sha256"} for _, _, letter in api.producer.on("dl"))
    assert api.post("/v1/events:batch", content=b"[" + b" " * 60_000 + b"]", headers=LCS).status_code == 413


# -- finding 9: the 503 says what is true ------------------------------------------------------------

class FailingFuture(RecordedFuture):
    is_done = True

    def get(self, timeout=None):
        from kafka.errors import KafkaTimeoutError
        raise KafkaTimeoutError("no ack")

    def succeeded(self):
        return False


class HalfProducer(RecordingProducer):
    """Acknowledges the first ``ok`` records and none after."""

    def __init__(self, ok: int):
        super().__init__()
        self.ok = ok

    def send(self, topic, key=None, value=None):
        super().send(topic, key, value)
        return RecordedFuture() if len(self.records) <= self.ok else FailingFuture()


def test_the_503_says_how_many_records_were_stored_not_that_nothing_was():
    # 3 events = 6 records (each event and its event-sources record): the first event is stored
    with client_for(settings(), HalfProducer(ok=2)) as api:
        r = api.post("/v1/events:batch", json=[event(), event(), event()], headers=LCS)
    assert r.status_code == 503 and r.headers["retry-after"]
    body = r.json()
    assert "nothing was accepted" not in body["detail"]
    assert (body["acknowledged"], body["records"]) == (1, 3)
    assert body["detail"].startswith("Kafka did not acknowledge every record in time: 1 of the 3 record(s)")
    with client_for(settings(), HalfProducer(ok=0)) as api:
        body = api.post("/v1/events", json=event(), headers=LCS).json()
    assert (body["acknowledged"], body["records"]) == (0, 1)


def test_a_batch_may_correct_an_event_sent_earlier_in_it_but_not_another_sources(api):
    target = event()
    r = api.post("/v1/events:batch", json=[target, void_of(target)], headers=LCS)
    assert r.status_code == 202, r.text
    other = event()
    assert api.post("/v1/events", json=other, headers=MOSAIC).status_code == 202
    r = api.post("/v1/events:batch", json=[event(), void_of(other)], headers=LCS)
    assert r.status_code == 403 and [x["index"] for x in r.json()["results"]] == [1]


def test_re_using_another_sources_event_id_earlier_in_a_batch_gives_no_right_to_void_it(api):
    victim = event()
    assert api.post("/v1/events", json=victim, headers=MOSAIC).status_code == 202
    impostor = event(event_id=victim["event_id"])
    r = api.post("/v1/events:batch", json=[impostor, void_of(victim)], headers=LCS)
    assert r.status_code == 403
    assert [(x["index"], x["errors"][0]["type"]) for x in r.json()["results"]] == [
        (0, "event_id_other_source"), (1, "correction_other_source")]


def test_an_event_re_using_another_sources_event_id_is_403(api):
    victim = event()
    assert api.post("/v1/events", json=victim, headers=MOSAIC).status_code == 202
    r = api.post("/v1/events", json=event(event_id=victim["event_id"]), headers=LCS)
    assert r.status_code == 403 and r.json()["results"][0]["errors"][0]["type"] == "event_id_other_source"
    # the same source re-sending its event (a retry) is fine: the engine de-duplicates it
    assert api.post("/v1/events", json=victim, headers=MOSAIC).status_code == 202
