"""History on day one, on the real stack, as a new user gets it: `casewatch stack up` (what
`./dev up` runs) from an empty state directory, with the living demo authority.

* Before Prometheus starts, the demo's two years of daily figures and recording rules are
  written into its TSDB: a range query over the last 730 days returns a point per day for the
  assessment-timeliness and re-referral ratios and for `casewatch_cp_plans_open`.
* The live series continue the backfilled ones: same names and labels (job and instance as the
  scrape adds them), and the live figure equals the last backfilled day's within the day's
  changes (counted from the demo's own events, not from casewatch's figures).
* No page and no alert mail from a half-loaded history: from `stack up` until the engine has
  caught up with the demo history and the alert path has had time to deliver, the only mails are
  those of alerts true of the finished history (each alert rule's expression evaluated once the
  engine has caught up), and every such alert whose route mails at this hour was mailed. As soon
  as `stack up` returns, the stack's Prometheus is switched (a config reload) to the same rules
  with every `for:` / `keep_firing_for:` at 5 s (tests/support/short_rules.py), so any alert
  expression that held for 5 s during the catch-up would page: stricter than the real `for:`
  (2 minutes and longer, pinned by the promtool tests) over the first five minutes, and it needs
  no five-minute wait. Before the reload the real rules run for a few seconds, less than the
  shortest real `for:` (checked), so nothing can fire from them.

One stack serves every test here (it takes minutes to start); the module measures the time from
`stack up` to a board with two years of trend and prints it.
"""
from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.conftest import REPO, free_port
from tests.support.short_rules import short_duration_rules

# The first test carries `stack up` (the two-year backfill: minutes, more on a loaded machine):
# its limit is `up`'s own (1,200 s) with room for the test, above the suite's 900 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

DAY = 86400
LONDON = ZoneInfo("Europe/London")
# Alertmanager's longest group_wait (warnings'; pages' is 10 s; prometheus/alertmanager.yml), plus
# a margin for the notifier and the SMTP hop on a loaded 2-core machine.
GROUP_WAIT = 30
DELIVERY_MARGIN = 60
# Alertmanager's inhibit rules: while one of these fires no data alert is sent.
PIPELINE_INHIBITORS = {"PipelineStalled", "PipelineSilent", "EngineWorkerDown", "EngineCatchingUp"}
EVALUATION_INTERVAL = 15      # prometheus/prometheus.yml's global evaluation_interval


