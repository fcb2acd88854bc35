"""Property: whatever text is planted in an alert (any label, any annotation, new keys, the group's
labels), the mail the notifier builds never carries it; only our rules' words, bounded codes and
numbers arrive. Generated names are words of letters (the shape the old free-text filter let
through), checked case-insensitively in the whole rendered mail (headers and body)."""
from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.notifier.mail import Allowed, RuleCatalogue, DEFAULT_RULES_DIR, compose, sanitise_group
from services.notifier.rota import OnCall

ALLOWED = Allowed(RuleCatalogue.load(DEFAULT_RULES_DIR), teams=frozenset({"cp_1", "cin_1"}),
                  la_codes=frozenset({"E06000004"}))
TO = OnCall(name="Duty Manager", email="duty@example.invalid", hours="in_hours", source="team")

BASE = {"status": "firing", "startsAt": "2026-01-12T10:00:00Z",
        "labels": {"alertname": "IcpcOverdue", "la": "E06000004", "team": "cp_1", "severity": "page",
                   "measure": "icpc_overdue", "kind": "data"},
        "annotations": {"summary": "Team cp_1: 2 section 47 enquiries are past 15 working days with no "
                                   "initial child protection conference held or decided against.",
                        "value": "2", "count": "2",
                        "due": "ICPC due within 15 working days of the strategy discussion; now past due",
                        "dashboard": "/d/casewatch-timeliness?var-la=E06000004&var-team=cp_1"}}

# Made-up names: capitalised words of 5-10 letters that are not words our rules or mails use.
NAME = st.text("bcdfghjklmnpqrstvwxz", min_size=4, max_size=9).map(lambda s: "Q" + s)
PLACES = st.sampled_from([("labels", k) for k in ("alertname", "la", "team", "severity", "measure", "kind",
                                                   "window", "case_type", "process", "child")]
                         + [("annotations", k) for k in ("summary", "due", "dashboard", "value", "count",
                                                         "description", "runbook_url")]
                         + [("groupLabels", k) for k in ("team", "la", "alertname")]
                         + [("commonLabels", k) for k in ("team", "measure", "severity")])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plants=st.lists(st.tuples(PLACES, NAME, st.sampled_from(["alone", "suffix", "in_words"])),
                       min_size=1, max_size=6),
       status=st.sampled_from(["firing", "resolved"]))
def test_a_planted_name_never_reaches_a_mail(plants, status):
    alert = copy.deepcopy(BASE)
    alert["status"] = status
    payload = {"receiver": "notifier-page", "status": status, "groupLabels": {}, "commonLabels": {},
               "alerts": [alert]}
    for (where, key), name, how in plants:
        target = alert[where] if where in ("labels", "annotations") else payload[where]
        before = str(target.get(key, ""))
        target[key] = {"alone": name, "suffix": f"{before} {name}".strip(),
                       "in_words": f"Team cp_1: {name} has no conference"}[how]
    group = sanitise_group(payload, "http://grafana.example:3000", ALLOWED)
    if not group.alerts and not group.resolved:
        return   # nothing of ours left: no mail at all
    rendered = compose(group, TO, "casewatch@example.invalid").as_string().lower()
    for _, name, _ in plants:
        assert name.lower() not in rendered
