"""The on-call notifier: rota look-up (in and out of London working hours, bank holidays, rota
edits picked up without a restart) and alert mails that never carry a child reference."""
from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.notifier.app import create_app
from services.notifier.rota import RotaError, load_rota, parse_rota
from casewatch.config import NotifierSettings

EXAMPLE = Path(__file__).resolve().parents[4] / "services" / "notifier" / "rota.example.yml"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def rota():
    return load_rota(EXAMPLE)


def test_cp_team_manager_by_weekday_in_hours(rota):
    # Mon 12 Jan 2026 10:00 GMT; Thu 15 Jan 2026 10:00 GMT.
    assert rota.on_call("cp_1", utc(2026, 1, 12, 10, 0)).email == "cp1.manager@example.invalid"
    assert rota.on_call("cp_1", utc(2026, 1, 15, 10, 0)).email == "cp1.deputy@example.invalid"


def test_out_of_hours_goes_to_the_emergency_duty_manager(rota):
    evening = rota.on_call("cp_1", utc(2026, 1, 12, 20, 0))
    assert (evening.email, evening.hours, evening.source) == ("edt.manager@example.invalid", "out_of_hours",
                                                              "out_of_hours")
    assert rota.on_call("cp_1", utc(2026, 1, 17, 11, 0)).email == "edt.manager@example.invalid"  # Saturday


def test_working_hours_are_london_time(rota):
    # Mon 6 Jul 2026 08:30 UTC is 09:30 BST: in hours. Mon 5 Jan 2026 08:30 UTC is 08:30 GMT: not.
    assert rota.on_call("cp_1", utc(2026, 7, 6, 8, 30)).email == "cp1.manager@example.invalid"
    assert rota.on_call("cp_1", utc(2026, 1, 5, 8, 30)).email == "edt.manager@example.invalid"
    # 16:59 BST is in hours, 17:00 BST is not.
    assert rota.on_call("cp_1", utc(2026, 7, 6, 15, 59)).hours == "in_hours"
    assert rota.on_call("cp_1", utc(2026, 7, 6, 16, 0)).hours == "out_of_hours"


def test_bank_holidays_are_out_of_hours(rota):
    # Mon 6 Apr 2026 is Easter Monday (England and Wales).
    assert rota.on_call("cp_1", utc(2026, 4, 6, 10, 0)).email == "edt.manager@example.invalid"


def test_unknown_team_and_authority_wide_alerts_go_to_the_default_duty_manager(rota):
    assert rota.on_call("no_such_team", utc(2026, 1, 12, 10, 0)).email == "duty.manager@example.invalid"
    assert rota.on_call(None, utc(2026, 1, 12, 10, 0)).email == "duty.manager@example.invalid"


def test_service_on_call_covers_any_hour(rota):
    assert rota.on_call("casewatch_service", utc(2026, 1, 17, 3, 0)).email == "casewatch.oncall@example.invalid"


def test_overnight_shift_wraps_past_midnight():
    r = parse_rota({"default": {"name": "D", "email": "d@example.invalid"}, "teams": {"t": [
        {"name": "Night", "email": "n@example.invalid", "days": ["mon"], "start": "22:00", "end": "06:00",
         "hours": "out_of_hours"}]}})
    assert r.on_call("t", utc(2026, 1, 12, 23, 0)).email == "n@example.invalid"   # Mon 23:00
    assert r.on_call("t", utc(2026, 1, 13, 5, 0)).email == "n@example.invalid"    # Tue 05:00
    assert r.on_call("t", utc(2026, 1, 13, 23, 0)).email == "d@example.invalid"   # Tue 23:00


def test_a_malformed_rota_is_rejected_without_quoting_it():
    with pytest.raises(RotaError) as err:
        parse_rota({"default": {"name": "D"}, "teams": {}})
    assert "default" in str(err.value)
    with pytest.raises(RotaError) as err:
        parse_rota({"default": {"name": "D", "email": "d@x.invalid"},
                    "teams": {"t": [{"name": "A", "email": "a@x.invalid", "start": "ps_123"}]}})
    assert "ps_123" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# The HTTP service and the mails