def _cli(env, *args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "casewatch.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class DemoStack:
    env: dict
    state_dir: Path
    prometheus: str
    started_at: float                 # wall clock when `stack up` began
    up_seconds: float                 # `stack up` until it returned
    up_output: str
    rules_dir: Path | None = None     # the short-duration rules the stack's Prometheus runs
    short_rules_at: float | None = None   # wall clock when the reload to them took effect
    board_seconds: float | None = None
    caught_up_at: float | None = None
    notes: list[str] = field(default_factory=list)

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("query", params)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self._get("query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                          "step": str(step)})

    def _get(self, endpoint: str, params: dict) -> list[dict]:
        url = f"{self.prometheus}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=60) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]["result"]


def _utc_midnight(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()


def _daily_points(stack: DemoStack, expr: str, first: date, last: date) -> dict[date, float]:
    """The range query a board makes over the period, one step a day at 00:00 UTC."""
    result = stack.query_range(f"sum({expr})", _utc_midnight(first), _utc_midnight(last), DAY)
    if not result:
        return {}
    return {datetime.fromtimestamp(float(t), timezone.utc).date(): float(v) for t, v in result[0]["values"]}


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory) -> DemoStack:
    state = tmp_path_factory.mktemp("demo-state") / "state"   # empty: never used before
    env = dict(os.environ)
    for name in ("CASEWATCH_PSEUDONYMISATION_KEY", "CASEWATCH_PSEUDONYMISATION_KEY_FILE",
                 "CASEWATCH_INGEST_TOKENS", "CASEWATCH_INGEST_TOKENS_FILE", "CASEWATCH_FIXED_TODAY"):
        env.pop(name, None)   # as a new user: the stack generates its demo secrets
    ports = {name: free_port() for name in (
        "KAFKA", "KAFKA_CONTROLLER", "PROMETHEUS", "ALERTMANAGER", "ENGINE_METRICS", "ENGINE_WEB",
        "INGEST", "NOTIFIER", "SMTP")}
    env.update({f"CASEWATCH_{name}_PORT": str(port) for name, port in ports.items()})
    env["CASEWATCH_STATE_DIR"] = str(state)
    started = time.time()
    t0 = time.monotonic()
    try:
        up = _cli(env, "stack", "up")
    except subprocess.TimeoutExpired:
        _cli(env, "stack", "down")
        raise
    stack = DemoStack(env, state, f"http://127.0.0.1:{ports['PROMETHEUS']}", started,
                      time.monotonic() - t0, up.stdout + up.stderr)
    try:
        assert up.returncode == 0, stack.up_output[-4000:]
        _switch_to_short_rules(stack, tmp_path_factory.mktemp("short-rules"))
        yield stack
    finally:
        down = _cli(env, "stack", "down")
        print(f"\n[history on day one] stack up returned after {stack.up_seconds:.0f}s; "
              f"board with two years of trend after {stack.board_seconds or float('nan'):.0f}s; "
              f"engine caught up after {(stack.caught_up_at or float('nan')) - started:.0f}s; "
              + "; ".join(stack.notes) + f"; down: {down.stdout.strip()}")


def _switch_to_short_rules(stack: DemoStack, rules_dir: Path) -> None:
    """Point the stack's Prometheus at the short-duration rules and reload it; check it runs
    them (every alert's `for:` is 5 s) and that the real rules ran for less than their shortest
    `for:` (so none of them can have fired)."""
    stack.rules_dir = short_duration_rules(rules_dir)
    config_path = stack.state_dir / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    config["rule_files"] = [str(stack.rules_dir / "*.yml")]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    request = urllib.request.Request(f"{stack.prometheus}/-/reload", method="POST")
    urllib.request.urlopen(request, timeout=60).read()
    with urllib.request.urlopen(f"{stack.prometheus}/api/v1/rules?type=alert", timeout=60) as resp:
        groups = json.load(resp)["data"]["groups"]
    durations = {r["name"]: r["duration"] for g in groups for r in g["rules"]}
    real = {r.name: r.for_seconds for r in _alert_rules(REPO / "prometheus" / "rules")}
    assert set(durations) == set(real)
    assert all(durations[name] == (5 if real[name] else 0) for name in real), durations
    stack.short_rules_at = time.time()
    with urllib.request.urlopen(f"{stack.prometheus}/metrics", timeout=60) as resp:
        own = resp.read().decode()
    started = float(next(line.split()[1] for line in own.splitlines()
                         if line.startswith("process_start_time_seconds ")))
    real_rules_ran = stack.short_rules_at - started
    assert real_rules_ran < min(v for v in real.values() if v), \
        f"the real rules ran {real_rules_ran:.0f}s before the reload: long enough for one to fire"
    stack.notes.append(f"real rules ran {real_rules_ran:.1f}s before the short-duration ones")


def test_a_board_has_two_years_of_trend_at_once(demo_stack: DemoStack):
    """A point per day over the last 730 days, for the two ratios (recording rules) and the open
    CP plans, as soon as `stack up` has returned (so before the engine has caught up)."""
    today = datetime.now(LONDON).date()
    first, last = today - timedelta(days=730), today - timedelta(days=1)
    expected_days = {first + timedelta(days=i) for i in range(730)}
    series = {
        "assessment timeliness": 'casewatch:assessment_timeliness:ratio_la{window="12m"}',
        "re-referral rate": 'casewatch:rereferral:ratio_la{window="12m"}',
        "open CP plans": 'casewatch_cp_plans_open{job="casewatch-engine"}',
    }
    deadline = time.monotonic() + 120
    while True:
        points = {name: _daily_points(demo_stack, expr, first, last) for name, expr in series.items()}
        if all(set(p) >= expected_days for p in points.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    demo_stack.board_seconds = time.time() - demo_stack.started_at
    for name, got in points.items():
        missing = sorted(expected_days - set(got))
        assert not missing, f"{name}: no point for {len(missing)} of the 730 days, e.g. {missing[:3]}"
        assert len(got) == 730
    # Figures, not zeros: the demo authority has open plans and referrals every day.
    assert min(points["open CP plans"].values()) > 0
    assert all(0 < v <= 1 for v in points["assessment timeliness"].values())
    assert all(0 <= v < 1 for v in points["re-referral rate"].values())
    # "Same period last year" (offset 52w) lands on a backfilled point for every day of this year.
    year_ago = _daily_points(demo_stack, 'casewatch_cp_plans_open{job="casewatch-engine"} offset 52w',
                             today - timedelta(days=365), last)
    assert len(year_ago) >= 365 - 1


def _wait_caught_up(stack: DemoStack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        caught = stack.query("min(casewatch_engine_caught_up)")
        figures = stack.query('count(casewatch_cp_plans_open{job="casewatch-engine"})')
        if caught and float(caught[0]["value"][1]) == 1 and figures:
            if stack.caught_up_at is None:
                stack.caught_up_at = time.time()
            return
        time.sleep(2)
    raise AssertionError(f"the engine did not catch up with the demo history within {timeout:.0f}s")


def _demo_events_after(d: date) -> list[dict]:
    """The demo's events dated after ``d`` up to two days on: what the living demo can have
    published since the history ended (the generator is seeded, so these are the same events)."""
    from casewatch.config import Settings
    from casewatch.simulation.demo import demo_history_events
    settings = Settings(la_codes="E06000004")
    return [e for e in demo_history_events(settings, d + timedelta(days=2))
            if str(e["effective_date"])[:10] > d.isoformat()]


def test_live_figures_continue_the_backfilled_ones(demo_stack: DemoStack):
    _wait_caught_up(demo_stack, timeout=600)
    time.sleep(12)   # two engine scrapes and a rule evaluation on the caught-up figures
    today = datetime.now(LONDON).date()
    yesterday = today - timedelta(days=1)
    at_last_day = _utc_midnight(yesterday)

    # Same names and labels: every live series of open CP plans is one the backfill wrote
    # (job and instance included).
    def label_sets(result):
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")) for r in result}
    live = demo_stack.query('casewatch_cp_plans_open{job="casewatch-engine"}')
    backfilled = demo_stack.query('last_over_time(casewatch_cp_plans_open{job="casewatch-engine"}[30d])',
                                  at=at_last_day)   # every series of the last 30 backfilled days
    assert live and backfilled
    assert label_sets(live) <= label_sets(backfilled), \
        f"live series not in the backfill: {sorted(label_sets(live) - label_sets(backfilled))[:3]}"

    # The day's changes, counted from the demo's own events dated after the last backfilled day.
    later = _demo_events_after(yesterday)
    cp_changes = sum(1 for e in later if e["event_type"] in ("cp_plan.started", "cp_plan.ended"))
    live_open = float(demo_stack.query('sum(casewatch_cp_plans_open{job="casewatch-engine"})')[0]["value"][1])
    last_open = float(demo_stack.query('sum(casewatch_cp_plans_open{job="casewatch-engine"})',
                                       at=at_last_day)[0]["value"][1])
    assert abs(live_open - last_open) <= cp_changes, (live_open, last_open, cp_changes)

    # The re-referral rate over 12 months: numerator and denominator move by at most the
    # referrals dated since (entering the window) plus those of the days leaving it.
    referrals_since = sum(1 for e in later if e["event_type"] == "referral.received")
    from casewatch.simulation.demo import demo_history_events
    from casewatch.config import Settings
    leaving_from = yesterday.replace(year=yesterday.year - 1) - timedelta(days=1)
    leaving_to = today.replace(year=today.year - 1) + timedelta(days=2)
    leaving = sum(1 for e in demo_history_events(Settings(la_codes="E06000004"), yesterday)
                  if e["event_type"] == "referral.received"
                  and leaving_from.isoformat() <= e["referral_date"] <= leaving_to.isoformat())
    k = referrals_since + leaving
    ratio = 'casewatch:rereferral:ratio_la{window="12m"}'
    den = 'casewatch:rereferral:denominator_la{window="12m"}'
    live_ratio = float(demo_stack.query(f"sum({ratio})")[0]["value"][1])
    last_ratio = float(demo_stack.query(f"sum({ratio})", at=at_last_day)[0]["value"][1])
    last_den = float(demo_stack.query(f"sum({den})", at=at_last_day)[0]["value"][1])
    assert last_den > k
    assert abs(live_ratio - last_ratio) <= 2 * k / (last_den - k), (live_ratio, last_ratio, k, last_den)
    demo_stack.notes.append(f"open CP plans live {live_open:.0f} vs last backfilled day {last_open:.0f}; "
                            f"re-referral rate live {live_ratio:.4f} vs {last_ratio:.4f}")


# -- no false page -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_seconds: float
    labels: dict


def _seconds(text: str | None) -> float:
    if not text:
        return 0.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit():
            number += ch
            i += 1
            continue
        unit = text[i:i + 2] if text[i:i + 2] == "ms" else ch
        total += int(number) * units[unit]
        number = ""
        i += len(unit)
    return total


def _alert_rules(rules_dir: Path) -> list[AlertRule]:
    rules = []
    for path in sorted(rules_dir.glob("*.yml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    rules.append(AlertRule(rule["alert"], rule["expr"], _seconds(rule.get("for")),
                                           {k: str(v) for k, v in (rule.get("labels") or {}).items()}))
    return rules


def _in_working_hours(at: datetime) -> bool:
    local = at.astimezone(LONDON)
    return local.weekday() < 5 and 9 <= local.hour < 17


def _mail_subject_start(labels: dict) -> str:
    """How the notifier's mail for an alert group begins (services/notifier/mail.py compose)."""
    from services.notifier.mail import measure_title
    where = f"team {labels['team']}" if labels.get("team") else "the whole authority"
    if labels.get("la"):
        where += f" ({labels['la']})"
    return f"[{labels['severity'].upper()}] {measure_title(labels.get('measure'))} - {where}"


def _mails(maildir: Path, until: float) -> list[tuple[float, str]]:
    found = []
    for sub in ("new", "cur"):
        for path in sorted((maildir / sub).glob("*")) if (maildir / sub).is_dir() else []:
            if path.stat().st_mtime > until:
                continue
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            # a long subject may be folded right after "Subject:", leaving a leading space
            found.append((path.stat().st_mtime, str(msg["Subject"]).strip()))
    return found


def _true_alerts(stack: DemoStack, at: float) -> dict[str, dict]:
    """The alerts whose rule expression holds at ``at``, by how their mail's subject begins."""
    found: dict[str, dict] = {}
    for rule in _alert_rules(stack.rules_dir):
        if rule.labels.get("severity") == "info":
            continue   # routed to nobody (EngineCatchingUp)
        for series in stack.query(rule.expr, at=at):
            labels = {**series["metric"], **rule.labels, "alertname": rule.name}
            found[_mail_subject_start(labels)] = {"rule": rule, "labels": labels}
    return found


def test_no_page_from_the_half_loaded_history_but_the_true_alerts(demo_stack: DemoStack):
    # Until the engine has caught up (the half-loaded history) and then long enough for the alert
    # path to act on the finished figures: two rule evaluations on them, the 5 s `for:` and the
    # next evaluation, Alertmanager's group_wait and the delivery margin.
    _wait_caught_up(demo_stack, timeout=600)
    settled = max(demo_stack.caught_up_at, demo_stack.short_rules_at) + 2 * EVALUATION_INTERVAL + 5
    window_end = settled + 5 + EVALUATION_INTERVAL + GROUP_WAIT + DELIVERY_MARGIN
    time.sleep(max(0.0, settled - time.time()))
    # The alerts true of the finished history: every alert rule's expression (catch-up gate
    # included) on the caught-up figures, at the start and at the end of the delivery time (the
    # living demo keeps publishing, so a figure may cross a threshold in between).
    true_at_settled = _true_alerts(demo_stack, time.time())
    time.sleep(max(0.0, window_end - time.time()))
    true_at_end = _true_alerts(demo_stack, window_end)
    true_alerts = {**true_at_settled, **true_at_end}
    mails = _mails(demo_stack.state_dir / "mailbox", until=window_end)
    subjects = [s for _, s in mails]
    unexpected = [s for s in subjects if s.startswith("[RESOLVED]")
                  or not any(s.startswith(start + ":") for start in true_alerts)]
    assert not unexpected, (f"{len(unexpected)} mail(s) from `up` until the alert path settled about alerts "
                            f"not true of the finished demo history: {unexpected[:5]}")

    # And exactly those: each alert true all along the delivery time whose route mails at this
    # hour was mailed (with the 5 s `for:` every one is due by the end of the window).
    now = datetime.fromtimestamp(window_end, timezone.utc)
    due = set()
    held = [a["labels"] for a in true_alerts.values()]
    pipeline_down = any(h["alertname"] in PIPELINE_INHIBITORS for h in held)
    for start in set(true_at_settled) & set(true_at_end):
        rule, labels = true_at_settled[start]["rule"], true_at_settled[start]["labels"]
        if labels["severity"] != "page" and not _in_working_hours(now):
            continue   # warnings are held until the working day starts
        if labels.get("kind") == "data" and pipeline_down:
            continue   # inhibited while the pipeline is stalled or silent or a worker is down
        if labels["severity"] == "warn" and any(
                h["severity"] == "page" and all(h.get(k) == labels.get(k) for k in ("la", "team", "measure"))
                for h in held):
            continue   # a page inhibits the warning for the same measure and team
        assert rule.for_seconds <= 5, rule
        due.add(start)
    mailed = {s.split(":", 1)[0] for s in subjects}
    assert due <= mailed, f"true alerts not mailed by the end of the window: {sorted(due - mailed)}"
    demo_stack.notes.append(f"alert window {window_end - demo_stack.started_at - demo_stack.up_seconds:.0f}s "
                            f"after up returned: {len(subjects)} mail(s) "
                            f"({sum(s.startswith('[PAGE]') for s in subjects)} page(s)); true of the finished "
                            f"history: {sorted(true_alerts) or 'none'}; due by then: {sorted(due) or 'none'}; "
                            f"mailed: {sorted(mailed) or 'none'}")
