"""Alertmanager -> notifier -> SMTP, for real: the project's alertmanager.yml (rendered as the
local stack renders it) run by prometheus-alertmanager, our notifier, and an aiosmtpd server, all
on free loopback ports. An alert posted to Alertmanager arrives as a mail to the team's on-call
manager from the rota, holding no child reference; a stalled pipeline inhibits the data alerts."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import uvicorn
import yaml
from aiosmtpd.controller import Controller

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings

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


@pytest.fixture
def alert_path(tmp_path):
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()

    rota = tmp_path / "rota.yml"
    shutil.copy(ROOT / "services" / "notifier" / "rota.example.yml", rota)
    notifier_port = free_port()
    # /alerts needs Alertmanager's bearer credentials: the secret render_alertmanager_config (below)
    # points Alertmanager at, in the same state dir.
    from services.notifier.settings import WEBHOOK_SECRET_NAME, ensure_webhook_secret
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
    wait_for(lambda: server.started, 20, "the notifier")

    from casewatch.config import Settings
    from casewatch.stack.components import render_alertmanager_config
    config = render_alertmanager_config(Settings(state_dir=tmp_path, notifier_port=notifier_port))
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
    try:
        wait_for(ready, 30, "Alertmanager")
        yield base, mailbox
    finally:
        am.terminate()
        am.wait(timeout=20)
        server.should_exit = True
        thread.join(timeout=10)
        smtp.stop()


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


def test_a_stalled_pipeline_inhibits_data_alerts(alert_path):
    base, mailbox = alert_path
    post_alerts(base, [{"labels": {"alertname": "PipelineStalled", "severity": "page", "measure": "pipeline",
                                   "kind": "pipeline", "team": "casewatch_service"},
                        "annotations": {"summary": "The engine has 5 events waiting and applied none in 10 "
                                                   "minutes: figures are going stale.",
                                        "value": "5", "dashboard": "/d/casewatch-pipeline"}}])
    time.sleep(2)  # the inhibiting alert is known before the data alert arrives
    post_alerts(base, [icpc_overdue("cp_2")])
    wait_for(lambda: mailbox.messages, 60, "the pipeline mail")
    time.sleep(15)  # longer than the page route's group_wait: a cp_2 mail would have come by now
    recipients = [r for rcpts, _ in mailbox.messages for r in rcpts]
    assert recipients == ["casewatch.oncall@example.invalid"]
