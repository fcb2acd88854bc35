"""The notifier HTTP service: POST /alerts (Alertmanager webhook), GET /healthz, GET /metrics.

``/alerts`` writes (it sends mail), so it needs the bearer credentials Alertmanager is configured
with (``http_config.authorization.credentials_file`` in prometheus/alertmanager.yml; the same file
here, ``NotifierSettings.webhook_credentials_file``, re-read on every post so it can be rotated):
anything else is 401 and sends nothing. ``/healthz`` and ``/metrics`` only read.

For each webhook (= one Alertmanager group) the rota file is read afresh, the team's on-call
manager chosen for "now", and one mail sent over SMTP, built only from our rules' alerts
(``services.notifier.mail``). A failed send answers 503 so Alertmanager retries the group.
"""
from __future__ import annotations

import hmac
import json
import logging
import smtplib
from datetime import datetime, timezone
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from casewatch import bootstrap
from services.notifier.mail import DROP_PARTS, DROP_REASONS, Allowed, Dropped, RuleCatalogue, compose, sanitise_group
from services.notifier.exceptions import RotaError
from services.notifier.rota import load_rota
from casewatch.config import NotifierSettings, WebhookSecretError, read_webhook_secret

log = logging.getLogger("casewatch.notifier")


def send_smtp(settings: NotifierSettings, message) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        smtp.send_message(message)


def create_app(settings: NotifierSettings | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
               send: Callable[[NotifierSettings, object], None] = send_smtp,
               allowed: Allowed | None = None) -> FastAPI:
    """Raises ``WebhookSecretError`` when the webhook credentials cannot be read."""
    settings = settings or bootstrap.notifier_settings()
    read_webhook_secret(settings.webhook_credentials_file)  # refuse to start without one
    if allowed is None:
        configured = bootstrap.settings()
        allowed = Allowed(RuleCatalogue.load(settings.rules_dir), teams=frozenset(configured.team_list),
                          la_codes=frozenset(configured.la_code_list))
    registry = CollectorRegistry()
    mails = Counter("casewatch_notifier_mails", "Alert mails by outcome", ["outcome"], registry=registry)
    webhooks = Counter("casewatch_notifier_webhooks", "Alertmanager webhooks by outcome", ["outcome"],
                       registry=registry)
    for outcome in ("sent", "failed"):
        mails.labels(outcome)
    for outcome in ("accepted", "invalid", "nothing_firing", "unauthorized", "too_large"):
        webhooks.labels(outcome)
    dropped_total = Counter("casewatch_notifier_dropped", "Parts of alert webhooks not put into mails: alerts "
                            "not of our rules, labels and annotations not on the allow-list or not as our "
                            "rules render them", ["part", "reason"], registry=registry)
    for part in DROP_PARTS:
        for reason in DROP_REASONS:
            dropped_total.labels(part, reason)

    def authenticated(request: Request) -> bool:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        try:
            secret = read_webhook_secret(settings.webhook_credentials_file)
        except WebhookSecretError:
            log.error("the webhook credentials file cannot be read: every post is refused")
            return False
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode("utf-8", "replace"),
                                                                   secret.encode("utf-8"))

    app = FastAPI(title="casewatch notifier", docs_url=None, redoc_url=None)
    app.state.settings = settings

    reader = app if settings.notifier_read_port is None else FastAPI(
        title="casewatch notifier (read endpoints)", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.read_app = reader

    @reader.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @reader.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/alerts")
    async def alerts(request: Request) -> JSONResponse:
        if not authenticated(request):
            webhooks.labels("unauthorized").inc()
            return JSONResponse({"error": "Alertmanager's bearer credentials are required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > settings.notifier_max_body_bytes:
                webhooks.labels("too_large").inc()
                return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            payload = json.loads(bytes(body))
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            webhooks.labels("invalid").inc()
            return JSONResponse({"error": "expected an Alertmanager webhook body"}, status_code=400)
        dropped = Dropped()
        group = sanitise_group(payload, settings.grafana_url, allowed, dropped)
        for (part, reason), n in dropped.items():
            dropped_total.labels(part, reason).inc(n)
        if not group.alerts and not group.resolved:
            webhooks.labels("nothing_firing").inc()
            return JSONResponse({"mails": 0})
        webhooks.labels("accepted").inc()
        try:
            rota = load_rota(settings.rota_file)
        except RotaError as exc:
            mails.labels("failed").inc()
            log.error("alert mail not sent: %s", exc)
            return JSONResponse({"error": "rota unavailable"}, status_code=503)
        on_call = rota.on_call(group.team, now())
        message = compose(group, on_call, settings.smtp_from)
        try:
            send(settings, message)
        except (OSError, smtplib.SMTPException) as exc:
            mails.labels("failed").inc()
            log.error("alert mail for team %s measure %s not sent (%s)", group.team or "-", group.measure or "-",
                      type(exc).__name__)
            return JSONResponse({"error": "mail not sent"}, status_code=503)
        mails.labels("sent").inc()
        log.info("alert mail sent for team %s measure %s (%s, %s)", group.team or "-", group.measure or "-",
                 on_call.source, on_call.hours)
        return JSONResponse({"mails": 1})

    return app
