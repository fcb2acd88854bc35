"""Alertmanager -> notifier -> SMTP, for real: the project's alertmanager.yml (rendered as the
local stack renders it) run by prometheus-alertmanager, our notifier, and an aiosmtpd server, all
on free loopback ports. An alert posted to Alertmanager arrives as a mail to the team's on-call
manager from the rota, holding no child reference; a stalled pipeline or an engine catching up
inhibits the data alerts (read from Alertmanager's own API, `inhibitedBy`); the manager gets the
all-clear when an alert resolves.

Negative assertions ("the inhibited page was never mailed") never rest on a fixed sleep: they read
`inhibitedBy`, then wait for a sentinel page posted after the inhibited alert, on a route with the
same group_wait, and only then look at the mailbox."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import uvicorn
import yaml
from aiosmtpd.controller import Controller

from services.notifier.app import create_app
from casewatch.config import NotifierSettings

from tests.conftest import free_port
from tests.support.mailbox import Mailbox

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def running_alert_path(tmp_path: Path, group_interval: str | None = None):
    """Alertmanager with the project's config (optionally a shorter group_interval, so that what a
    group sends after its first mail - an all-clear, a page released from inhibition - comes
    within seconds instead of 5 minutes), the notifier and an SMTP mailbox."""
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()

    rota = tmp_path / "rota.yml"
    shutil.copy(ROOT / "services" / "notifier" / "rota.example.yml", rota)
    notifier_port = free_port()
    # /alerts needs Alertmanager's bearer credentials: the secret render_alertmanager_config (below)
    # points Alertmanager at, in the same state dir.
    from casewatch.config import WEBHOOK_SECRET_NAME, ensure_webhook_secret
    ensure_webhook_secret(tmp_path / WEBHOOK_SECRET_NAME)
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=smtp_port, rota_file=rota,
                                grafana_url="http://localhost:3000", notifier_port=notifier_port,
                                state_dir=tmp_path)
    # A page goes to the team whatever the hour: pin "now" to Monday 10:00 so the rota answer is known.
    monday = datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, now=lambda: monday), host="127.0.0.1",
                                           port=notifier_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    am = None
    try:
        wait_for(lambda: server.started, 20, "the notifier")
        from casewatch.config import Settings
        from casewatch.stack.components import render_alertmanager_config
        config = render_alertmanager_config(Settings(state_dir=tmp_path, notifier_port=notifier_port))
        if group_interval:
            spec = yaml.safe_load(config.read_text())
            spec["route"]["group_interval"] = group_interval
            for route in spec["route"]["routes"]:
                route.pop("group_interval", None)
            config.write_text(yaml.safe_dump(spec, sort_keys=False))
        am_port = free_port()
        am = subprocess.Popen(["prometheus-alertmanager", f"--config.file={config}",
                               f"--storage.path={tmp_path / 'am-data'}",
                               f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                               "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{am_port}"

        def ready():
            try:
                return urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200
            except OSError:
                return False
        wait_for(ready, 30, "Alertmanager")
        yield base, mailbox
    finally:
        if am is not None:
            am.terminate()
            am.wait(timeout=20)
        server.should_exit = True
        thread.join(timeout=10)
        smtp.stop()


@pytest.fixture
def alert_path(tmp_path):
    with running_alert_path(tmp_path) as path:
        yield path


@pytest.fixture
def fast_alert_path(tmp_path):
    with running_alert_path(tmp_path, group_interval="2s") as path:
        yield path


def post_alerts(base: str, alerts: list[dict]) -> None:
    now = datetime.now(timezone.utc)
    for a in alerts:
        a.setdefault("startsAt", now.isoformat())
        a.setdefault("endsAt", (now + timedelta(hours=1)).isoformat())
    req = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    assert urllib.request.urlopen(req, timeout=5).status == 200


def icpc_overdue(team: str, **extra) -> dict:
    return {"labels": {"alertname": "IcpcOverdue", "la": "E06000004", "team": team, "severity": "page",
                       "measure": "icpc_overdue", "kind": "data", **extra},
            "annotations": {"summary": f"Team {team}: 2 section 47 enquiries are past 15 working days with no "
                                       "initial child protection conference held or decided against.",
                            "value": "2", "count": "2",
                            "due": "ICPC due within 15 working days of the strategy discussion; now past due",
                            "dashboard": f"/d/casewatch-timeliness?var-la=E06000004&var-team={team}"}}


def test_a_page_reaches_the_teams_on_call_manager_without_child_references(alert_path):
    base, mailbox = alert_path
    post_alerts(base, [icpc_overdue("cp_1", child_ref="ps_9f8e7d")])
    wait_for(lambda: mailbox.messages, 60, "the alert mail")
    rcpts, raw = mailbox.messages[0]
    assert rcpts == ["cp1.manager@example.invalid"]
    assert b"ps_" not in raw and b"9f8e7d" not in raw
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"].startswith("[PAGE] S47 enquiries past 15 working days with no ICPC - team cp_1")
    body = mail.get_payload(decode=True).decode()
    assert "Count: 2" in body
    assert "http://localhost:3000/d/casewatch-timeliness?var-la=E06000004&var-team=cp_1" in body


def am_alerts(base: str, alertname: str) -> list[dict]:
    """Alertmanager's view of the alerts of that name (state, inhibitedBy) - its API, not a guess."""
    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
    with urllib.request.urlopen(f"{base}/api/v2/alerts?{query}", timeout=5) as resp:
        return json.load(resp)


