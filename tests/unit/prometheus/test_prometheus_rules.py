"""The Prometheus rules: promtool must accept them and their unit tests must pass; every rule is
covered by a test; every alert carries the labels and annotations the on-call path relies on; every
alert's `for:` and `keep_firing_for:` and the catch-up gate are pinned by a promtool test that
fails when they change (checked by running the tests on rules with each of them moved)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
TESTS = sorted((ROOT / "prometheus" / "tests").glob("*.yml"))
ALERT_RULES = ROOT / "prometheus" / "rules" / "casewatch_alerts.yml"
# The promtool tests that pin each alert's timing (see their header comments).
PIN_FILES = [ROOT / "prometheus" / "tests" / "for_test.yml", ROOT / "prometheus" / "tests" / "silence_test.yml"]
GATE = "and on() (min(casewatch_engine_caught_up) == 1)"
# Pipeline alerts that are gated too (a replay distorts their figures); the other pipeline alerts
# report on the engine's own health or on ingest and must fire while it catches up.
GATED_PIPELINE_ALERTS = {"PipelineSilent", "DeadLetterSpike", "CalendarCoverageEnding"}
PINNED = re.compile(r'ALERTS\{alertname="(\w+)",alertstate="firing"\}')


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
        assert labels.get("severity") in {"page", "warn", "info"}, rule["alert"]
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


# -- timing: for:, keep_firing_for: and the catch-up gate -----------------------------------------

def seconds(duration: str | None) -> int:
    """A Prometheus duration ("1h", "15m", "1h23m", "90s") in seconds; None is 0."""
    if not duration:
        return 0
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", str(duration))
    assert parts and any(parts.groups()), duration
    h, m, s = (int(x or 0) for x in parts.groups())
    return h * 3600 + m * 60 + s


def _alerts() -> list[dict]:
    return [r for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def _pins() -> dict[str, dict[str, int]]:
    """For each alert: `for_at`, the evaluation at which a pin test expects it firing while it was
    expected not firing one evaluation before; `kept_until`, the last evaluation at which it is
    expected firing while it is expected not firing one evaluation later (keep_firing_for)."""
    pins: dict[str, dict[str, int]] = {}
    for path in PIN_FILES:
        spec = yaml.safe_load(path.read_text())
        step = seconds(spec.get("evaluation_interval", "1m"))
        for case in spec["tests"]:
            seen: dict[str, dict[int, bool]] = {}
            for check in case.get("promql_expr_test") or []:
                found = PINNED.fullmatch(check["expr"])
                if found:
                    seen.setdefault(found.group(1), {})[seconds(check["eval_time"])] = bool(check["exp_samples"])
            for name, at in seen.items():
                for t, firing in sorted(at.items()):
                    if firing and at.get(t - step) is False:
                        pins.setdefault(name, {"step": step}).setdefault("for_at", t)
                    if firing and at.get(t + step) is False and "for_at" in pins.get(name, {}):
                        pins[name]["kept_until"] = t
    return pins


def test_every_alert_has_a_test_pinning_its_for_and_keep_firing_for():
    pins = _pins()
    for rule in _alerts():
        name = rule["alert"]
        assert "for_at" in pins.get(name, {}), (
            f"{name}: no test in {[p.name for p in PIN_FILES]} expects it not firing one evaluation "
            f"before its for: ({rule.get('for', '0s')}) elapses and firing right after")
        if rule.get("keep_firing_for"):
            assert "kept_until" in pins[name], f"{name}: keep_firing_for is set but no test pins it"


def test_data_alerts_and_the_replay_distorted_pipeline_alerts_require_the_engine_caught_up():
    for rule in _alerts():
        gated = GATE in " ".join(rule["expr"].split())
        should = rule["labels"]["kind"] == "data" or rule["alert"] in GATED_PIPELINE_ALERTS
        assert gated == should, rule["alert"]


def test_page_timing_rides_over_a_missed_scrape():
    """A missed scrape leaves a gap of one scrape interval plus up to one evaluation interval: a
    page must need the breach for longer than two such gaps before it fires, and a firing data
    alert must be kept through such a gap (keep_firing_for) rather than clear and page again."""
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    scrape = max([seconds(config["global"]["scrape_interval"])]
                 + [seconds(job["scrape_interval"]) for job in config["scrape_configs"] if "scrape_interval" in job])
    gap = scrape + seconds(config["global"]["evaluation_interval"])
    for rule in _alerts():
        if rule["labels"]["kind"] != "data":
            continue
        assert seconds(rule.get("keep_firing_for")) >= 2 * gap, rule["alert"]
        if rule["labels"]["severity"] == "page":
            assert seconds(rule.get("for")) >= 2 * gap, rule["alert"]


def _mutated_failures(tmp_path: Path, name: str, mutate) -> set[tuple[str, int]]:
    """Run the pin tests on a copy of the rules in which `mutate(rule)` changed every alert; return
    the (alert, evaluation time) of every failed ALERTS check."""
    root = tmp_path / name
    shutil.copytree(ROOT / "prometheus" / "rules", root / "rules")
    (root / "tests").mkdir()
    for path in PIN_FILES:  # only their pin tests
        spec = yaml.safe_load(path.read_text())
        spec["tests"] = [case for case in spec["tests"]
                         if any(PINNED.fullmatch(c["expr"]) for c in case.get("promql_expr_test") or [])]
        (root / "tests" / path.name).write_text(yaml.safe_dump(spec, sort_keys=False))
    spec = yaml.safe_load(ALERT_RULES.read_text())
    for group in spec["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                mutate(rule)
    (root / "rules" / ALERT_RULES.name).write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run(["promtool", "test", "rules", *[p.name for p in PIN_FILES]], capture_output=True,
                          text=True, cwd=root / "tests")
    output = done.stdout + done.stderr  # promtool writes the failures to stderr
    assert "SUCCESS" in output or "FAILED" in output, output
    failed = re.findall(r'expr: "ALERTS\{alertname=\\"(\w+)\\",alertstate=\\"firing\\"\}", time: (\w+),',
                        output)
    return {(alert, seconds(at)) for alert, at in failed}


def _with(rule: dict, key: str, delta: int) -> None:
    value = seconds(rule.get(key)) + delta
    if value > 0:
        rule[key] = f"{value}s"
    else:
        rule.pop(key, None)


@pytest.mark.parametrize("delta", [-60, 60], ids=["one_minute_shorter", "one_minute_longer"])
def test_moving_any_for_or_keep_firing_for_by_a_minute_fails_its_pin(tmp_path, delta):
    """Every alert's for: and keep_firing_for: moved by one minute at once (they do not interact:
    one decides when an alert starts firing, the other when it stops); each alert's pin must fail.
    By monotony this covers any change, deleting a for: included."""
    alerts, pins = _alerts(), _pins()

    def mutate(rule):
        if delta > 0 or rule.get("for"):
            _with(rule, "for", delta)
        if rule.get("keep_firing_for"):
            _with(rule, "keep_firing_for", delta)

    failures = _mutated_failures(tmp_path, f"delta{delta}", mutate)
    missed = []
    for rule in alerts:
        name, pin = rule["alert"], pins[rule["alert"]]
        if delta > 0 or rule.get("for"):
            # Shorter: fires one evaluation early; longer: not yet firing when expected.
            expected = pin["for_at"] - pin["step"] if delta < 0 else pin["for_at"]
            if (name, expected) not in failures:
                missed.append(f"{name} for: {rule.get('for', '0s')} {delta:+d}s")
        if rule.get("keep_firing_for"):
            expected = pin["kept_until"] if delta < 0 else pin["kept_until"] + pin["step"]
            if (name, expected) not in failures:
                missed.append(f"{name} keep_firing_for: {rule['keep_firing_for']} {delta:+d}s")
    assert missed == []


def test_removing_the_catch_up_gate_fails_its_pin(tmp_path):
    alerts, pins = _alerts(), _pins()

    def mutate(rule):
        rule["expr"] = " ".join(rule["expr"].split()).replace(GATE, "")

    failures = _mutated_failures(tmp_path, "ungated", mutate)
    gated = [r["alert"] for r in alerts if GATE in " ".join(r["expr"].split())]
    assert gated
    # Without the gate the alert starts pending while the worker still catches up: it fires early.
    assert [n for n in gated if (n, pins[n]["for_at"] - pins[n]["step"]) not in failures] == []
