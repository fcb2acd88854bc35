"""The engine under faults, on the real stack (Kafka KRaft, Prometheus, a real `casewatch engine`):
poison messages, a Prometheus restart, a broker restart during processing.

"Today" is fixed at Friday 14 March 2025, so the 12-month window is 15 March 2024 to 14 March
2025 inclusive (docs/metrics.md: ``(as_of - 12 calendar months, as_of]``).
"""
from __future__ import annotations

import time
import urllib.request

import pytest

from casewatch.stack import components as stack_components
from casewatch.adapters.kafka.topics import ensure_topics
from tests.support.engine_io import (LA, child_ref, publish, publish_raw, read_dead_letters, referral,
                                     sample_sum, scrape, wait_for_figure)
from tests.support.engine_runs import wait_until_caught_up

# Bounds leave room for a loaded 2-core machine (a broker restart alone can take a minute there).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TODAY = "2025-03-14"
PROCESSED = "casewatch_events_processed_total"
DEAD = "casewatch_events_dead_lettered_total"
REFERRALS = "casewatch_referrals"


@pytest.fixture
def engine_settings(local_stack):
    settings = local_stack.settings_for(fixed_today=TODAY)
    ensure_topics(settings)
    local_stack.start_engine(settings)
    # /metrics answers from the app's first start, before the worker has declared its topics and
    # joined the group: wait for a fully started worker (partitions assigned, caught up) so the
    # faults below hit a running engine, not its start-up.
    wait_until_caught_up([f"http://{settings.host}:{settings.engine_metrics_port}/metrics"], settings.bootstrap,
                         settings.events_topic, timeout=300)
    yield settings
    local_stack.stop("engine")


def test_poison_messages_are_dead_lettered_and_processing_continues(local_stack, engine_settings):
    s = engine_settings
    key = child_ref(1).encode()
    garbage_assessment = {
        "event_id": "3f0c9a52-5a8e-4d7e-9d53-1b1f2f0c0a01", "event_type": "assessment.completed",
        "schema_version": 1, "la_code": LA, "team": "assessment_1", "child_ref": child_ref(1),
        "assessment_ref": child_ref(2), "effective_date": "sometime in March",
        "authorisation_date": "the 45th of Smarch",
    }
    import json
    publish_raw(s, key, b"\xff\xfe\x00\x9f not utf-8 \xc3\x28")        # not UTF-8, not JSON
    publish_raw(s, key, b"\"not an event\"")                             # JSON, but not an object (nor a batch)
    publish_raw(s, key, json.dumps(garbage_assessment).encode())        # an object with impossible dates
    publish(s, [referral(1, "2025-03-10")])                             # a valid event, same child

    # The valid event after the poison ones is counted ...
    wait_for_figure(s, PROCESSED, lambda v: v == 1.0, event_type="referral.received", la=LA)
    text = scrape(s)
    assert sample_sum(text, REFERRALS, window="12m") == 1.0
    # ... the three poison messages are counted as dead letters, each with its reason ...
    assert sample_sum(text, DEAD, stage="decode", reason="undecodable") == 1.0
    assert sample_sum(text, DEAD, stage="decode", reason="missing_envelope_field") == 1.0
    assert sample_sum(text, DEAD, stage="apply", reason="unprocessable") == 1.0
    assert sample_sum(text, DEAD) == 3.0
    # ... and none of them counted as an event.
    assert sample_sum(text, PROCESSED) == 1.0

    letters = read_dead_letters(s, expected=3)
    assert len(letters) == 3
    reasons = sorted((d["stage"], d["errors"][0]["type"]) for d in letters)
    assert reasons == [("apply", "unprocessable"), ("decode", "missing_envelope_field"),
                       ("decode", "undecodable")]
    assert all(d["source"] == "engine" and d["received_at"] for d in letters)
    undecodable = next(d for d in letters if d["errors"][0]["type"] == "undecodable")
    # Undecodable bytes are described (size and hash), never copied.
    assert set(undecodable["payload"]) == {"undecodable_bytes", "sha256"}
    assert undecodable["payload"]["undecodable_bytes"] == len(b"\xff\xfe\x00\x9f not utf-8 \xc3\x28")
    # The dead letter of the impossible event names it but never quotes its bad values.
    unprocessable = next(d for d in letters if d["errors"][0]["type"] == "unprocessable")
    assert unprocessable["payload"]["event_id"] == garbage_assessment["event_id"]
    assert "Smarch" not in json.dumps(unprocessable) and "sometime" not in json.dumps(unprocessable)

    # Faust's own web server (which would serve table contents at /table) is off.
    assert not stack_components.port_open(s.host, s.engine_web_port)
    assert stack_components.http_ok(f"http://{s.host}:{s.engine_metrics_port}/table") == (False, "HTTP 404")