def inhibited_by(base: str, alertname: str) -> list[str]:
    alerts = am_alerts(base, alertname)
    return [fp for a in alerts for fp in a["status"]["inhibitedBy"]]


def pipeline_stalled() -> dict:
    return {"labels": {"alertname": "PipelineStalled", "severity": "page", "measure": "pipeline", "kind": "pipeline",
                       "team": "casewatch_service"},
            "annotations": {"summary": "The engine has 5 events waiting and applied none in 10 minutes: figures "
                                       "are going stale.",
                            "value": "5", "count": "5", "dashboard": "/d/casewatch-pipeline"}}


SENTINEL_SUMMARY = ("An engine worker answers Prometheus but does not report whether it is caught up, so no "
                    "data alert can fire.")


def sentinel_page() -> dict:
    """A pipeline page as the EngineCatchUpUnknown rule renders it: inhibited by nothing and
    inhibiting nothing, routed with the same 10 s group_wait as the data pages."""
    return {"labels": {"alertname": "EngineCatchUpUnknown", "severity": "page", "measure": "pipeline",
                       "kind": "pipeline", "team": "casewatch_service", "job": "casewatch-engine",
                       "instance": "sentinel:29100"},
            "annotations": {"summary": SENTINEL_SUMMARY, "value": "1", "dashboard": "/d/casewatch-pipeline"}}


def engine_catching_up() -> dict:
    return {"labels": {"alertname": "EngineCatchingUp", "severity": "info", "measure": "engine_catch_up",
                       "kind": "pipeline", "team": "casewatch_service", "job": "casewatch-engine",
                       "instance": "127.0.0.1:29100"},
            "annotations": {"summary": "An engine worker is catching up (rebalance, restore, lag or a replay of "
                                       "history): its figures are incomplete and data alerts wait until every "
                                       "worker has caught up.",
                            "value": "0", "dashboard": "/d/casewatch-pipeline"}}


def sentinel_arrived(mailbox: Mailbox) -> bool:
    return any(SENTINEL_SUMMARY in message_from_bytes(raw, policy=policy.default).get_body().get_content()
               for _, raw in mailbox.messages)


def recipients(mailbox: Mailbox) -> list[str]:
    return [r for rcpts, _ in mailbox.messages for r in rcpts]


def subjects(mailbox: Mailbox) -> list[str]:
    return [message_from_bytes(raw, policy=policy.default)["Subject"] for _, raw in mailbox.messages]