# ---------------------------------------------------------------------------------------------

def webhook(alerts, receiver="notifier-page", **common):
    return {"version": "4", "status": "firing", "receiver": receiver, "groupKey": "{}:{}",
            "groupLabels": {k: v for k, v in common.items() if k in ("alertname", "la", "team")},
            "commonLabels": common, "commonAnnotations": {}, "externalURL": "http://am", "alerts": alerts}


def icpc_alert(**extra_labels):
    return {"status": "firing", "startsAt": "2026-01-12T10:00:00Z",
            "labels": {"alertname": "IcpcTimelinessBelowPage", "la": "E06000004", "team": "cp_1",
                       "severity": "page", "measure": "icpc_timeliness", "kind": "data", "window": "28d",
                       **extra_labels},
            "annotations": {"summary": "Team cp_1: 60% of the 10 initial child protection conferences in the "
                                       "last 28 days were held within 15 working days of the strategy discussion "
                                       "(national 81.4%).",
                            "value": "0.6", "count": "10",
                            "dashboard": "/d/casewatch-timeliness?var-la=E06000004&var-team=cp_1"}}


class Outbox:
    def __init__(self, fail: bool = False):
        self.sent: list[EmailMessage] = []
        self.fail = fail

    def __call__(self, settings, message):
        if self.fail:
            raise ConnectionRefusedError("no SMTP server")
        self.sent.append(message)


WEBHOOK_SECRET = "alertmanager-webhook-secret-0123456789"


def make_client(tmp_path, rota_text=None, when=utc(2026, 1, 12, 10, 0), fail=False, authenticated=True):
    rota_file = tmp_path / "rota.yml"
    rota_file.write_text(rota_text or EXAMPLE.read_text())
    secret = tmp_path / "webhook.secret"
    secret.write_text(WEBHOOK_SECRET + "\n")
    settings = NotifierSettings(rota_file=rota_file, grafana_url="http://grafana.example:3000",
                                smtp_from="casewatch@example.invalid", notifier_webhook_credentials_file=secret)
    outbox = Outbox(fail)
    headers = {"Authorization": f"Bearer {WEBHOOK_SECRET}"} if authenticated else {}
    return TestClient(create_app(settings, now=lambda: when, send=outbox), headers=headers), outbox, rota_file


def test_one_mail_per_group_to_the_teams_on_call_manager(tmp_path):
    client, outbox, _ = make_client(tmp_path)
    reply = client.post("/alerts", json=webhook([icpc_alert()], alertname="IcpcTimelinessBelowPage",
                                                la="E06000004", team="cp_1", severity="page",
                                                measure="icpc_timeliness"))
    assert reply.status_code == 200 and reply.json() == {"mails": 1}
    (mail,) = outbox.sent
    assert mail["To"] == "cp1.manager@example.invalid"
    assert mail["From"] == "casewatch@example.invalid"
    assert mail["Subject"] == ("[PAGE] ICPCs within 15 working days of the strategy discussion - "
                               "team cp_1 (E06000004): 1 alert(s)")
    body = mail.get_content()
    assert "Figure: 60.0% of 10" in body
    assert "Dashboard: http://grafana.example:3000/d/casewatch-timeliness?var-la=E06000004&var-team=cp_1" in body
    assert "Since: Mon 12 Jan 2026 10:00 (London)" in body
    assert "Team cp_1: 60% of the 10 initial child protection conferences" in body


