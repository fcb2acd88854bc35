"""The notifier HTTP service: POST /alerts (Alertmanager webhook), GET /healthz, GET /metrics.

For each webhook (= one Alertmanager group) the rota file is read afresh, the team's on-call
manager chosen for "now", and one mail sent over SMTP. A failed send answers 503 so Alertmanager
retries the group.
"""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timezone
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from services.notifier.mail import compose, sanitise_group
from services.notifier.rota import RotaError, load_rota
from services.notifier.settings import NotifierSettings

log = logging.getLogger("casewatch.notifier")


def send_smtp(settings: NotifierSettings, message) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        smtp.send_message(message)


def create_app(settings: NotifierSettings | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
               send: Callable[[NotifierSettings, object], None] = send_smtp) -> FastAPI:
    settings = settings or NotifierSettings()
    registry = CollectorRegistry()
    mails = Counter("casewatch_notifier_mails", "Alert mails by outcome", ["outcome"], registry=registry)
    webhooks = Counter("casewatch_notifier_webhooks", "Alertmanager webhooks by outcome", ["outcome"],
                       registry=registry)
    for outcome in ("sent", "failed"):
        mails.labels(outcome)
    for outcome in ("accepted", "invalid", "nothing_firing"):
        webhooks.labels(outcome)

    app = FastAPI(title="casewatch notifier", docs_url=None, redoc_url=None)
    app.state.settings = settings

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/alerts")
    async def alerts(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            webhooks.labels("invalid").inc()
            return JSONResponse({"error": "expected an Alertmanager webhook body"}, status_code=400)
        group = sanitise_group(payload, settings.grafana_url)
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
