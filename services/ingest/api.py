"""The ingest HTTP API (FastAPI): source systems post case events; each is pseudonymised,
validated and published to Kafka.

* ``POST /v1/events`` one event (a JSON object); ``POST /v1/events:batch`` a JSON array of events
  (at most ``ingest_max_batch``).
* Bearer token per source system (``ingest_tokens``); the event's ``source_system`` is set from it.
* 202 only after Kafka acknowledged every record of the request (acks=all).
* 422 with field-level errors (never input values) for an invalid event, which is also written to
  the dead-letter topic (identifiers pseudonymised, suspect values redacted) before the answer.
  A batch: 202 when all were accepted, 422 when none, 207 when some; ``results`` lists each index.
* 503 with ``Retry-After`` when Kafka does not take or acknowledge a record in time: the client
  resends the whole request (event_id makes that safe; the engine de-duplicates on it).
* 401 without a valid token, 413 for a body over ``ingest_max_body_bytes`` or too many events.
* ``/healthz`` (Kafka metadata reachable), ``/metrics`` (Prometheus), OpenAPI at ``/docs``.

Log lines carry counts and outcomes only: never identifiers, payloads or tokens.
"""
from __future__ import annotations

import hmac
import json
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.concurrency import run_in_threadpool

from casewatch.config import Settings, get_settings
from services.ingest.publisher import STAGE_DECODE, Checked, EventPublisher, KafkaUnavailable

log = logging.getLogger("casewatch.ingest")

RETRY_AFTER_SECONDS = 5
REQUEST_OUTCOMES = ("accepted", "partially_accepted", "rejected", "unauthorized", "too_large", "unavailable")
EVENT_OUTCOMES = ("accepted", "rejected", "unavailable")


class IngestMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("casewatch_ingest_requests", "Ingest API requests by outcome", ["outcome"],
                                registry=self.registry)
        self.events = Counter("casewatch_ingest_events", "Events received at the ingest API by outcome",
                              ["outcome"], registry=self.registry)
        for o in REQUEST_OUTCOMES:
            self.requests.labels(o)
        for o in EVENT_OUTCOMES:
            self.events.labels(o)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _authenticate(tokens: dict[str, str], presented: str | None) -> str | None:
    """The source system whose token was presented (every token compared, in constant time)."""
    found = None
    candidate = (presented or "").encode("utf-8")
    for source, token in tokens.items():
        if hmac.compare_digest(candidate, token.encode("utf-8")) and presented:
            found = source
    return found


def _result(index: int | None, checked: Checked) -> dict:
    out: dict[str, Any] = {} if index is None else {"index": index}
    if checked.ok:
        out.update(status="accepted", event_id=checked.event.event_id)
    else:
        out.update(status="rejected", errors=checked.errors)
    return out


