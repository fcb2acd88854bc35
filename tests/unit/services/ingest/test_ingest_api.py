"""The ingest API's behaviour with a recording Kafka producer (and, for 503, a real producer whose
broker is unreachable)."""
from __future__ import annotations

import json
import logging
import re
import socket

import pytest
from fastapi.testclient import TestClient

from casewatch.config import Settings
from schemas import IDENTIFIER_FIELDS
from schemas.examples import valid_examples
from services.ingest.api import create_app
from casewatch.adapters.kafka.event_sources import EventSources
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.edge.pseudonymise import Pseudonymiser

KEY = "unit-test-key-0123456789abcdef0123456789"
TOKENS = {"mosaic": "token-mosaic-123", "lcs": "token-lcs-456"}
RAW_CHILD = "LCS-004711"
RAW_PLAN = "CPP-000042"


def pseudonym(value: str, la_code: str = "E06000004") -> str:
    return Pseudonymiser(KEY.encode()).pseudonym(value, la_code)


class RecordedFuture:
    def __init__(self, metadata="ok"):
        self.metadata = metadata

    def get(self, timeout=None):
        return self.metadata

    def add_callback(self, fn):
        fn(self.metadata)
        return self

    def add_errback(self, fn):
        return self


class RecordingProducer:
    def __init__(self):
        self.records: list[tuple[str, bytes | None, dict]] = []

    def send(self, topic, key=None, value=None):
        self.records.append((topic, key, json.loads(value)))
        return RecordedFuture()

    def partitions_for(self, topic):
        return {0, 1}

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        pass

    def on(self, topic):
        return [r for r in self.records if r[0] == topic]


def settings(**kw) -> Settings:
    base = dict(pseudonymisation_key=KEY, ingest_tokens=json.dumps(TOKENS), events_topic="ev", deadletter_topic="dl",
                ingest_max_batch=5, ingest_max_body_bytes=20_000)
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def api():
    s = settings()
    producer = RecordingProducer()
    publisher = EventPublisher(s, source_system="ingest", source="ingest", producer=producer)
    with TestClient(create_app(s, publisher=publisher, event_sources=EventSources())) as client:
        client.producer = producer
        yield client


def raw_event(event_type: str = "cp_plan.started", **changes) -> dict:
    event = valid_examples()[event_type]
    if "child_ref" in event:
        event["child_ref"] = RAW_CHILD
    if "plan_ref" in event:
        event["plan_ref"] = RAW_PLAN
    for name in IDENTIFIER_FIELDS:  # a case system sends its own ids, never pseudonyms
        if name not in ("child_ref", "plan_ref") and isinstance(event.get(name), str):
            event[name] = f"LCS-{name}-1"
    event.pop("source_system", None)
    event.update(changes)
    return event


AUTH = {"Authorization": "Bearer token-mosaic-123"}


