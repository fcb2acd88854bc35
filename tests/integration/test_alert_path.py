"""The whole alert path on the real stack: a staff shortage in team cp_1 makes its ICPC timeliness
drop; Prometheus (with prometheus/rules/*.yml) fires IcpcTimelinessBelowPage for cp_1 only;
Alertmanager routes it to the notifier; a mail reaches a local SMTP server addressed to cp_1's
on-call manager from the rota, and it holds no child reference.

Needs: the session `local_stack` (its Alertmanager config rendered with notifier_port), the engine,
and the simulator's `staff_shortage` scenario. The alert has `for: 15m`, so this test runs for
about 20 minutes."""
from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import uvicorn
from aiosmtpd.controller import Controller

from casewatch.topics import ensure_topics
from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from services.simulator.authority import Scenario, authority_events
from tests.support.engine_runs import REF_FIELDS, pseudonym, publish, wait_until_settled

from tests.conftest import free_port
from tests.support.mailbox import Mailbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
UNTIL = date(2026, 11, 2)


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
    local_stack.start_engine(engine_settings)
    local_stack.start_engine(engine_settings, name="engine-2", metrics_port=second_port)
    try:
        wait_until_settled([f"http://{engine_settings.host}:{port}/metrics"
                            for port in (engine_settings.engine_metrics_port, second_port)])
        assert local_stack.query('ALERTS{alertname="EngineWorkerDown"}') == []
        ratio = local_stack.wait_for_query('casewatch:icpc_timeliness:ratio{team="cp_1",window="28d"}',
                                           lambda r: len(r) == 1, timeout=120)
        assert float(ratio[0]["value"][1]) < 0.70
        firing = local_stack.wait_for_query(
            'ALERTS{alertname="IcpcTimelinessBelowPage",alertstate="firing"}', lambda r: len(r) > 0,
            timeout=20 * 60)
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
        body = mail.get_payload(decode=True).decode()
        assert "ICPCs within 15 working days of the strategy discussion" in body
        for _, other in mailbox.messages:
            assert b"ps_" not in other
    finally:
        local_stack.stop("engine")
        local_stack.stop("engine-2")
        server.should_exit = True
        thread.join(timeout=10)
        smtp.stop()
