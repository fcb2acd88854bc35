"""The whole alert path on the real stack: a staff shortage in team cp_1 makes its ICPC timeliness
drop; Prometheus fires IcpcTimelinessBelowPage for cp_1 only; Alertmanager routes it to the
notifier; a mail reaches a local SMTP server addressed to cp_1's on-call manager from the rota, and
it holds no child reference.

The rules are prometheus/rules/*.yml with every `for:` and `keep_firing_for:` shortened to a few
seconds (`tests/support/short_rules.py`), run by a Prometheus of this test's own that scrapes the session
stack's engine targets and sends to the session Alertmanager: the path is the real one, the real
15-minute `for:` is not waited for here but pinned by the promtool tests
(prometheus/tests/for_test.yml, checked by tests/unit/prometheus/test_prometheus_rules.py). The rules keep
their catch-up gate, so the page can only come once the engine reports itself caught up.

Needs: the session `local_stack` (its Alertmanager config rendered with notifier_port and the
webhook secret in its state dir), the engine, and the simulator's `staff_shortage` scenario."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import uvicorn
import yaml
from aiosmtpd.controller import Controller

from casewatch.stack.components import http_ok, render_prometheus_config
from casewatch.adapters.kafka.topics import ensure_topics
from services.notifier.app import create_app
from casewatch.config import NotifierSettings
from casewatch.simulation.authority import Scenario, authority_events
from tests.support.engine_runs import REF_FIELDS, pseudonym, publish, wait_until_settled

from tests.conftest import free_port
from tests.support.mailbox import Mailbox
from tests.support.short_rules import SHORT, short_duration_rules

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
UNTIL = date(2026, 11, 2)


def test_short_duration_rules_differ_from_the_real_ones_only_in_durations(tmp_path):
    short = short_duration_rules(tmp_path / "rules")
    changed = 0
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        real, fast = yaml.safe_load(path.read_text()), yaml.safe_load((short / path.name).read_text())
        for real_group, fast_group in zip(real["groups"], fast["groups"], strict=True):
            assert real_group["name"] == fast_group["name"]
            for a, b in zip(real_group["rules"], fast_group["rules"], strict=True):
                for key in ("for", "keep_firing_for"):
                    if key in a:
                        assert b[key] == SHORT
                        changed += 1
                assert {k: v for k, v in a.items() if k not in ("for", "keep_firing_for")} == \
                    {k: v for k, v in b.items() if k not in ("for", "keep_firing_for")}
    assert changed >= 17  # every alert with a for: (and the data alerts' keep_firing_for)
    done = subprocess.run(["promtool", "check", "rules", *map(str, sorted(short.glob("*.yml")))],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


TEST_INTERVAL = "2s"


@contextmanager
def short_rules_prometheus(local_stack, tmp_path: Path):
    """A Prometheus of this test's own: the stack's prometheus.yml as `casewatch stack up` renders
    it (the session's engine targets and Alertmanager), with the short-duration rules, evaluated and
    scraping every 2 s instead of every 15 s / 5 s. The rule expressions, their catch-up gate and
    the alert path are unchanged; only the waits between one evaluation and the next shrink (the
    recording rules, then the alert's pending state, then its firing each took a 15 s evaluation)."""
    port = free_port()
    settings = local_stack.settings.model_copy(update={"state_dir": tmp_path / "short", "prometheus_port": port})
    config_path = render_prometheus_config(settings, local_stack.extra_engine_targets())
    config = yaml.safe_load(config_path.read_text())
    config["rule_files"] = [str(short_duration_rules(tmp_path / "short-rules") / "*.yml")]
    config["global"]["evaluation_interval"] = config["global"]["scrape_interval"] = TEST_INTERVAL
    for job in config["scrape_configs"]:
        job["scrape_interval"] = TEST_INTERVAL
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    base = f"http://{settings.host}:{port}"
    log = open(tmp_path / "prometheus-short.log", "wb")
    proc = subprocess.Popen(["prometheus", f"--config.file={config_path}",
                             f"--storage.tsdb.path={tmp_path / 'short' / 'data'}",
                             f"--web.listen-address={settings.host}:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not http_ok(f"{base}/-/ready")[0]:
            assert proc.poll() is None, (tmp_path / "prometheus-short.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the short-rules Prometheus never became ready"
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for_query(base: str, expr: str, predicate, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    result: list[dict] = []
    while time.monotonic() < deadline:
        result = query(base, expr)
        if predicate(result):
            return result
        time.sleep(1.0)
    raise AssertionError(f"Prometheus query {expr!r} never satisfied the check; last result {result}")


def shortage_events() -> list[dict]:
    shortage = Scenario("staff_shortage", start=UNTIL - timedelta(days=70), team="cp_1")
    out = []
    for event in authority_events(["E06000004"], 40000, 11, date(UNTIL.year - 1, UNTIL.month, UNTIL.day), UNTIL,
                                  scenarios=[shortage]):
        event = dict(event)
        for f in REF_FIELDS:
            if isinstance(event.get(f), str):
                event[f] = pseudonym(event[f], event["la_code"])
        out.append(event)
    return out


def test_icpc_timeliness_drop_reaches_the_on_call_manager_by_mail(local_stack, tmp_path):
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    # cp_1's manager takes its alerts at any hour, so the result does not depend on the wall clock.
    rota = tmp_path / "rota.yml"
    rota.write_text(
        "default: {name: Duty manager, email: duty.manager@example.invalid}\n"
        "teams:\n"
        "  cp_1:\n"
        "    - {name: CP team manager, email: cp1.manager@example.invalid, hours: any}\n"
        "  casewatch_service:\n"
        "    - {name: Service on-call, email: casewatch.oncall@example.invalid, hours: any}\n")
    # state_dir: the webhook secret the session stack rendered into Alertmanager's config
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=smtp_port, rota_file=rota,
                                grafana_url="http://localhost:3000", state_dir=local_stack.settings.state_dir)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=local_stack.settings.host,
                                           port=local_stack.settings.notifier_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    engine_settings = local_stack.settings_for(fixed_today=UNTIL.isoformat())
    ensure_topics(engine_settings)
    publish(engine_settings.bootstrap, engine_settings.events_topic, shortage_events())
    # Two workers, on both engine targets Prometheus scrapes: with a target down, EngineWorkerDown
    # would (rightly) inhibit every data alert.
    second_port = engine_settings.engine_metrics_port + 1
    try:
        # the workers first: a Prometheus scraping every 2 s would see a worker not yet started as down
        local_stack.start_engine(engine_settings)
        local_stack.start_engine(engine_settings, name="engine-2", metrics_port=second_port)
        with short_rules_prometheus(local_stack, tmp_path) as prometheus:
            wait_until_settled([f"http://{engine_settings.host}:{port}/metrics"
                                for port in (engine_settings.engine_metrics_port, second_port)],
                               settings=engine_settings)
            assert query(prometheus, 'ALERTS{alertname="EngineWorkerDown"}') == []
            # The gate is open only once Prometheus has scraped both workers caught up.
            wait_for_query(prometheus, 'min(casewatch_engine_caught_up) == 1 and count(casewatch_engine_caught_up) == 2',
                           lambda r: len(r) == 1, timeout=120)
            ratio = wait_for_query(prometheus, 'casewatch:icpc_timeliness:ratio{team="cp_1",window="28d"}',
                                   lambda r: len(r) == 1, timeout=120)
            assert float(ratio[0]["value"][1]) < 0.70
            firing = wait_for_query(prometheus, 'ALERTS{alertname="IcpcTimelinessBelowPage",alertstate="firing"}',
                                    lambda r: len(r) > 0, timeout=180)
            assert {a["metric"]["team"] for a in firing} == {"cp_1"}

            def icpc_mails():
                out = []
                for rcpts, raw in mailbox.messages:
                    mail = message_from_bytes(raw, policy=policy.default)
                    if mail["Subject"].startswith("[PAGE] ICPCs within 15 working days"):
                        out.append((rcpts, raw, mail))
                return out

            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not icpc_mails():
                time.sleep(1)
            mails = icpc_mails()
            assert mails, f"no ICPC timeliness mail arrived ({len(mailbox.messages)} other mails)"
            rcpts, raw, mail = mails[0]
            assert rcpts == ["cp1.manager@example.invalid"]
            assert "team cp_1 (E06000004)" in mail["Subject"]
            body = mail.get_body().get_content()
            assert "ICPCs within 15 working days of the strategy discussion" in body
            for _, other in mailbox.messages:
                assert b"ps_" not in other
    finally:
        local_stack.stop("engine")
        local_stack.stop("engine-2")
        server.should_exit = True
        thread.join(timeout=10)
        smtp.stop()
