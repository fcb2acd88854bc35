"""Data protection end to end: raw identifiers never leave the ingest edge.

A known set of raw case-system identifiers (child, worker, episode, plan ids with the distinctive
prefix ``RAWID``) and names (in fields no event has) goes through the real ingest API (in-process,
real publisher), the bulk loader (a subprocess) and a real engine worker. Then everything a person
or another system could read is scanned: the engine's and ingest's HTTP endpoints (including error
responses), every service log under the stack's state dir and the in-process log records, the
loader's output, the dead-letter topic, and an alert mail rendered by the notifier for an alert
whose labels and annotations carry such ids. No raw identifier anywhere; no pseudonymised reference
(``ps_`` + 32 hex) on /metrics, in logs, mails or HTTP responses (the dead-letter topic may keep
pseudonyms: that is how a dead letter is replayed).
"""
from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
import uuid

from fastapi.testclient import TestClient


from casewatch.stack import components as stack_components
from schemas.examples import valid_examples
from services.ingest.api import create_app
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics
from services.notifier.mail import compose, sanitise_group
from services.notifier.rota import OnCall
from tests.conftest import REPO
from tests.support.kafka_topics import read_topic as read_topic_records
from tests.support.engine_io import sample_sum, scrape

TODAY = "2025-10-01"
TOKEN = "dp-token-0123456789abcdef"
PSEUDONYM = re.compile(r"ps_[0-9a-f]{32}")
CHILDREN = [f"RAWID-CHILD-{n:09d}" for n in range(1, 6)]
WORKERS = [f"RAWID-WORKER-{n:09d}" for n in range(1, 3)]
EPISODES = [f"RAWID-EPISODE-{n:09d}" for n in range(1, 3)]
PLANS = [f"RAWID-PLAN-{n:09d}" for n in range(1, 3)]
NAMES = ["Rawname Janet Rawlinson", "Rawname Tobias Quillfeather"]
RAW = CHILDREN + WORKERS + EPISODES + PLANS + NAMES


def raw_event(event_type: str, child: str, **extra) -> dict:
    event = dict(valid_examples()[event_type], event_id=str(uuid.uuid4()), child_ref=child)
    event.pop("source_system", None)
    for name in ("episode_ref", "worker_ref", "referral_ref", "assessment_ref", "s47_ref", "from_contact_ref",
                 "plan_ref"):  # a case system sends raw ids (a ps_ reference from it is refused, 403)
        if name in event:
            event[name] = EPISODES[1]
    event.update(extra)
    return event


def accepted_events() -> list[dict]:
    """Valid events carrying raw identifiers in the identifier fields (pseudonymised at the edge)."""
    return [
        raw_event("referral.received", CHILDREN[0], episode_ref=EPISODES[0], from_contact_ref=CHILDREN[1]),
        raw_event("case.allocated", CHILDREN[0], worker_ref=WORKERS[0]),
        raw_event("cp_plan.started", CHILDREN[1], plan_ref=PLANS[0], episode_ref=EPISODES[1]),
        raw_event("cp_review.held", CHILDREN[1], plan_ref=PLANS[0]),
    ]


def rejected_events() -> list[dict]:
    """Invalid events holding raw identifiers and names where no identifier belongs."""
    return [
        raw_event("referral.received", CHILDREN[2], child_name=NAMES[0]),                 # unknown field
        raw_event("referral.received", CHILDREN[3], team=CHILDREN[3]),                     # id as a team
        raw_event("case.allocated", CHILDREN[4], worker_ref=WORKERS[1], notes=NAMES[1]),  # free text
        raw_event("cp_plan.started", CHILDREN[4], plan_ref=PLANS[1], initial_category=NAMES[1]),
        {"event_id": CHILDREN[2], "event_type": NAMES[0], "la_code": WORKERS[1]},          # ids in the envelope
    ]


def assert_clean(where: str, text: str, pseudonyms_allowed: bool = False) -> None:
    for value in RAW:
        assert value not in text, f"a raw identifier or name appears in {where}"
        assert value.lower() not in text.lower(), f"a raw identifier or name appears (case changed) in {where}"
    if not pseudonyms_allowed:
        assert not PSEUDONYM.search(text), f"a pseudonymised reference appears in {where}"