def test_no_child_reference_reaches_the_mail_even_if_an_alert_carries_one(tmp_path):
    client, outbox, _ = make_client(tmp_path)
    bad = icpc_alert(child_ref="ps_7f3a9c", episode_ref="ps_e1", worker_ref="ps_w9", case_id="1234567")
    bad["labels"]["process"] = "ps_7f3a9c"
    bad["annotations"].update({
        "summary": "Child ps_7f3a9c (case 1234567) has no ICPC",
        "due": "ICPC for ps_7f3a9c due 2026-01-20",
        "description": "case 1234567 Jane Doe",
        "dashboard": "/d/casewatch-timeliness?var-child=ps_7f3a9c",
        "count": "ps_7f3a9c",
    })
    reply = client.post("/alerts", json=webhook([bad], alertname="IcpcTimelinessBelowPage", la="E06000004",
                                                team="cp_1", severity="page", child_ref="ps_7f3a9c"))
    assert reply.status_code == 200
    (mail,) = outbox.sent
    text = mail.as_string()
    for leaked in ("ps_", "7f3a9c", "1234567", "Jane Doe", "var-child"):
        assert leaked not in text
    body = mail.get_content()
    assert "team cp_1" in body and "ICPCs within 15 working days" in body
    assert "Figure: 60.0%" in body


def test_a_team_label_that_looks_like_a_reference_is_dropped(tmp_path):
    client, outbox, _ = make_client(tmp_path)
    alert = icpc_alert()
    alert["labels"]["team"] = "ps_123abc"
    client.post("/alerts", json=webhook([alert], team="ps_123abc"))
    (mail,) = outbox.sent
    assert "ps_" not in mail.as_string()
    assert mail["To"] == "duty.manager@example.invalid"   # no usable team: the duty manager


def test_rota_is_read_for_every_alert(tmp_path):
    client, outbox, rota_file = make_client(tmp_path)
    payload = webhook([icpc_alert()], team="cp_1", la="E06000004", severity="page")
    client.post("/alerts", json=payload)
    rota_file.write_text(EXAMPLE.read_text().replace("cp1.manager@example.invalid", "cp1.cover@example.invalid"))
    client.post("/alerts", json=payload)
    assert [m["To"] for m in outbox.sent] == ["cp1.manager@example.invalid", "cp1.cover@example.invalid"]


def test_smtp_failure_answers_503_so_alertmanager_retries_and_is_counted(tmp_path):
    client, _, _ = make_client(tmp_path, fail=True)
    reply = client.post("/alerts", json=webhook([icpc_alert()], team="cp_1"))
    assert reply.status_code == 503
    metrics = client.get("/metrics").text
    assert 'casewatch_notifier_mails_total{outcome="failed"} 1.0' in metrics
    assert 'casewatch_notifier_mails_total{outcome="sent"} 0.0' in metrics


def test_an_unreadable_rota_answers_503(tmp_path):
    client, outbox, rota_file = make_client(tmp_path)
    rota_file.write_text("teams: [not, a, mapping")
    assert client.post("/alerts", json=webhook([icpc_alert()], team="cp_1")).status_code == 503
    assert outbox.sent == []


def test_a_resolved_only_group_sends_the_all_clear(tmp_path):
    # alertmanager.yml has send_resolved: true, so the manager who was paged hears when it clears.
    client, outbox, _ = make_client(tmp_path)
    resolved = icpc_alert(child_ref="ps_9f8e7d")
    resolved["status"] = "resolved"
    assert client.post("/alerts", json=webhook([resolved], team="cp_1")).json() == {"mails": 1}
    (mail,) = outbox.sent
    assert mail["To"] == "cp1.manager@example.invalid"
    assert mail["Subject"] == ("[RESOLVED] ICPCs within 15 working days of the strategy discussion - "
                               "team cp_1 (E06000004): all clear")
    body = mail.get_content()
    assert "1 alert(s) about ICPCs within 15 working days of the strategy discussion no longer hold" in body
    assert "ps_" not in body and "9f8e7d" not in body


def test_bad_bodies_are_rejected(tmp_path):
    client, outbox, _ = make_client(tmp_path)
    assert client.post("/alerts", json={"nothing": 1}).status_code == 400
    assert client.post("/alerts", content=b"not json", headers={"content-type": "application/json"}).status_code == 400
    assert outbox.sent == []


