"""The Prometheus rules: promtool must accept them and their unit tests must pass; every rule is
covered by a test; every alert carries the labels and annotations the on-call path relies on."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
TESTS = sorted((ROOT / "prometheus" / "tests").glob("*.yml"))


def _rules():
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def test_promtool_check_rules_accepts_every_rule_file():
    assert RULES, "no rule files"
    done = subprocess.run(["promtool", "check", "rules", *map(str, RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass():
    assert TESTS, "no promtool test files"
    done = subprocess.run(["promtool", "test", "rules", *map(str, TESTS)], capture_output=True, text=True,
                          cwd=ROOT / "prometheus" / "tests")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_every_recording_rule_and_alert_has_a_promtool_test():
    tested_exprs, tested_alerts = set(), set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("promql_expr_test") or []:
                tested_exprs.update(re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", t["expr"]))
            for t in case.get("alert_rule_test") or []:
                tested_alerts.add(t["alertname"])
    records = {r["record"] for r in _rules() if "record" in r}
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert records - tested_exprs == set()
    assert alerts - tested_alerts == set()


def test_every_alert_has_severity_measure_kind_and_a_dashboard_link():
    for rule in _rules():
        if "alert" not in rule:
            continue
        labels, ann = rule.get("labels", {}), rule.get("annotations", {})
        assert labels.get("severity") in {"page", "warn"}, rule["alert"]
        assert re.fullmatch(r"[a-z_]+", labels.get("measure", "")), rule["alert"]
        assert labels.get("kind") in {"data", "pipeline"}, rule["alert"]
        assert ann.get("summary") and ann.get("dashboard", "").startswith("/d/casewatch-"), rule["alert"]


def test_no_rule_or_annotation_mentions_a_child_or_worker_reference():
    text = "\n".join(p.read_text() for p in RULES)
    for word in ("child_ref", "episode_ref", "worker_ref", "ps_"):
        assert word not in text


def test_the_ratios_named_in_the_brief_have_team_and_la_recording_rules():
    records = {r["record"] for r in _rules() if "record" in r}
    for name in ("contact_referral_conversion", "referral_nfa", "assessed_not_in_need", "rereferral",
                 "contacts_early_help_active", "contacts_closed_and_logged", "assessment_timeliness",
                 "referral_decision_timeliness", "s47_to_icpc", "icpc_timeliness", "icpc_to_plan",
                 "cp_review_timeliness", "child_participation", "lac_review_timeliness",
                 "statutory_visit_timeliness", "lac_legal_status_share", "cp_plan_subsequent",
                 "cp_plan_ended_2y_plus", "cp_plan_open_2y_plus", "cp_plan_end_route_share",
                 "lac_3plus_placements_12m", "lac_3plus_placements_24m", "care_leavers_eet",
                 "care_leavers_suitable_accommodation", "vacancy_rate", "turnover", "caseload", "agency_rate"):
        for kind in ("ratio", "ratio_la", "ratio_published", "ratio_la_published"):
            assert f"casewatch:{name}:{kind}" in records


def test_published_ratios_require_six_or_more_in_numerator_and_denominator():
    for rule in _rules():
        if rule.get("record", "").endswith("published"):
            assert rule["expr"].count(">= 6") == 2, rule["record"]
