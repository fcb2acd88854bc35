"""Alertmanager routing: amtool accepts the config; pages and warnings reach the right receiver;
warnings only in Europe/London working hours; pipeline alerts and a catch-up inhibit the data
alerts; EngineCatchingUp mails nobody; the manager is told when an alert clears."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "prometheus" / "alertmanager.yml"


def _config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _route(*labels: str) -> str:
    done = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={CONFIG}", *labels],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_amtool_accepts_the_config():
    done = subprocess.run(["amtool", "check-config", str(CONFIG)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_stack_rendered_config_is_accepted_too(tmp_path):
    from casewatch.config import Settings
    from casewatch.stack.components import render_alertmanager_config
    rendered = render_alertmanager_config(Settings(state_dir=tmp_path, notifier_port=39181))
    text = rendered.read_text()
    assert "127.0.0.1:39181/alerts" in text and "notifier:29181" not in text
    assert str(ROOT / "prometheus" / "templates" / "casewatch.tmpl") in text
    done = subprocess.run(["amtool", "check-config", str(rendered)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 templates" in done.stdout


@pytest.mark.parametrize("labels, receiver", [
    (["alertname=IcpcOverdue", "severity=page", "kind=data", "team=cp_1", "la=E06000004"], "notifier-page"),
    (["alertname=AssessmentTimelinessBelowWarn", "severity=warn", "kind=data", "team=assessment_1"], "notifier-warn"),
    (["alertname=PipelineStalled", "severity=page", "kind=pipeline", "team=casewatch_service"], "notifier-pipeline"),
    (["alertname=DeadLetterSpike", "severity=warn", "kind=pipeline", "team=casewatch_service"], "notifier-pipeline"),
    (["alertname=EngineCatchUpUnknown", "severity=page", "kind=pipeline", "team=casewatch_service"], "notifier-pipeline"),
    (["alertname=EngineCatchingUp", "severity=info", "kind=pipeline", "team=casewatch_service",
      "measure=engine_catch_up"], "board-only"),
])
def test_alerts_route_by_severity_and_kind(labels, receiver):
    assert _route(*labels) == receiver


def _routes_by_receiver() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for route in _config()["route"]["routes"]:
        out.setdefault(route["receiver"], []).append(route)
    return out


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    """One Alertmanager matcher string (name="v", name!="v", name=~"re", name!~"re")."""
    name, op, value = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher).groups()
    got = labels.get(name, "")
    if op in ("=~", "!~"):
        hit = re.fullmatch(value, got) is not None
    else:
        hit = got == value
    return hit if op in ("=", "=~") else not hit


def _inhibited(target: dict[str, str], firing: list[dict[str, str]]) -> bool:
    """Alertmanager's inhibition, rule by rule: a firing source alert matching source_matchers
    mutes a target matching target_matchers when the `equal` labels agree."""
    for rule in _config()["inhibit_rules"]:
        if not all(_matches(m, target) for m in rule["target_matchers"]):
            continue
        for source in firing:
            if source is target or not all(_matches(m, source) for m in rule["source_matchers"]):
                continue
            if all(source.get(n, "") == target.get(n, "") for n in rule.get("equal", [])):
                return True
    return False


CATCHING_UP = {"alertname": "EngineCatchingUp", "severity": "info", "measure": "engine_catch_up",
               "kind": "pipeline", "team": "casewatch_service", "job": "casewatch-engine", "instance": "w2"}
ICPC_PAGE = {"alertname": "IcpcOverdue", "la": "E06000004", "team": "cp_1", "severity": "page",
             "measure": "icpc_overdue", "kind": "data"}
ICPC_WARN = {"alertname": "IcpcTimelinessBelowWarn", "la": "E06000004", "team": "cp_2", "severity": "warn",
             "measure": "icpc_timeliness", "kind": "data", "window": "28d"}
WORKER_DOWN = {"alertname": "EngineWorkerDown", "severity": "page", "measure": "pipeline", "kind": "pipeline",
               "team": "casewatch_service", "job": "casewatch-engine", "instance": "w1"}
STALLED = {"alertname": "PipelineStalled", "severity": "page", "measure": "pipeline", "kind": "pipeline",
           "team": "casewatch_service"}


def test_a_catch_up_inhibits_every_data_alert_but_no_pipeline_alert():
    for target in (ICPC_PAGE, ICPC_WARN):
        assert _inhibited(target, [CATCHING_UP])
        assert not _inhibited(target, [])
    # The engine's own health still reaches the service on-call during a catch-up.
    for target in (WORKER_DOWN, STALLED):
        assert not _inhibited(target, [CATCHING_UP])
    # Once caught up (EngineCatchingUp resolved, so not among the firing alerts), pages go out.
    assert not _inhibited(ICPC_PAGE, [WORKER_DOWN | {"alertname": "SomethingElse"}])


def test_the_catch_up_mails_nobody():
    receivers = {r["name"]: r for r in _config()["receivers"]}
    assert _route("alertname=EngineCatchingUp", "severity=info", "kind=pipeline") == "board-only"
    assert set(receivers["board-only"]) == {"name"}  # no notifier, mail or webhook config at all


def test_pages_go_out_at_any_hour_and_repeat_hourly_warnings_only_in_working_hours():
    routes = _routes_by_receiver()
    (page,) = routes["notifier-page"]
    (warn,) = routes["notifier-warn"]
    assert "active_time_intervals" not in page and "mute_time_intervals" not in page
    assert page["repeat_interval"] == "1h"
    assert warn["active_time_intervals"] == ["working_hours"]
    assert warn["repeat_interval"] == "12h"
    pipeline_page, pipeline_warn = routes["notifier-pipeline"]
    assert 'severity="page"' in pipeline_page["matchers"] and "active_time_intervals" not in pipeline_page
    assert pipeline_warn["active_time_intervals"] == ["working_hours"]


def test_working_hours_are_monday_to_friday_9_to_5_london_time():
    (interval,) = [t for t in _config()["time_intervals"] if t["name"] == "working_hours"]
    (spec,) = interval["time_intervals"]
    assert spec["weekdays"] == ["monday:friday"]
    assert spec["times"] == [{"start_time": "09:00", "end_time": "17:00"}]
    assert spec["location"] == "Europe/London"


def test_grouping_by_alertname_la_and_team():
    assert _config()["route"]["group_by"] == ["alertname", "la", "team"]


def test_pipeline_alerts_inhibit_data_alerts_and_pages_inhibit_warnings():
    rules = _config()["inhibit_rules"]
    pipeline = [r for r in rules if r["target_matchers"] == ['kind="data"']]
    assert pipeline and "PipelineStalled" in pipeline[0]["source_matchers"][0] \
        and "EngineWorkerDown" in pipeline[0]["source_matchers"][0]
    page_over_warn = [r for r in rules if r["source_matchers"] == ['severity="page"']]
    assert page_over_warn[0]["target_matchers"] == ['severity="warn"']
    assert set(page_over_warn[0]["equal"]) == {"la", "team", "measure"}


def test_every_mailing_receiver_is_the_notifier_webhook_and_sends_the_all_clear():
    mailing = [r for r in _config()["receivers"] if r["name"] != "board-only"]
    assert {r["name"] for r in mailing} == {"notifier-page", "notifier-warn", "notifier-pipeline"}
    for receiver in mailing:
        (hook,) = receiver["webhook_configs"]
        assert hook["url"] == "http://notifier:29181/alerts"
        assert hook["send_resolved"] is True, receiver["name"]


def test_template_renders_subject_from_labels_only():
    done = subprocess.run(
        ["amtool", "template", "render", f"--template.glob={ROOT / 'prometheus' / 'templates' / '*.tmpl'}",
         '--template.text={{ template "casewatch.subject" . }}'], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # amtool's example data has severity and no team/measure; the subject still renders.
    assert "firing" in done.stdout