def test_healthz_and_metrics(tmp_path):
    client, _, _ = make_client(tmp_path)
    assert client.get("/healthz").json() == {"status": "ok"}
    client.post("/alerts", json=webhook([icpc_alert()], team="cp_1"))
    assert 'casewatch_notifier_mails_total{outcome="sent"} 1.0' in client.get("/metrics").text


def test_out_of_hours_page_goes_to_the_emergency_duty_manager(tmp_path):
    client, outbox, _ = make_client(tmp_path, when=utc(2026, 1, 12, 22, 0))
    client.post("/alerts", json=webhook([icpc_alert()], team="cp_1"))
    (mail,) = outbox.sent
    assert mail["To"] == "edt.manager@example.invalid"
    assert "(out of hours)" in mail.get_content()


# ---------------------------------------------------------------------------------------------
# Doors: only Alertmanager, only our rules
# ---------------------------------------------------------------------------------------------

def test_a_post_without_alertmanagers_credentials_is_401_and_mails_nothing(tmp_path):
    client, outbox, _ = make_client(tmp_path, authenticated=False)
    payload = webhook([icpc_alert()], team="cp_1")
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": f"Basic {WEBHOOK_SECRET}"},
                    {"Authorization": f"Bearer {WEBHOOK_SECRET}x"}):
        reply = client.post("/alerts", json=payload, headers=headers)
        assert reply.status_code == 401 and WEBHOOK_SECRET not in reply.text
    assert outbox.sent == []
    assert 'casewatch_notifier_webhooks_total{outcome="unauthorized"} 4.0' in client.get("/metrics").text
    ok = client.post("/alerts", json=payload, headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"})
    assert ok.status_code == 200 and len(outbox.sent) == 1


def test_the_notifier_does_not_start_without_credentials(tmp_path):
    from casewatch.config import WebhookSecretError
    settings = NotifierSettings(notifier_webhook_credentials_file=tmp_path / "missing")
    with pytest.raises(WebhookSecretError):
        create_app(settings)


def test_a_planted_name_in_an_annotation_never_reaches_a_mail_and_is_counted(tmp_path):
    # Plain words, no digits or reference shapes: the old free-text filter let these through.
    client, outbox, _ = make_client(tmp_path)
    alert = icpc_alert()
    alert["annotations"]["summary"] = "Jane Smith aged seven of Rose Cottage Mill Lane has had no conference"
    alert["annotations"]["due"] = "conference for Jane Smith due on Friday"
    alert["annotations"]["description"] = "Jane Smith, Rose Cottage"
    alert["labels"]["child_name"] = "Jane Smith"
    assert client.post("/alerts", json=webhook([alert], team="cp_1")).status_code == 200
    (mail,) = outbox.sent
    text = mail.as_string()
    for planted in ("Jane", "Smith", "Rose Cottage", "Mill Lane", "seven", "child_name"):
        assert planted not in text
    assert "Figure: 60.0% of 10" in mail.get_content()   # what our rule said still arrives
    metrics = client.get("/metrics").text
    assert 'casewatch_notifier_dropped_total{part="annotation",reason="not_from_rule"} 2.0' in metrics
    assert 'casewatch_notifier_dropped_total{part="annotation",reason="unknown_key"} 1.0' in metrics
    assert 'casewatch_notifier_dropped_total{part="label",reason="unknown_key"} 1.0' in metrics


def test_a_planted_name_in_a_rule_slot_or_label_is_dropped(tmp_path):
    client, outbox, _ = make_client(tmp_path)
    alert = icpc_alert()
    # the rule's own words, with a name where the team slot is: the slot must equal the team label
    alert["annotations"]["summary"] = alert["annotations"]["summary"].replace("Team cp_1", "Team JaneSmith")
    alert["labels"]["measure"] = "jane_smith_case"    # measure-shaped, but no rule of ours sets it
    alert["labels"]["team"] = "jane_smith"             # team-shaped, but not a configured team
    alert["labels"]["window"] = "28d"
    client.post("/alerts", json=webhook([alert]))
    (mail,) = outbox.sent
    assert "jane" not in mail.as_string().lower()
    assert mail["To"] == "duty.manager@example.invalid"   # no usable team: the duty manager
    metrics = client.get("/metrics").text
    assert 'casewatch_notifier_dropped_total{part="label",reason="not_from_rule"} 1.0' in metrics
    assert 'casewatch_notifier_dropped_total{part="label",reason="not_configured"} 1.0' in metrics


def test_an_alert_that_is_not_one_of_our_rules_is_dropped_whole_and_counted(tmp_path):
    client, outbox, _ = make_client(tmp_path)
    forged = icpc_alert()
    forged["labels"]["alertname"] = "ChildAtRisk"
    reply = client.post("/alerts", json=webhook([forged], alertname="ChildAtRisk", team="cp_1"))
    assert reply.json() == {"mails": 0} and outbox.sent == []
    assert 'casewatch_notifier_dropped_total{part="alert",reason="unknown_alert"} 1.0' in client.get("/metrics").text


def test_mails_carry_date_and_message_id(tmp_path):
    from email.utils import parsedate_to_datetime
    client, outbox, _ = make_client(tmp_path)
    client.post("/alerts", json=webhook([icpc_alert()], team="cp_1"))
    resolved = icpc_alert()
    resolved["status"] = "resolved"
    client.post("/alerts", json=webhook([resolved], team="cp_1"))
    assert len(outbox.sent) == 2
    ids = set()
    for mail in outbox.sent:
        assert parsedate_to_datetime(mail["Date"]).tzinfo is not None
        assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@example.invalid>")
        ids.add(mail["Message-ID"])
    assert len(ids) == 2


def test_every_annotation_our_rules_render_is_recognised():
    """The rendered annotations promtool checks in prometheus/tests/alerts_test.yml (written from
    the rules by hand) all match their rule's template, so real alerts keep their text."""
    import yaml

    from services.notifier.mail import DEFAULT_RULES_DIR, RuleCatalogue
    catalogue = RuleCatalogue.load(DEFAULT_RULES_DIR)
    cases = yaml.safe_load((DEFAULT_RULES_DIR.parent / "tests" / "alerts_test.yml").read_text())
    checked = 0
    for test in cases["tests"]:
        for rule_test in test.get("alert_rule_test") or []:
            for expected in rule_test.get("exp_alerts") or []:
                labels = {"alertname": rule_test["alertname"], **(expected.get("exp_labels") or {})}
                for key in ("summary", "due", "dashboard"):
                    text = (expected.get("exp_annotations") or {}).get(key)
                    if text is not None:
                        assert catalogue.rendered_by_rule(rule_test["alertname"], key, text, labels), (key, text)
                        checked += 1
    assert checked >= 20


def test_read_endpoints_can_live_on_a_listener_of_their_own(tmp_path):
    """With CASEWATCH_NOTIFIER_READ_PORT set, /healthz and /metrics answer only on the read app (a
    monitoring interface); the webhook's listener serves /alerts alone."""
    rota_file = tmp_path / "rota.yml"
    rota_file.write_text(EXAMPLE.read_text())
    secret = tmp_path / "webhook.secret"
    secret.write_text(WEBHOOK_SECRET + "\n")
    settings = NotifierSettings(rota_file=rota_file, notifier_webhook_credentials_file=secret,
                                notifier_read_port=1)  # serve() binds it; the apps are what is tested
    app = create_app(settings, now=lambda: utc(2026, 1, 12, 10, 0), send=Outbox(False))
    with TestClient(app) as writer, TestClient(app.state.read_app) as reader:
        assert writer.get("/metrics").status_code == 404
        assert writer.get("/healthz").status_code == 404
        assert reader.get("/healthz").json() == {"status": "ok"}
        assert b"casewatch_notifier" in reader.get("/metrics").content
        assert reader.post("/alerts", json={}).status_code in (404, 405)
        assert writer.post("/alerts", json={}).status_code == 401  # the webhook stays, locked
