"""Alert mails: what of an Alertmanager webhook may go into a mail, and the mail itself.

Nothing is copied from an alert unless its name is on an allow-list AND its value has the shape
that field is known to have (a bounded code, a number, a dashboard path). Free text (the summary,
the due phrase) is kept only when it holds nothing that looks like a reference: a pseudonym
(``ps_...``), a long digit or hex run, an e-mail address. So a child reference that slipped into
a label or annotation upstream never reaches a mailbox.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from services.notifier.rota import OnCall

LONDON = ZoneInfo("Europe/London")

LABEL_SHAPES: dict[str, re.Pattern[str]] = {
    "alertname": re.compile(r"[A-Z][A-Za-z0-9]{0,63}"),
    "la": re.compile(r"[EWSN]\d{8}"),
    "team": re.compile(r"[a-z][a-z0-9_]{0,39}"),
    "severity": re.compile(r"page|warn"),
    "measure": re.compile(r"[a-z][a-z0-9_]{0,39}"),
    "kind": re.compile(r"data|pipeline"),
    "window": re.compile(r"28d|12m|fytd"),
    "case_type": re.compile(r"cin|cp|lac|care_leaver"),
    "process": re.compile(r"referral_decision|assessment|icpc|cp_review|lac_review_first|lac_review|statutory_visit"),
}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", re.IGNORECASE)
FREE_TEXT = re.compile(r"[A-Za-z0-9_ ,;:.()%/'+\-]{1,400}")
DASHBOARD_PATH = re.compile(r"/d/[a-z0-9-]{1,60}(?:\?(?:[a-z-]{1,20}=[A-Za-z0-9_.-]{1,40}&?){0,6})?")
LA_CODE = re.compile(r"\b[EWSN]\d{8}\b")
REFERENCE_LIKE = re.compile(r"ps_|\d{5,}|[0-9a-f]{12,}|@", re.IGNORECASE)

MEASURE_TITLES = {
    "assessment_timeliness": "Assessments within 45 working days",
    "icpc_timeliness": "ICPCs within 15 working days of the strategy discussion",
    "cp_review_timeliness": "CP reviews on time",
    "lac_review_timeliness": "LAC reviews on time",
    "icpc_overdue": "S47 enquiries past 15 working days with no ICPC",
    "cp_review_overdue": "CP review overdue by more than 5 working days",
    "lac_review_first_overdue": "First LAC review past 20 working days",
    "assessment_overdue": "Assessment open more than 60 working days",
    "unallocated_cp": "Unallocated child protection case",
    "unallocated_cases": "Unallocated cases",
    "referral_surge": "Referral surge",
    "rereferral": "Re-referrals within 12 months",
    "vacancy_rate": "Social worker vacancy rate",
    "caseload": "Caseload per case-holding FTE",
    "pipeline": "casewatch pipeline",
    "dead_letters": "Dead-lettered events",
    "ingest_rejections": "Events rejected at ingest",
    "calendar": "Bank-holiday calendar",
}
RATIO_MEASURES = {"assessment_timeliness", "icpc_timeliness", "cp_review_timeliness", "lac_review_timeliness",
                  "rereferral", "vacancy_rate"}


def looks_like_reference(text: str) -> bool:
    return bool(REFERENCE_LIKE.search(LA_CODE.sub("", text)))


def safe_label(name: str, value: object) -> str | None:
    shape = LABEL_SHAPES.get(name)
    if shape is None or not isinstance(value, str) or not shape.fullmatch(value):
        return None
    if name != "la" and looks_like_reference(value):
        return None
    return value


def safe_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    if not FREE_TEXT.fullmatch(text) or looks_like_reference(text):
        return None
    return text


def safe_number(value: object) -> float | None:
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def safe_dashboard(value: object, grafana_url: str) -> str | None:
    if not isinstance(value, str):
        return None
    path = value.strip()
    if path.startswith(("http://", "https://")):
        parts = urlsplit(path)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    if not DASHBOARD_PATH.fullmatch(path) or looks_like_reference(LA_CODE.sub("", path)):
        return None
    return grafana_url.rstrip("/") + path


@dataclass
class SafeAlert:
    labels: dict[str, str]
    summary: str | None = None
    value: float | None = None
    count: float | None = None
    due: str | None = None
    dashboard: str | None = None
    starts_at: datetime | None = None


def sanitise_alert(alert: dict, grafana_url: str) -> SafeAlert:
    labels = {}
    for name, value in (alert.get("labels") or {}).items():
        kept = safe_label(name, value)
        if kept is not None:
            labels[name] = kept
    ann = alert.get("annotations") or {}
    starts = None
    raw_start = alert.get("startsAt")
    if isinstance(raw_start, str):
        try:
            starts = datetime.fromisoformat(raw_start.replace("Z", "+00:00"))
        except ValueError:
            starts = None
    return SafeAlert(labels=labels, summary=safe_text(ann.get("summary")), value=safe_number(ann.get("value")),
                     count=safe_number(ann.get("count")), due=safe_text(ann.get("due")),
                     dashboard=safe_dashboard(ann.get("dashboard"), grafana_url), starts_at=starts)


def _format_value(alert: SafeAlert) -> str | None:
    if alert.value is None:
        return None
    measure = alert.labels.get("measure", "")
    if measure in RATIO_MEASURES:
        text = f"{alert.value * 100:.1f}%"
        return f"{text} of {alert.count:g}" if alert.count is not None else text
    return f"{alert.value:g}"


def measure_title(measure: str | None) -> str:
    if not measure:
        return "casewatch alert"
    return MEASURE_TITLES.get(measure, measure.replace("_", " "))


@dataclass
class AlertGroup:
    receiver: str
    team: str | None
    la: str | None
    severity: str
    measure: str | None
    alerts: list[SafeAlert] = field(default_factory=list)
    resolved: list[SafeAlert] = field(default_factory=list)  # cleared since Alertmanager's last mail


def sanitise_group(payload: dict, grafana_url: str) -> AlertGroup:
    firing = [a for a in payload.get("alerts") or [] if isinstance(a, dict) and a.get("status", "firing") == "firing"]
    alerts = [sanitise_alert(a, grafana_url) for a in firing]
    resolved = [sanitise_alert(a, grafana_url) for a in payload.get("alerts") or []
                if isinstance(a, dict) and a.get("status") == "resolved"]
    common = {k: v for k, v in (payload.get("commonLabels") or {}).items()}
    group = {k: v for k, v in (payload.get("groupLabels") or {}).items()}

    def pick(name: str) -> str | None:
        for source in (group, common):
            kept = safe_label(name, source.get(name))
            if kept:
                return kept
        values = {a.labels.get(name) for a in alerts or resolved} - {None}
        return values.pop() if len(values) == 1 else None

    severity = pick("severity") or ("page" if any(a.labels.get("severity") == "page" for a in alerts or resolved)
                                    else "warn")
    receiver = payload.get("receiver") if isinstance(payload.get("receiver"), str) else ""
    receiver = receiver if re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", receiver or "") else "notifier"
    return AlertGroup(receiver=receiver, team=pick("team"), la=pick("la"), severity=severity,
                      measure=pick("measure"), alerts=alerts, resolved=resolved)


def compose(group: AlertGroup, to: OnCall, sender: str) -> EmailMessage:
    where = f"team {group.team}" if group.team else "the whole authority"
    if group.la:
        where += f" ({group.la})"
    title = measure_title(group.measure)
    msg = EmailMessage()
    if not group.alerts:  # everything in the group has cleared: the all-clear
        msg["Subject"] = f"[RESOLVED] {title} - {where}: all clear"
        msg["From"] = sender
        msg["To"] = to.email
        lines = [f"casewatch all-clear for {where}.",
                 f"Sent to {to.name} as the on-call manager ({to.hours.replace('_', ' ')}).", "",
                 f"{len(group.resolved)} alert(s) about {title} no longer hold:", ""]
        for alert in group.resolved:
            lines.append(f"[RESOLVED] {measure_title(alert.labels.get('measure') or group.measure)}")
            for label in ("team", "case_type", "process", "window"):
                if label in alert.labels:
                    lines.append(f"  {label.replace('_', ' ').capitalize()}: {alert.labels[label]}")
            if alert.dashboard:
                lines.append(f"  Dashboard: {alert.dashboard}")
            lines.append("")
        lines += ["This mail names no child.", ""]
        msg.set_content("\n".join(lines))
        return msg
    msg["Subject"] = f"[{group.severity.upper()}] {title} - {where}: {len(group.alerts)} alert(s)"
    msg["From"] = sender
    msg["To"] = to.email
    lines = [
        f"casewatch alert for {where}.",
        f"Sent to {to.name} as the on-call manager ({to.hours.replace('_', ' ')}).",
        "",
    ]
    dashboards = []
    for alert in group.alerts:
        lines.append(f"[{alert.labels.get('severity', group.severity).upper()}] "
                     f"{measure_title(alert.labels.get('measure') or group.measure)}")
        if alert.summary:
            lines.append(f"  {alert.summary}")
        for label in ("team", "case_type", "process", "window"):
            if label in alert.labels:
                lines.append(f"  {label.replace('_', ' ').capitalize()}: {alert.labels[label]}")
        value = _format_value(alert)
        if value:
            lines.append(f"  Figure: {value}")
        if alert.count is not None and alert.labels.get("measure") not in RATIO_MEASURES:
            lines.append(f"  Count: {alert.count:g}")
        if alert.due:
            lines.append(f"  Due: {alert.due}")
        if alert.starts_at:
            lines.append(f"  Since: {alert.starts_at.astimezone(LONDON):%a %d %b %Y %H:%M} (London)")
        if alert.dashboard:
            lines.append(f"  Dashboard: {alert.dashboard}")
            dashboards.append(alert.dashboard)
        lines.append("")
    if group.resolved:
        lines += [f"{len(group.resolved)} other alert(s) in this group have cleared.", ""]
    lines += ["This mail names no child. Open the case system for the children concerned.", ""]
    msg.set_content("\n".join(lines))
    return msg
