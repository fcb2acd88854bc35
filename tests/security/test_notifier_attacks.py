"""Attacks on the alert path, with the real `casewatch notifier` process and a real Alertmanager
whose config `casewatch stack up` renders (webhook credentials from the state dir):

* a forged post to the notifier's /alerts (no, wrong or other-scheme credentials) is 401 and no
  mail goes out;
* an alert posted to Alertmanager's own API (which takes anything) with a made-up child's name,
  age and address in its annotations and labels reaches the on-call manager only as our rule's
  words: the planted text is in no mail; an alert that is not one of our rules sends no mail;
* the local stack's secrets are 600 in a 700 state dir, and Prometheus's admin API is off.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from casewatch.config import Settings
from casewatch.stack.components import render_alertmanager_config
from tests.conftest import free_port
from tests.support.mailbox import Mailbox

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PLANTED = ("Jane", "Smith", "Rose Cottage", "Mill Lane", "aged seven")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except OSError:
        return False


def _post(url: str, payload, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def alert_path(tmp_path):
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    state = tmp_path / "state"
    settings = Settings(state_dir=state, notifier_port=free_port())
    am_config = render_alertmanager_config(settings)        # generates the webhook secret (600)
    rota = tmp_path / "rota.yml"
    rota.write_text("default: {name: Duty manager, email: duty.manager@example.invalid}\n"
                    "teams:\n  cp_1:\n    - {name: CP manager, email: cp1.manager@example.invalid, hours: any}\n")
    env = {**os.environ, "CASEWATCH_STATE_DIR": str(state), "CASEWATCH_SMTP_HOST": "127.0.0.1",
           "CASEWATCH_SMTP_PORT": str(smtp_port), "CASEWATCH_ROTA_FILE": str(rota)}
    notifier_log = open(tmp_path / "notifier.log", "w")
    notifier = subprocess.Popen([sys.executable, "-m", "casewatch.cli", "notifier", "--port",
                                 str(settings.notifier_port)], env=env, cwd=REPO, stdout=notifier_log,
                                stderr=subprocess.STDOUT)
    am_port = free_port()
    am = subprocess.Popen(["prometheus-alertmanager", f"--config.file={am_config}",
                           f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                           "--cluster.listen-address=", "--log.level=warn"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    notifier_url = f"http://127.0.0.1:{settings.notifier_port}"
    am_url = f"http://127.0.0.1:{am_port}"
    try:
        _wait(lambda: _answers(notifier_url + "/healthz"), 60, "the notifier")
        _wait(lambda: _answers(am_url + "/-/ready"), 60, "Alertmanager")
        yield notifier_url, am_url, mailbox, state
    finally:
        notifier.terminate()
        am.terminate()
        notifier.wait(timeout=20)
        am.wait(timeout=20)
        notifier_log.close()
        smtp.stop()


def icpc_overdue(**extra_labels) -> dict:
    return {"labels": {"alertname": "IcpcOverdue", "la": "E06000004", "team": "cp_1", "severity": "page",
                       "measure": "icpc_overdue", "kind": "data", **extra_labels},
            "annotations": {"summary": "Team cp_1: 2 section 47 enquiries are past 15 working days with no "
                                       "initial child protection conference held or decided against.",
                            "value": "2", "count": "2",
                            "due": "ICPC due within 15 working days of the strategy discussion; now past due",
                            "dashboard": "/d/casewatch-timeliness?var-la=E06000004&var-team=cp_1"}}


def test_forged_posts_to_the_notifier_are_401_and_send_no_mail(alert_path):
    notifier_url, _, mailbox, state = alert_path
    payload = {"version": "4", "status": "firing", "receiver": "notifier-page", "groupLabels": {},
               "commonLabels": {"team": "cp_1"}, "alerts": [{"status": "firing", **icpc_overdue()}]}
    secret = (state / "notifier-webhook.secret").read_text().strip()
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": f"Basic {secret}"},
                    {"Authorization": f"Bearer {secret[:-1]}"}):
        assert _post(notifier_url + "/alerts", payload, headers) == 401
    time.sleep(1)
    assert mailbox.messages == []
    metrics = urllib.request.urlopen(notifier_url + "/metrics", timeout=5).read().decode()
    assert 'casewatch_notifier_webhooks_total{outcome="unauthorized"} 4.0' in metrics


def test_a_name_planted_through_alertmanagers_api_never_reaches_a_mail(alert_path):
    _, am_url, mailbox, _ = alert_path
    planted = icpc_overdue(child="Jane Smith")
    planted["annotations"]["summary"] = ("Jane Smith aged seven of Rose Cottage Mill Lane has had no "
                                         "conference")
    planted["annotations"]["description"] = "Jane Smith, Rose Cottage, Mill Lane"
    not_ours = icpc_overdue(alertname="ChildAtRisk", team="cp_1")
    not_ours["annotations"]["summary"] = "Jane Smith aged seven is at risk"
    posted = time.monotonic()
    assert _post(am_url + "/api/v2/alerts", [planted, not_ours]) == 200
    _wait(lambda: mailbox.messages, 90, "the alert mail")
    # 12 s after the post, longer than the page route's group_wait (10 s): both alerts' groups were
    # created by that one post, so a ChildAtRisk mail would be here by now (counted from the post,
    # not from the first mail, which itself came only after the group_wait)
    time.sleep(max(0.0, posted + 12 - time.monotonic()))
    assert len(mailbox.messages) == 1                # the forged ChildAtRisk alert sent nothing
    rcpts, raw = mailbox.messages[0]
    assert rcpts == ["cp1.manager@example.invalid"]
    text = raw.decode(errors="replace")
    for word in PLANTED:
        assert word not in text
    assert "S47 enquiries past 15 working days with no ICPC" in text   # our rule's measure still arrives


def test_the_webhook_secret_is_600_in_a_700_state_dir(alert_path):
    *_, state = alert_path
    assert oct((state / "notifier-webhook.secret").stat().st_mode & 0o777) == "0o600"


def test_the_session_stack_state_dir_is_700_and_prometheus_admin_api_is_off(local_stack):
    state = local_stack.settings.state_dir
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert oct((state / "notifier-webhook.secret").stat().st_mode & 0o777) == "0o600"
    for path in ("/api/v1/admin/tsdb/snapshot", "/api/v1/admin/tsdb/delete_series?match[]=up",
                 "/api/v1/admin/tsdb/clean_tombstones"):
        req = urllib.request.Request(local_stack.prometheus_url + path, data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        # Prometheus 2.42 answers 500 {"errorType":"unavailable","error":"admin APIs disabled"}
        assert b"admin APIs disabled" in refused.value.read(), path
    assert not list((state / "prometheus" / "data").glob("snapshots/*"))
