"""The ingest API against its own contract: schemathesis (an outside contract fuzzer) reads
``/openapi.json`` and sends the documented examples and a bounded number of generated requests,
valid and invalid, with a valid bearer token, over HTTP to the API (uvicorn) publishing to a real Kafka broker. No
answer may be a server error, every answer's status code, content type and body must be the ones
the document declares, and every write without a valid token is 401."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest
import uvicorn
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig

from casewatch.config import Settings
from services.ingest.api import create_app
from casewatch.adapters.kafka.event_sources import EventSources
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics
from tests.support.kafka_topics import read_topic

pytestmark = pytest.mark.integration

KEY = "contract-test-key-0123456789abcdef0123456789"
TOKEN = "contract-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance, st_checks.content_type_conformance,
          st_checks.response_schema_conformance, st_checks.negative_data_rejection]

# schemathesis 4.32's requests transport counts open connections through urllib3's pool container,
# which the urllib3-future installed under the name ``urllib3`` (by grafana-client's niquests) lacks.
# The count only decides whether a request dropped on a stale keep-alive connection is sent once more;
# answered as 0 it always is, which the API allows (event_id makes a resend safe).
from schemathesis.transport import requests as _st_requests  # noqa: E402

_st_requests._count_opened_connections = lambda session: 0


def contract_settings(kafka_bootstrap: str, tag: str = "") -> Settings:
    return Settings(kafka_bootstrap=kafka_bootstrap, events_topic=f"contract-ev-{tag}",
                    deadletter_topic=f"contract-dl-{tag}", partitions=3, pseudonymisation_key=KEY,
                    la_codes="E06000004,E06000005", ingest_tokens=json.dumps({"fuzzsys": TOKEN}),
                    ingest_max_batch=20, ingest_max_body_bytes=100_000)


# The document is read when this module is collected (schemathesis parametrizes the test by its
# operations), before the session's Kafka is up: from an app with the same settings but for the
# broker, which /openapi.json does not depend on (the last test checks that it is the one served).
DOCUMENT = create_app(contract_settings("127.0.0.1:9"), event_sources=EventSources()).openapi()
# 413 is the contract's answer to a batch over its maxItems (and a body over the byte limit). The
# examples and fuzzing phases run; the coverage phase (every boundary of every one of the 29 event
# schemas) takes over 5 minutes on this machine class, so it is left out of the bounded run.
CONFIG = SchemathesisConfig.from_dict({
    "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 413, 422]}},
    "phases": {"coverage": {"enabled": False}}})
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
SCHEMA.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def kafka_settings(kafka_bootstrap) -> Settings:
    s = contract_settings(kafka_bootstrap, uuid.uuid4().hex[:10])
    ensure_topics(s)
    return s


@contextmanager
def served(app) -> Iterator[str]:
    """``app`` behind a real HTTP server (uvicorn, a thread of this process) on a free loopback
    port, its lifespan run once; yields the base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="ingest-under-contract-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the ingest API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="module")
def ingest_app(kafka_settings):
    publisher = EventPublisher(kafka_settings, source_system="ingest", source="ingest")
    return create_app(kafka_settings, publisher=publisher)


@pytest.fixture(scope="module")
def ingest_url(ingest_app) -> Iterator[str]:
    with served(ingest_app) as url:
        yield url


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_contract(case, ingest_url):
    response = case.call(base_url=ingest_url, headers=AUTH)
    case.validate_response(response, checks=CHECKS)
    if case.operation.method.upper() == "POST":   # every write needs the token
        assert case.call(base_url=ingest_url, headers={"Authorization": "Bearer not-the-token"}).status_code == 401


def test_the_documented_examples_were_stored_and_the_rejected_ones_dead_lettered(kafka_settings, ingest_url):
    """After the fuzzing (same module, so the same topics): the documented examples were sent
    (schemathesis' example phase) and stored in Kafka, and invalid requests left dead letters with
    reasons. Sent again here, so this test also stands alone."""
    with httpx.Client(base_url=ingest_url) as client:
        document = client.get("/openapi.json").json()
        assert document == json.loads(json.dumps(DOCUMENT))   # what was fuzzed is what is served
        examples = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["examples"]
        for name, example in examples.items():
            assert client.post("/v1/events", json=example["value"], headers=AUTH).status_code == 202, name
        assert client.post("/v1/events", json={"event_type": "contact.received"}, headers=AUTH).status_code == 422
    stored = read_topic(kafka_settings, kafka_settings.events_topic)
    stored_ids = {json.loads(value)["event_id"] for _, value in stored}
    assert {e["value"]["event_id"] for e in examples.values()} <= stored_ids
    letters = [json.loads(value) for _, value in read_topic(kafka_settings,
                                                            kafka_settings.deadletter_topic)]
    assert letters and all(letter["errors"] for letter in letters)