def read_topic(settings, topic: str) -> list[bytes]:
    return [value for _, value in read_topic_records(settings, topic)]


def test_no_raw_identifier_or_pseudonym_escapes(local_stack, tmp_path, caplog):
    caplog.set_level(logging.INFO)  # the level the services run at (ingest: basicConfig INFO)
    settings = local_stack.settings_for(fixed_today=TODAY, ingest_tokens=json.dumps({"dpsys": TOKEN}))
    ensure_topics(settings)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    http_texts: list[tuple[str, str]] = []

    # -- the ingest API ------------------------------------------------------------------------
    publisher = EventPublisher(settings, source_system="ingest", source="ingest")
    with TestClient(create_app(settings, publisher=publisher), raise_server_exceptions=False) as client:
        good, bad = accepted_events(), rejected_events()
        for event in good:
            r = client.post("/v1/events", json=event, headers=auth)
            assert r.status_code == 202, r.text
            http_texts.append(("POST /v1/events (202)", r.text))
        for event in bad:
            r = client.post("/v1/events", json=event, headers=auth)
            assert r.status_code == 422
            http_texts.append(("POST /v1/events (422)", r.text))
        r = client.post("/v1/events:batch", json=[accepted_events()[0], *rejected_events()[:2]], headers=auth)
        assert r.status_code == 207
        http_texts.append(("POST /v1/events:batch (207)", r.text))
        # Not valid JSON, holding an id; a body that is not an object.
        for body in (f'{{"child_ref": "{CHILDREN[0]}"'.encode(), json.dumps([CHILDREN[0]]).encode()):
            r = client.post("/v1/events", content=body, headers={**auth, "Content-Type": "application/json"})
            assert r.status_code == 422
            http_texts.append(("POST /v1/events (bad body)", r.text))
        # Refused without a token, and with a wrong one: nothing of the body comes back.
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Bearer {CHILDREN[0]}"},
                        {"Authorization": f"Basic {CHILDREN[0]}"}):
            r = client.post("/v1/events", json=accepted_events()[0], headers=headers)
            assert r.status_code == 401
            http_texts.append(("POST /v1/events (401)", r.text + json.dumps(dict(r.headers))))
            r = client.post("/v1/events:batch", json=[accepted_events()[0]], headers=headers)
            assert r.status_code == 401
        for path in ("/healthz", "/metrics", "/openapi.json", f"/v1/{CHILDREN[0]}", f"/v1/events/{NAMES[0]}"):
            r = client.get(path, headers=auth)
            assert r.status_code < 500
            http_texts.append((f"GET {path} ({r.status_code})", r.text))
        r = client.put("/v1/events", json=accepted_events()[0], headers=auth)
        http_texts.append((f"PUT /v1/events ({r.status_code})", r.text))
    publisher.close()
    accepted = len(good) + 1  # the batch's one valid event

    # -- the bulk loader -------------------------------------------------------------------------
    jsonl = tmp_path / "raw.jsonl"
    lines = [json.dumps(e) for e in accepted_events()] + [json.dumps(e) for e in rejected_events()]
    lines.append(f"not json {CHILDREN[3]} {NAMES[1]}")
    jsonl.write_text("\n".join(lines) + "\n")
    result = subprocess.run([sys.executable, "-m", "casewatch.cli", "load", str(jsonl)], cwd=REPO, timeout=180,
                            env=stack_components.settings_env(settings), capture_output=True, text=True)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "read 10, published 4, dead-lettered 6" in result.stdout, result.stdout
    assert_clean("the loader's output", result.stdout + result.stderr)
    accepted += 4

    # -- the engine ------------------------------------------------------------------------------
    local_stack.start_engine(settings, name="engine-dp")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sample_sum(scrape(settings), "casewatch_events_processed_total") < accepted:
            time.sleep(1)
        text = scrape(settings)
        # Each child's events were pseudonymised the same way by both paths: duplicates of one event
        # are not possible (fresh event ids), so everything accepted is processed once.
        assert sample_sum(text, "casewatch_events_processed_total") == accepted
        assert_clean("the engine's /metrics", text)
        base = f"http://{settings.host}:{settings.engine_metrics_port}"
        health = stack_components.http_ok(f"{base}/healthz")
        assert health[0]
        import urllib.error
        import urllib.request
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as resp:
            http_texts.append(("engine /healthz", resp.read().decode()))
        for path in ("/table", "/table/case_histories", f"/{CHILDREN[0]}"):
            try:
                urllib.request.urlopen(f"{base}{path}", timeout=10)
                raise AssertionError(f"engine {path} answered")
            except urllib.error.HTTPError as exc:
                assert exc.code == 404
                http_texts.append((f"engine {path} (404)", exc.read().decode(errors="replace")))
        assert not stack_components.port_open(settings.host, settings.engine_web_port)
    finally:
        local_stack.stop("engine-dp")

    for where, text in http_texts:
        assert_clean(where, text)

    # -- the dead-letter topic (pseudonyms allowed, raw values never) -------------------------------
    letters = read_topic(settings, settings.deadletter_topic)
    # ingest: 5 single events, 2 in the batch, 2 bad bodies; the loader: 6 lines.
    assert len(letters) == 5 + 2 + 2 + 6, len(letters)
    for value in letters:
        assert_clean("a dead letter", value.decode(errors="replace"), pseudonyms_allowed=True)
    # ... and the events topic holds only pseudonyms.
    for value in read_topic(settings, settings.events_topic):
        assert_clean("the events topic", value.decode(), pseudonyms_allowed=True)

    # -- logs: every service log file, and what the in-process services logged -------------------------
    log_files = sorted(local_stack.processes.log_dir.glob("*"))
    assert any(p.name == "engine-dp.log" for p in log_files)
    for path in log_files:
        if path.is_file():
            assert_clean(f"log {path.name}", path.read_text(errors="replace"))
    # (httpx is the test client's side: it logs the request line the test itself sent.)
    service_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert service_records
    assert_clean("in-process log records", "\n".join(r.getMessage() for r in service_records))

    # -- an alert mail for an alert whose labels and annotations carry ids --------------------------
    pseudonym = "ps_" + "ab" * 16
    payload = {
        "receiver": "notifier", "status": "firing",
        "groupLabels": {"team": "cp_1", "child_ref": CHILDREN[0]},
        "commonLabels": {"severity": "page", "la": "E06000004", "measure": "cp_review_overdue"},
        "alerts": [{
            "status": "firing", "startsAt": "2025-10-01T09:00:00Z",
            "labels": {"alertname": "CpReviewOverdue", "severity": "page", "team": "cp_1", "la": "E06000004",
                       "measure": "cp_review_overdue", "child_ref": pseudonym, "child": CHILDREN[1],
                       "worker": WORKERS[0], "name": NAMES[0], "case_type": CHILDREN[2],
                       "process": f"cp_review {PLANS[0]}"},
            "annotations": {"summary": f"Review for {CHILDREN[1]} ({pseudonym}) is overdue",
                            "due": f"plan {PLANS[0]} due", "value": CHILDREN[3], "count": WORKERS[1],
                            "dashboard": f"/d/casewatch-cp?child={CHILDREN[1]}",
                            "description": NAMES[1]},
        }, {
            "status": "firing", "labels": {"alertname": "CpReviewOverdue", "team": EPISODES[0], "severity": "page"},
            "annotations": {"summary": f"{pseudonym}", "due": EPISODES[1]},
        }],
    }
    group = sanitise_group(payload, "http://127.0.0.1:3000")
    mail = compose(group, OnCall(name="Duty Manager", email="duty@example.invalid", hours="in_hours",
                                 source="team"), "casewatch@example.invalid")
    rendered = mail.as_string()
    assert "CP review overdue" in rendered or "review" in rendered.lower()  # the mail says what it is about
    assert len(group.alerts) == 2
    assert_clean("the alert mail", rendered)
