"""Alert mails: what of an Alertmanager webhook may go into a mail, and the mail itself.

A mail is built only from the labels and annotations of *our* rules (``prometheus/rules/*.yml``,
read by ``RuleCatalogue``):

* an alert whose ``alertname`` is not one of our alert rules is dropped whole;
* only the annotation keys our rules write (``summary``, ``value``, ``count``, ``due``,
  ``dashboard``) are read, and a free-text annotation (``summary``, ``due``, ``dashboard``) is kept
  only when it is what that rule's template renders: its fixed words, with each ``$labels.X`` slot
  equal to the alert's (checked) label X and every other slot a number, a percentage or a duration.
  So text planted in an annotation (a child's name, age, address) never reaches a mailbox, even
  when it looks like ordinary words;
* a label is kept only when it is on the allow-list and has that label's shape (a bounded code);
  ``team`` and ``la`` must be teams and authorities this deployment is configured with.

Anything dropped is counted (``casewatch_notifier_dropped_total{part, reason}``, bounded labels).
Every mail carries ``Date:`` and ``Message-ID:`` headers.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import yaml
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


ANNOTATION_KEYS = ("summary", "value", "count", "due", "dashboard")
TEMPLATED_KEYS = ("summary", "due", "dashboard")
RULE_SET_LABELS = ("severity", "measure", "kind")   # set by our rules themselves, never by a series
DROP_PARTS = ("alert", "label", "annotation")
DROP_REASONS = ("unknown_alert", "unknown_key", "shape", "not_from_rule", "not_configured")

_SLOT = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LABEL_SLOT = re.compile(r"^-?\s*\$labels\.([A-Za-z_][A-Za-z0-9_]*)\s*-?$")
# A rendered $value / humanize / humanizePercentage / humanizeDuration / printf "%.1f" / query value.
_NUMBERISH = (r"[-+]?\d[\d.,]*(?:e[+-]?\d+)?(?:%|ms|s|m|h|d|w|y|k|M|G|T)?"
              r"(?: \d[\d.,]*(?:ms|s|m|h|d|w|y))*")


def _normalise(text: str) -> str:
    return " ".join(text.split())


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex of everything ``template`` (a Prometheus annotation) can render: the fixed text as
    it is; a ``$labels.X`` slot as a named group (checked against the alert's label afterwards);
    any other slot as an optional number, percentage or duration."""
    template = _normalise(template)
    parts, pos = [], 0
    for i, slot in enumerate(_SLOT.finditer(template)):
        parts.append(re.escape(template[pos:slot.start()]))
        label = _LABEL_SLOT.match(slot.group(1).strip())
        if label:
            parts.append(f"(?P<L{i}_{label.group(1)}>[A-Za-z0-9_]{{1,40}})")
        else:
            parts.append(f"(?:{_NUMBERISH})?")
        pos = slot.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts))


@dataclass
class RuleCatalogue:
    """Our alert rules: alert name -> annotation key -> the pattern of what it renders; and the
    values our rules give their fixed labels (severity, measure, kind)."""
    alerts: dict[str, dict[str, re.Pattern[str]]]
    label_values: dict[str, frozenset[str]] = field(default_factory=dict)
    teams: frozenset[str] = frozenset()   # teams our rules name themselves (e.g. the service on-call)

    @classmethod
    def load(cls, rules_dir: Path) -> "RuleCatalogue":
        alerts: dict[str, dict[str, re.Pattern[str]]] = {}
        values: dict[str, set[str]] = {}
        for path in sorted(Path(rules_dir).glob("*.yml")):
            doc = yaml.safe_load(path.read_text()) or {}
            for group in doc.get("groups") or []:
                for rule in group.get("rules") or []:
                    if "alert" not in rule:
                        continue
                    annotations = rule.get("annotations") or {}
                    for name, value in (rule.get("labels") or {}).items():
                        if (name in RULE_SET_LABELS or name == "team") and "{{" not in str(value):
                            values.setdefault(name, set()).add(str(value))
                    alerts[rule["alert"]] = {k: template_pattern(str(v)) for k, v in annotations.items()
                                             if k in TEMPLATED_KEYS}
        if not alerts:
            raise ValueError(f"no alert rules found in {rules_dir}")
        teams = frozenset(values.pop("team", ()))
        return cls(alerts, {k: frozenset(v) for k, v in values.items()}, teams)

    def rendered_by_rule(self, alertname: str, key: str, text: str, labels: dict[str, str]) -> bool:
        pattern = self.alerts.get(alertname, {}).get(key)
        if pattern is None:
            return False
        match = pattern.fullmatch(_normalise(text))
        if match is None:
            return False
        for group, value in match.groupdict().items():
            if value is not None and labels.get(group.split("_", 1)[1]) != value:
                return False
        return True


@dataclass
class Allowed:
    """What a mail may be built from: our rules, and the teams and authorities configured."""
    rules: RuleCatalogue
    teams: frozenset[str] | None = None        # None: any team-shaped value
    la_codes: frozenset[str] | None = None


class Dropped(Counter):
    """(part, reason) -> how many were dropped while reading one webhook."""

    def add(self, part: str, reason: str) -> None:
        self[(part, reason)] += 1