def test_prometheus_restart_loses_nothing_the_engine_serves(local_stack, engine_settings):
    s = engine_settings
    expr = f'sum(casewatch_referrals{{job="casewatch-engine",la="{LA}",window="12m"}})'
    publish(s, [referral(n, "2025-03-10") for n in range(10, 13)])
    local_stack.wait_for_query(expr, lambda r: r and float(r[0]["value"][1]) == 3.0, timeout=60)

    local_stack.processes.stop("prometheus")
    try:
        assert not stack_components.port_open(s.host, s.prometheus_port)
        # While Prometheus is away the engine keeps serving the same figures ...
        assert sample_sum(scrape(s), REFERRALS, window="12m") == 3.0
        time.sleep(3)
        assert sample_sum(scrape(s), REFERRALS, window="12m") == 3.0
        # ... and keeps processing.
        publish(s, [referral(n, "2025-03-11") for n in range(13, 15)])
        wait_for_figure(s, REFERRALS, lambda v: v == 5.0, window="12m")
    finally:
        t0 = time.monotonic()
        local_stack.manager.start_component(stack_components.prometheus_component(local_stack.settings))
        local_stack.reload_prometheus()  # restore the session's extra scrape targets
        restarted_in = time.monotonic() - t0
    print(f"prometheus back in {restarted_in:.1f}s")
    # The same query answers again, with the figure the engine reached while Prometheus was away.
    local_stack.wait_for_query(expr, lambda r: r and float(r[0]["value"][1]) == 5.0, timeout=60)


def test_broker_restart_during_processing_counts_every_event_once(local_stack, engine_settings):
    s = engine_settings
    # Before the restart: 3000 referrals on 3 March 2025 (inside the 12-month window) and one on
    # 14 March 2024 (one day before the window opens). After: 50 on 10 March 2025.
    before = [referral(10_000 + n, "2025-03-03") for n in range(3000)] + [referral(9_999, "2024-03-14")]
    after = [referral(20_000 + n, "2025-03-10") for n in range(50)]

    publish(s, before)
    # Kill the broker (no controlled shutdown) while the engine is still working through the batch.
    t0 = time.monotonic()
    local_stack.processes.stop("kafka", kill=True)
    stopped_at = time.monotonic()
    processed_when_stopped = sample_sum(scrape(s), PROCESSED)
    time.sleep(5)
    kafka = stack_components.kafka_component(local_stack.settings, lambda msg: None)
    local_stack.manager.start_component(kafka)  # same data directory: no re-format
    print(f"broker stopped in {stopped_at - t0:.1f}s, down for {time.monotonic() - stopped_at:.1f}s; "
          f"{processed_when_stopped:.0f} of {len(before)} processed when it stopped")
    assert processed_when_stopped < len(before), "the broker must go away mid-batch for this test to mean anything"

    publish(s, after)
    # The barrier: every partition applied up to the end offset Kafka reports after the last
    # publish (so every redelivery of an earlier message has been applied, too), the worker caught up.
    wait_until_caught_up([f"http://{s.host}:{s.engine_metrics_port}/metrics"], s.bootstrap, s.events_topic,
                         timeout=300)
    text = scrape(s)
    assert sample_sum(text, PROCESSED) == 3051.0
    assert sample_sum(text, PROCESSED, event_type="referral.received", la=LA) == 3051.0
    assert sample_sum(text, REFERRALS, window="12m") == 3050.0
    assert sample_sum(text, REFERRALS, window="28d") == 3050.0  # 15 Feb .. 14 Mar 2025
    assert sample_sum(text, DEAD) == 0.0
    # The engine is still the same process and still serving.
    assert local_stack.processes.get("engine").alive
