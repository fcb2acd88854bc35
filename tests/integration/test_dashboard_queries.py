"""Every panel query of every board runs against the real Prometheus (with the project's rule
files loaded) once a demo authority's events have been applied by a real engine worker, and
returns data. Needs: the session `local_stack` (Kafka, Prometheus with prometheus/rules/*.yml,
Alertmanager), the engine (`casewatch engine`) and the simulator's `authority_events`."""
from __future__ import annotations

import urllib.parse
import urllib.request
import json
import time
from datetime import datetime

import pytest

from casewatch.adapters.kafka.topics import ensure_topics
from dashboards import panel_queries
from tests.support.engine_runs import demo_events, publish, wait_until_settled

pytestmark = pytest.mark.integration
FIXED_TODAY = "2026-11-02"

# Queries that may rightly be empty here; they must still be valid PromQL that Prometheus accepts.
def may_be_empty(expr: str) -> bool:
    return ("offset 52w" in expr                       # needs a year of Prometheus history
            or "] @ " in expr                          # before/after a dated local change: history at its dates
            or "_published" in expr                    # suppressed when a figure is under 6
            or "casewatch_ingest_" in expr             # no ingest service in this stack
            or "casewatch_notifier_" in expr           # no notifier scraped in this stack
            or "casewatch_events_duplicate_total" in expr
            or "casewatch_events_dead_lettered_total" in expr)


def query(base: str, expr: str) -> dict:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=20) as resp:
        return json.load(resp)


def wait_for_rules_evaluated_after(base: str, moment: float, timeout: float = 120.0) -> None:
    """Wait until every rule group has been evaluated after ``moment`` (so the recording rules
    reflect the settled figures, not a scrape taken while the engine was still working)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=20) as resp:
            groups = json.load(resp)["data"]["groups"]
        evaluated = [datetime.fromisoformat(g["lastEvaluation"]).timestamp() for g in groups]
        if groups and min(evaluated) > moment:
            return
        time.sleep(2)
    raise AssertionError("Prometheus never evaluated the rule groups after the figures settled")


@pytest.fixture(scope="module")
def demo_loaded(local_stack):
    settings = local_stack.settings_for(fixed_today=FIXED_TODAY)
    ensure_topics(settings)
    publish(settings.bootstrap, settings.events_topic, demo_events())
    local_stack.start_engine(settings)
    try:
        wait_until_settled([f"http://{settings.host}:{settings.engine_metrics_port}/metrics"])
        wait_for_rules_evaluated_after(local_stack.prometheus_url, time.time() + 6)  # one scrape (5 s) later
        # Prometheus has scraped the settled figures and evaluated the recording rules.
        local_stack.wait_for_query("casewatch:assessment_timeliness:ratio_la", lambda r: len(r) > 0, timeout=120)
        local_stack.wait_for_query("casewatch:caseload:ratio", lambda r: len(r) > 0, timeout=120)
        yield local_stack
    finally:
        local_stack.stop("engine")


def test_every_panel_query_returns_data(demo_loaded):
    empty, failed = [], []
    for uid, title, expr in panel_queries():
        body = query(demo_loaded.prometheus_url, expr)
        if body.get("status") != "success":
            failed.append((uid, title, expr))
        elif not body["data"]["result"] and not may_be_empty(expr):
            empty.append((uid, title, expr))
    assert failed == []
    assert empty == [], "\n".join(map(str, empty))