def metric(client, name: str, outcome: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'{name}{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{{outcome={outcome}}} not exposed")


def test_no_or_wrong_token_is_401(api):
    assert api.post("/v1/events", json=raw_event()).status_code == 401
    r = api.post("/v1/events", json=raw_event(), headers={"Authorization": "Bearer token-mosaic-12"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert api.post("/v1/events", json=raw_event(), headers={"Authorization": "Basic token-mosaic-123"}).status_code == 401
    assert api.producer.records == []
    assert metric(api, "casewatch_ingest_requests_total", "unauthorized") == 3


def test_a_valid_event_is_stored_pseudonymised_and_keyed_by_child(api):
    r = api.post("/v1/events", json=raw_event(), headers={"Authorization": "Bearer token-lcs-456"})
    assert r.status_code == 202
    assert r.json() == {"status": "accepted", "event_id": raw_event()["event_id"]}
    [(topic, key, value)] = api.producer.on("ev")
    assert key == pseudonym(RAW_CHILD).encode()
    # and the event-sources record (event id -> source system and type; no reference)
    assert api.producer.on("ev.sources") == [("ev.sources", raw_event()["event_id"].encode(),
                                               {"source_system": "lcs", "event_type": "cp_plan.started"})]
    assert value["child_ref"] == pseudonym(RAW_CHILD) and value["plan_ref"] == pseudonym(RAW_PLAN)
    assert value["source_system"] == "lcs"  # from the token, whatever the body says
    assert RAW_CHILD not in json.dumps(value) and RAW_PLAN not in json.dumps(value)
    assert metric(api, "casewatch_ingest_events_total", "accepted") == 1


def test_workforce_snapshots_are_keyed_by_authority_and_team(api):
    r = api.post("/v1/events", json=raw_event("workforce.snapshot"), headers=AUTH)
    assert r.status_code == 202
    assert api.producer.records[0][1] == b"wf:E06000004:cp_1"


def test_an_invalid_event_is_422_field_level_and_dead_lettered(api, caplog):
    caplog.set_level(logging.DEBUG)
    bad = raw_event(initial_category="NEGLECT", previous_plans="two", notes="child seen at home by Jane")
    r = api.post("/v1/events", json=bad, headers=AUTH)
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == "rejected"
    assert [e["loc"] for e in body["errors"]] == ["initial_category", "previous_plans", "(unknown field #15)"]
    assert api.producer.on("ev") == []
    [(topic, key, letter)] = api.producer.on("dl")
    assert key == pseudonym(RAW_CHILD).encode()
    assert set(letter) == {"payload", "errors", "source", "received_at", "stage"}
    assert letter["errors"] == body["errors"]
    assert (letter["source"], letter["stage"]) == ("ingest", "validation")
    assert letter["payload"]["child_ref"] == pseudonym(RAW_CHILD)
    # not a code of any list: it might be anything, so it is not kept
    assert letter["payload"]["initial_category"] == "(redacted)"
    assert letter["payload"]["previous_plans"] == "(redacted)"
    text = json.dumps(letter) + json.dumps(body) + caplog.text
    for secret in (RAW_CHILD, RAW_PLAN, "Jane", "notes"):
        assert secret not in text


def test_a_body_that_is_not_json_is_422_and_dead_lettered_as_an_opaque_rendering(api):
    r = api.post("/v1/events", content=b'{"child_ref": "LCS-004711", ', headers=AUTH)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"loc": "", "msg": "the body is not valid UTF-8 JSON", "type": "json_invalid"}]
    [(_, key, letter)] = api.producer.on("dl")
    assert key is None and letter["stage"] == "decode"
    assert set(letter["payload"]) == {"undecodable_bytes", "hmac_sha256"}
    assert RAW_CHILD not in json.dumps(letter)


def test_a_batch_publishes_the_valid_ones_and_lists_each_index(api):
    batch = [raw_event(), raw_event("icpc.held", child_participation="PN9"), "just text", raw_event("lac.ended")]
    r = api.post("/v1/events:batch", json=batch, headers=AUTH)
    assert r.status_code == 207
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert [(x["index"], x["status"]) for x in body["results"]] == [
        (0, "accepted"), (1, "rejected"), (2, "rejected"), (3, "accepted")]
    assert body["results"][1]["errors"][0]["loc"] == "child_participation"
    assert body["results"][2]["errors"] == [{"loc": "", "msg": "an event must be a JSON object", "type": "model_type"}]
    assert [v["event_type"] for _, _, v in api.producer.on("ev")] == ["cp_plan.started", "lac.ended"]
    assert len(api.producer.on("dl")) == 2
    assert metric(api, "casewatch_ingest_requests_total", "partially_accepted") == 1
    assert metric(api, "casewatch_ingest_events_total", "rejected") == 2


def test_batch_all_valid_is_202_and_all_invalid_is_422(api):
    assert api.post("/v1/events:batch", json=[raw_event(), raw_event("lac.ended")], headers=AUTH).status_code == 202
    assert api.post("/v1/events:batch", json=[{}, 5], headers=AUTH).status_code == 422
    r = api.post("/v1/events:batch", json=raw_event(), headers=AUTH)
    assert r.status_code == 422 and r.json()["results"][0]["errors"][0]["type"] == "list_type"


def test_too_many_events_or_too_many_bytes_is_413(api):
    assert api.post("/v1/events:batch", json=[raw_event()] * 6, headers=AUTH).status_code == 413
    r = api.post("/v1/events", content=b"[" + b"1," * 15_000 + b"1]", headers=AUTH)
    assert r.status_code == 413
    assert api.producer.records == []
    assert metric(api, "casewatch_ingest_requests_total", "too_large") == 2


def test_unconfigured_team_is_rejected(api):
    r = api.post("/v1/events", json=raw_event(team="cp_7"), headers=AUTH)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "team"


def _referenced(html: str) -> list[str]:
    """Every URL a page loads: src/href attributes and the spec URL given to Swagger UI / ReDoc."""
    return (re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
            + re.findall(r'spec-url="([^"]+)"', html))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_app_itself(api, page):
    """/docs (Swagger UI) and /redoc work with no network: the page and every script, stylesheet
    and icon it loads come from the app; nothing names another host (no CDN, no Google fonts, no
    call to the public Swagger validator)."""
    r = api.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html) == []
    urls = _referenced(html)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts and "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), url
        loaded = api.get(url)
        assert loaded.status_code == 200, url
        assert len(loaded.content) > 100, url
    if page == "/docs":
        assert '"validatorUrl": null' in html
        assert any(u.endswith(".css") for u in urls)