def test_a_stalled_pipeline_inhibits_data_alerts(alert_path):
    base, mailbox = alert_path
    post_alerts(base, [pipeline_stalled()])
    wait_for(lambda: am_alerts(base, "PipelineStalled"), 10, "Alertmanager to hold PipelineStalled")
    post_alerts(base, [icpc_overdue("cp_2")])
    wait_for(lambda: inhibited_by(base, "IcpcOverdue"), 10, "the data alert to be inhibited")
    (stalled,) = am_alerts(base, "PipelineStalled")
    (page,) = am_alerts(base, "IcpcOverdue")
    assert page["status"]["state"] == "suppressed" and page["status"]["inhibitedBy"] == [stalled["fingerprint"]]
    # Sentinel: a pipeline page posted after the data alert, same group_wait (10 s); once its mail
    # is here, the data alert's group has been flushed too.
    post_alerts(base, [sentinel_page()])
    wait_for(lambda: sentinel_arrived(mailbox), 60, "the sentinel mail")
    assert set(recipients(mailbox)) == {"casewatch.oncall@example.invalid"}


def test_a_page_is_inhibited_while_the_engine_catches_up_and_sent_once_it_has(fast_alert_path):
    base, mailbox = fast_alert_path
    catching_up_alert = engine_catching_up()
    post_alerts(base, [catching_up_alert])
    wait_for(lambda: am_alerts(base, "EngineCatchingUp"), 10, "Alertmanager to hold EngineCatchingUp")
    post_alerts(base, [icpc_overdue("cp_1")])
    wait_for(lambda: inhibited_by(base, "IcpcOverdue"), 10, "the page to be inhibited")
    (catching_up,) = am_alerts(base, "EngineCatchingUp")
    (page,) = am_alerts(base, "IcpcOverdue")
    assert page["status"]["state"] == "suppressed"
    assert page["status"]["inhibitedBy"] == [catching_up["fingerprint"]]
    # EngineCatchingUp goes to the receiver that sends nothing.
    assert catching_up["receivers"] == [{"name": "board-only"}]
    # Sentinel posted after the page: a pipeline page (not inhibited by a catch-up - the engine's own
    # health still reaches the service on-call) on a route with the same group_wait.
    post_alerts(base, [sentinel_page()])
    wait_for(lambda: sentinel_arrived(mailbox), 60, "the sentinel mail")
    assert recipients(mailbox) == ["casewatch.oncall@example.invalid"]
    # Caught up: EngineCatchingUp resolves, the inhibition lifts at once and the page goes out.
    catching_up_alert["endsAt"] = datetime.now(timezone.utc).isoformat()
    post_alerts(base, [catching_up_alert])
    wait_for(lambda: inhibited_by(base, "IcpcOverdue") == [], 10, "the inhibition to lift")
    wait_for(lambda: "cp1.manager@example.invalid" in recipients(mailbox), 60, "the page once caught up")
    (page_mail,) = [s for s in subjects(mailbox) if s.startswith("[PAGE] S47")]
    assert "team cp_1" in page_mail
    # The catch-up itself was never mailed.
    assert not any("catch" in s.lower() for s in subjects(mailbox))


def test_the_manager_gets_the_all_clear(fast_alert_path):
    base, mailbox = fast_alert_path
    page = icpc_overdue("cp_1")
    post_alerts(base, [page])
    wait_for(lambda: mailbox.messages, 60, "the page")
    page["endsAt"] = datetime.now(timezone.utc).isoformat()  # as Prometheus reports a resolved alert
    post_alerts(base, [page])
    wait_for(lambda: len(mailbox.messages) >= 2, 60, "the all-clear")
    (rcpts, raw) = mailbox.messages[1]
    assert rcpts == ["cp1.manager@example.invalid"]
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == ("[RESOLVED] S47 enquiries past 15 working days with no ICPC - "
                               "team cp_1 (E06000004): all clear")
    assert b"ps_" not in raw