@dataclass
class SafeAlert:
    labels: dict[str, str]
    summary: str | None = None
    value: float | None = None
    count: float | None = None
    due: str | None = None
    dashboard: str | None = None
    starts_at: datetime | None = None


DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "prometheus" / "rules"


def default_allowed() -> Allowed:
    """Our rules from the checkout's ``prometheus/rules``; any team- or authority-shaped value."""
    global _DEFAULT_ALLOWED
    if _DEFAULT_ALLOWED is None:
        _DEFAULT_ALLOWED = Allowed(RuleCatalogue.load(DEFAULT_RULES_DIR))
    return _DEFAULT_ALLOWED


_DEFAULT_ALLOWED: Allowed | None = None


def allowed_label(name: str, value: object, allowed: Allowed, dropped: Dropped | None = None) -> str | None:
    """``value`` when label ``name`` may go into a mail, else None (and the drop counted)."""
    if name not in LABEL_SHAPES:
        if dropped is not None:
            dropped.add("label", "unknown_key")
        return None
    kept = safe_label(name, value)
    reason = None if kept is not None else "shape"
    if (kept is not None and name == "team" and allowed.teams is not None and kept not in allowed.teams
            and kept not in allowed.rules.teams):
        kept, reason = None, "not_configured"
    if kept is not None and name == "la" and allowed.la_codes is not None and kept not in allowed.la_codes:
        kept, reason = None, "not_configured"
    if kept is not None and name == "alertname" and kept not in allowed.rules.alerts:
        kept, reason = None, "unknown_alert"
    ours = allowed.rules.label_values.get(name)
    if kept is not None and ours is not None and kept not in ours:
        kept, reason = None, "not_from_rule"
    if kept is None and dropped is not None:
        dropped.add("label", reason)
    return kept


def sanitise_alert(alert: dict, grafana_url: str, allowed: Allowed | None = None,
                   dropped: Dropped | None = None) -> SafeAlert | None:
    """The mail-safe part of one alert, or None when it is not an alert of our rules."""
    allowed = allowed or default_allowed()
    raw_labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    alertname = raw_labels.get("alertname")
    if not isinstance(alertname, str) or alertname not in allowed.rules.alerts:
        if dropped is not None:
            dropped.add("alert", "unknown_alert")
        return None
    labels = {}
    for name, value in raw_labels.items():
        kept = allowed_label(name, value, allowed, dropped)
        if kept is not None:
            labels[name] = kept
    raw_ann = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    ann: dict[str, object] = {}
    for key, value in raw_ann.items():
        if key not in ANNOTATION_KEYS:
            if dropped is not None:
                dropped.add("annotation", "unknown_key")
            continue
        if key in TEMPLATED_KEYS:
            text = value if isinstance(value, str) else ""
            if key == "dashboard" and text.startswith(("http://", "https://")):
                parts = urlsplit(text)
                text = parts.path + (f"?{parts.query}" if parts.query else "")
            if not allowed.rules.rendered_by_rule(alertname, key, text, labels):
                if dropped is not None:
                    dropped.add("annotation", "not_from_rule")
                continue
        ann[key] = value
    starts = None
    raw_start = alert.get("startsAt")
    if isinstance(raw_start, str):
        try:
            starts = datetime.fromisoformat(raw_start.replace("Z", "+00:00"))
        except ValueError:
            starts = None
    out = SafeAlert(labels=labels, summary=safe_text(ann.get("summary")), value=safe_number(ann.get("value")),
                    count=safe_number(ann.get("count")), due=safe_text(ann.get("due")),
                    dashboard=safe_dashboard(ann.get("dashboard"), grafana_url), starts_at=starts)
    if dropped is not None:
        for key in ("summary", "due", "dashboard", "value", "count"):
            if key in ann and getattr(out, key) is None:
                dropped.add("annotation", "shape")
    return out


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


def sanitise_group(payload: dict, grafana_url: str, allowed: Allowed | None = None,
                   dropped: Dropped | None = None) -> AlertGroup:
    allowed = allowed or default_allowed()
    raw = [a for a in payload.get("alerts") or [] if isinstance(a, dict)]
    alerts = [s for s in (sanitise_alert(a, grafana_url, allowed, dropped)
                          for a in raw if a.get("status", "firing") == "firing") if s is not None]
    resolved = [s for s in (sanitise_alert(a, grafana_url, allowed, dropped)
                            for a in raw if a.get("status") == "resolved") if s is not None]
    common = payload.get("commonLabels") if isinstance(payload.get("commonLabels"), dict) else {}
    group = payload.get("groupLabels") if isinstance(payload.get("groupLabels"), dict) else {}

    def pick(name: str) -> str | None:
        for source in (group, common):
            if name in source:
                kept = allowed_label(name, source.get(name), allowed)
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


def stamp(msg: EmailMessage, sender: str, when: datetime | None = None) -> EmailMessage:
    """``Date:`` and ``Message-ID:`` (RFC 5322), the domain of the Message-ID from the sender."""
    msg["Date"] = format_datetime(when or datetime.now().astimezone())
    domain = sender.rpartition("@")[2] or "casewatch.invalid"
    msg["Message-ID"] = make_msgid("casewatch-alert", domain=domain)
    return msg


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
        return stamp(msg, sender)
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
    return stamp(msg, sender)