def test_openapi_declares_every_event_type_its_answers_and_the_bearer_scheme(api):
    document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    union = schemas["IngestEvent"]
    mapping = union["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(valid_examples())
    assert [ref["$ref"] for ref in union["oneOf"]] and set(r["$ref"] for r in union["oneOf"]) == set(mapping.values())
    assert schemas["IngestBatch"]["maxItems"] == 5 and schemas["IngestBatch"]["items"] == {
        "$ref": "#/components/schemas/IngestEvent"}
    [(name, scheme)] = document["components"]["securitySchemes"].items()
    assert (name, scheme["type"], scheme["scheme"]) == ("sourceSystemToken", "http", "bearer")
    for path, codes in (("/v1/events", {"202", "401", "403", "413", "422", "503"}),
                        ("/v1/events:batch", {"202", "207", "401", "403", "413", "422", "503"})):
        operation = document["paths"][path]["post"]
        assert operation["security"] == [{"sourceSystemToken": []}]
        assert set(operation["responses"]) == codes
        for code, answer in operation["responses"].items():   # every answer has a declared body
            assert answer["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/"), code
        body = operation["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"] == ("#/components/schemas/IngestEvent" if path == "/v1/events"
                                          else "#/components/schemas/IngestBatch")
    # a source system sends its own identifiers: the schema does not demand pseudonyms
    child_ref = schemas["CpPlanStarted"]["properties"]["child_ref"]
    assert "pattern" not in json.dumps(child_ref) and "child_ref" in schemas["CpPlanStarted"]["required"]
    assert schemas["WorkforceSnapshot"]["properties"]["child_ref"]["type"] == "null"


def test_every_documented_example_is_valid_by_its_schema_and_accepted(api):
    """The examples of /openapi.json are true: each one validates against the document's own
    schema (jsonschema, draft 2020-12) and the API stores it (202), in the document's order."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = api.get("/openapi.json").json()
    registry = Registry().with_resource("urn:ingest", Resource.from_contents(
        {"components": document["components"]}, default_specification=DRAFT202012))
    validator = Draft202012Validator({"$ref": "urn:ingest#/components/schemas/IngestEvent"}, registry=registry)
    examples = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert sorted(examples) == sorted(valid_examples())
    for name, example in examples.items():
        assert list(validator.iter_errors(example["value"])) == [], name
        r = api.post("/v1/events", json=example["value"], headers=AUTH)
        assert r.status_code == 202, (name, r.json())
    assert api.producer.on("dl") == []
    batch = document["paths"]["/v1/events:batch"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    for example in batch.values():
        assert api.post("/v1/events:batch", json=example["value"], headers=AUTH).status_code == 202


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kafka_unreachable_is_503_with_retry_after_and_nothing_claimed_stored():
    s = settings(kafka_bootstrap=f"127.0.0.1:{closed_port()}")
    publisher = EventPublisher(s, source_system="ingest", source="ingest", max_block_ms=300,
                               delivery_timeout_ms=1000, ack_timeout=1.0)
    with TestClient(create_app(s, publisher=publisher)) as client:
        r = client.post("/v1/events", json=raw_event(), headers=AUTH)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["status"] == "unavailable"
        r = client.post("/v1/events:batch", json=[raw_event(), {}], headers=AUTH)
        assert r.status_code == 503
        r = client.post("/v1/events", json={"event_type": "nonsense"}, headers=AUTH)
        assert r.status_code == 503  # a rejection is only reported once its dead letter is stored
        assert client.get("/healthz").status_code == 503
        assert metric(client, "casewatch_ingest_requests_total", "unavailable") == 3
        assert metric(client, "casewatch_ingest_events_total", "accepted") == 0


def test_read_endpoints_can_live_on_a_listener_of_their_own():
    """With a read port configured, /metrics and /healthz answer only on the read listener (a
    monitoring interface) and the write API's listener does not serve them; writes stay put."""
    s = settings(ingest_read_port=1)  # the port itself is only used by serve(); the apps are what is tested
    producer = RecordingProducer()
    publisher = EventPublisher(s, source_system="ingest", source="ingest", producer=producer)
    app = create_app(s, publisher=publisher, event_sources=EventSources())
    with TestClient(app) as writer, TestClient(app.state.read_app) as reader:
        assert writer.get("/metrics").status_code == 404
        assert writer.get("/healthz").status_code == 404
        assert reader.get("/metrics").status_code == 200
        assert b"casewatch_ingest" in reader.get("/metrics").content
        assert reader.post("/v1/events", json={}).status_code in (404, 405)
        # the contract stays with the operations it describes, on the write listener
        for page in ("/docs", "/redoc", "/openapi.json"):
            assert writer.get(page).status_code == 200 and reader.get(page).status_code == 404
        assert sorted(writer.get("/openapi.json").json()["paths"]) == ["/v1/events", "/v1/events:batch"]
        headers = {"Authorization": f"Bearer {TOKENS['mosaic']}"}
        assert writer.post("/v1/events", json=raw_event(), headers=headers).status_code == 202


def test_read_endpoints_are_on_the_write_listener_by_default(api):
    assert api.get("/metrics").status_code == 200