def create_app(settings: Settings | None = None, publisher: EventPublisher | None = None) -> FastAPI:
    settings = settings or get_settings()
    publisher = publisher or EventPublisher(settings, source_system="ingest", source="ingest")
    tokens = settings.read_ingest_tokens()
    metrics = IngestMetrics()
    max_body = settings.ingest_max_body_bytes
    max_batch = settings.ingest_max_batch

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await run_in_threadpool(publisher.close)

    app = FastAPI(title="casewatch ingest", version="1", lifespan=lifespan,
                  description="Case events from source systems into Kafka (see docs/events.md).")
    app.state.publisher = publisher
    app.state.metrics = metrics

    def unavailable() -> JSONResponse:
        metrics.requests.labels("unavailable").inc()
        return JSONResponse({"status": "unavailable",
                             "detail": "Kafka did not acknowledge in time; nothing was accepted, retry later"},
                            status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    async def read_request(request: Request) -> tuple[str | None, bytes | None, JSONResponse | None]:
        source = _authenticate(tokens, _bearer(request))
        if source is None:
            metrics.requests.labels("unauthorized").inc()
            return None, None, JSONResponse({"status": "unauthorized", "detail": "a valid bearer token is required"},
                                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            metrics.requests.labels("too_large").inc()
            return source, None, JSONResponse({"status": "too_large", "detail": f"body over {max_body} bytes"},
                                              status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_body:
                metrics.requests.labels("too_large").inc()
                return source, None, JSONResponse({"status": "too_large", "detail": f"body over {max_body} bytes"},
                                                  status_code=413)
        return source, bytes(body), None

    def decode(body: bytes) -> tuple[bool, Any]:
        try:
            return True, json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False, None

    def undecodable(source: str, body: bytes) -> Checked:
        return Checked(None, publisher.pseudonymiser.opaque(body),
                       [{"loc": "", "msg": "the body is not valid UTF-8 JSON", "type": "json_invalid"}], STAGE_DECODE)

    def check_one(record: Any, source: str) -> Checked:
        if not isinstance(record, dict):
            try:
                payload = publisher.pseudonymiser.opaque(record)
            except (ValueError, RecursionError):
                payload = {"undecodable_bytes": None}
            return Checked(None, payload, [{"loc": "", "msg": "an event must be a JSON object",
                                            "type": "model_type"}], STAGE_DECODE)
        return publisher.check(record, source_system=source)

    def publish_all(checked: list[Checked]) -> None:
        futures = [publisher.publish(c) for c in checked]
        publisher.wait(futures)

    def count_events(checked: list[Checked]) -> tuple[int, int]:
        accepted = sum(1 for c in checked if c.ok)
        rejected = len(checked) - accepted
        metrics.events.labels("accepted").inc(accepted)
        metrics.events.labels("rejected").inc(rejected)
        return accepted, rejected

    @app.post("/v1/events", status_code=202, summary="one case event",
              responses={202: {"description": "stored in Kafka"}, 401: {}, 413: {},
                         422: {"description": "invalid; dead-lettered"}, 503: {"description": "Kafka unavailable"}})
    async def post_event(request: Request):
        source, body, refusal = await read_request(request)
        if refusal is not None:
            return refusal
        ok, record = decode(body)
        checked = check_one(record, source) if ok else undecodable(source, body)
        try:
            await run_in_threadpool(publish_all, [checked])
        except KafkaUnavailable:
            metrics.events.labels("unavailable").inc()
            log.warning("Kafka unavailable: 1 event not accepted (503)")
            return unavailable()
        count_events([checked])
        if checked.ok:
            metrics.requests.labels("accepted").inc()
            return JSONResponse(_result(None, checked), status_code=202)
        metrics.requests.labels("rejected").inc()
        log.info("event rejected and dead-lettered (%d errors)", len(checked.errors))
        return JSONResponse(_result(None, checked), status_code=422)

    @app.post("/v1/events:batch", summary="a JSON array of case events",
              responses={202: {"description": "all stored"}, 207: {"description": "some stored, some rejected"},
                         401: {}, 413: {}, 422: {"description": "none valid; all dead-lettered"}, 503: {}})
    async def post_batch(request: Request):
        source, body, refusal = await read_request(request)
        if refusal is not None:
            return refusal
        ok, records = decode(body)
        if ok and isinstance(records, list):
            if len(records) > max_batch:
                metrics.requests.labels("too_large").inc()
                return JSONResponse({"status": "too_large", "detail": f"at most {max_batch} events per batch"},
                                    status_code=413)
            checked = [check_one(r, source) for r in records]
        elif ok:
            checked = [Checked(None, publisher.pseudonymiser.opaque(body),
                               [{"loc": "", "msg": "a batch must be a JSON array of events", "type": "list_type"}],
                               STAGE_DECODE)]
        else:
            checked = [undecodable(source, body)]
        try:
            await run_in_threadpool(publish_all, checked)
        except KafkaUnavailable:
            metrics.events.labels("unavailable").inc(len(checked))
            log.warning("Kafka unavailable: batch of %d not accepted (503)", len(checked))
            return unavailable()
        accepted, rejected = count_events(checked)
        if rejected == 0:
            status, outcome = 202, "accepted"
        elif accepted == 0:
            status, outcome = 422, "rejected"
        else:
            status, outcome = 207, "partially_accepted"
        metrics.requests.labels(outcome).inc()
        if rejected:
            log.info("batch: %d accepted, %d rejected and dead-lettered", accepted, rejected)
        is_list = ok and isinstance(records, list)
        results = [_result(i if is_list else None, c) for i, c in enumerate(checked)]
        return JSONResponse({"accepted": accepted, "rejected": rejected, "results": results}, status_code=status)

    @app.get("/healthz", summary="Kafka reachable")
    async def healthz():
        if await run_in_threadpool(publisher.healthy):
            return {"status": "ok"}
        return JSONResponse({"status": "kafka_unavailable"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(settings: Settings) -> None:
    """Run the API with uvicorn on ``settings.host:settings.ingest_port`` (blocks)."""
    import uvicorn
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.ingest_port, log_level="info", access_log=False)
