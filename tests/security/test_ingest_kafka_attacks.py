"""Issue 19 findings 2 and 4 against a real Kafka broker: two ingest workers (two apps, each with
its own producer and its own view of the event-sources topic) and a restarted one.

* A source's event stored through worker 1 cannot be voided by another source through worker 2
  (403), however the requests are spread; its own source can, through any worker, also after a
  restart (the compacted event-sources topic is the shared memory, not the process).
* The same case-system id in two authorities becomes two children on the events topic (two keys,
  two pseudonyms), and a real engine worker counts two first referrals, not a re-referral.
"""
from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from schemas import parse_wire
from schemas.examples import valid_examples
from services.ingest.api import create_app
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics
from tests.support.kafka_topics import read_topic

pytestmark = pytest.mark.integration

KEY = "security-kafka-key-0123456789abcdef0123456789"
TOKENS = {"mosaic": {"token": "tok-m-kafka", "la_codes": ["E06000004"]},
          "lcs": {"token": "tok-l-kafka", "la_codes": ["E06000004", "E08000025"]}}
MOSAIC = {"Authorization": "Bearer tok-m-kafka"}
LCS = {"Authorization": "Bearer tok-l-kafka"}


def event(event_type: str = "assessment.started", **changes) -> dict:
    out = valid_examples()[event_type]
    out.pop("source_system", None)
    out.update(event_id=str(uuid.uuid4()), child_ref="ZZ-CHILD-7731", assessment_ref="A-1", referral_ref="R-1")
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def worker(settings):
    publisher = EventPublisher(settings, source_system="ingest", source="ingest")
    return TestClient(create_app(settings, publisher=publisher))


def test_cross_source_corrections_are_refused_across_workers_and_restarts(kafka_bootstrap):
    s = _settings(kafka_bootstrap)
    ensure_topics(s)
    target = event()
    with worker(s) as one, worker(s) as two:
        assert one.post("/v1/events", json=target, headers=MOSAIC).status_code == 202
        void = event("event.voided", correction_of=target["event_id"], assessment_ref=None, referral_ref=None)
        r = two.post("/v1/events", json=void, headers=LCS)  # another source, another worker
        assert r.status_code == 403, r.text
        assert r.json()["results"][0]["errors"][0]["type"] == "correction_other_source"
    # a worker started afterwards knows the event's source from the topic alone
    amendment = event(correction_of=target["event_id"], start_date="2025-06-04", effective_date=None)
    with worker(s) as three:
        assert three.post("/v1/events", json=amendment, headers=LCS).status_code == 403
        assert three.post("/v1/events", json=amendment, headers=MOSAIC).status_code == 202
        assert three.post("/v1/events", json=void, headers=MOSAIC).status_code == 202
    stored = [parse_wire(v) for _, v in read_topic(s, s.events_topic)]
    assert [(e.event_type, e.source_system) for e in stored] == [
        ("assessment.started", "mosaic"), ("assessment.started", "mosaic"), ("event.voided", "mosaic")]
    assert read_topic(s, s.deadletter_topic) == []  # refusals are not dead letters: nothing was stored
    sources = {k.decode(): json.loads(v) for k, v in read_topic(s, s.events_sources_topic)}
    assert sources[target["event_id"]] == {"source_system": "mosaic", "event_type": "assessment.started"}
    assert all(set(v) == {"source_system", "event_type"} for v in sources.values())  # nothing else kept


def test_one_case_system_id_in_two_authorities_is_two_children_on_the_events_topic(kafka_bootstrap):
    s = _settings(kafka_bootstrap)
    ensure_topics(s)
    with worker(s) as one:
        for la_code in ("E06000004", "E08000025"):
            assert one.post("/v1/events", json=event(la_code=la_code), headers=LCS).status_code == 202
    records = read_topic(s, s.events_topic)
    events = [parse_wire(v) for _, v in records]
    assert len({e.child_ref for e in events}) == 2
    assert {k.decode() for k, _ in records} == {e.child_ref for e in events}
    assert sorted(e.la_code for e in events) == ["E06000004", "E08000025"]


def _settings(kafka_bootstrap: str):
    from casewatch.config import Settings
    tag = uuid.uuid4().hex[:10]
    return Settings(kafka_bootstrap=kafka_bootstrap, events_topic=f"sec-ev-{tag}", deadletter_topic=f"sec-dl-{tag}",
                    partitions=3, pseudonymisation_key=KEY, ingest_tokens=json.dumps(TOKENS),
                    la_codes="E06000004,E08000025", fixed_today="2026-11-02")


def test_one_id_in_two_authorities_is_two_children_for_the_engine(local_stack):
    """ingest -> Kafka -> a real engine worker: ZZ-CHILD-7731 referred in E06000004 and, three
    months later, in E08000025 is two first referrals, not a re-referral (the issue's spurious
    re-referral). A third referral in E06000004 is a re-referral of that authority's child (the
    check can fail)."""
    from tests.support.engine_io import sample_sum, scrape, wait_for_figure
    s = local_stack.settings_for(pseudonymisation_key=KEY, ingest_tokens=json.dumps(TOKENS),
                                 la_codes="E06000004,E08000025", fixed_today="2025-07-01")
    ensure_topics(s)

    def referral(la_code: str, when: str) -> dict:
        return event("referral.received", la_code=la_code, referral_date=when, effective_date=when,
                     occurred_at=None, recorded_at=None, collection_year=None, assessment_ref=None,
                     referral_ref=None, from_contact_ref=None, team="cp_1")

    with worker(s) as one:
        for la_code, when in (("E06000004", "2025-03-12"), ("E08000025", "2025-06-12")):
            r = one.post("/v1/events", json=referral(la_code, when), headers=LCS)
            assert r.status_code == 202, r.text
    local_stack.start_engine(s)
    try:
        wait_for_figure(s, "casewatch_events_processed_total", lambda v: v == 2.0, timeout=180,
                        event_type="referral.received")
        text = scrape(s)
        assert sample_sum(text, "casewatch_referrals", window="12m", la="E06000004") == 1.0
        assert sample_sum(text, "casewatch_referrals", window="12m", la="E08000025") == 1.0
        assert sample_sum(text, "casewatch_rereferrals", window="12m") == 0.0
        with worker(s) as one:
            r = one.post("/v1/events", json=referral("E06000004", "2025-06-20"), headers=LCS)
            assert r.status_code == 202, r.text
        wait_for_figure(s, "casewatch_rereferrals", lambda v: v == 1.0, timeout=120, window="12m", la="E06000004")
        assert sample_sum(scrape(s), "casewatch_rereferrals", window="12m", la="E08000025") == 0.0
    finally:
        local_stack.stop("engine")
