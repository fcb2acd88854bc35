"""The ingest HTTP API (FastAPI): source systems post case events; each is pseudonymised,
validated and published to Kafka.

* ``POST /v1/events`` one event (a JSON object); ``POST /v1/events:batch`` a JSON array of events
  (at most ``ingest_max_batch``).
* Bearer token per source system (``ingest_tokens``); the event's ``source_system`` is set from it.
* 403 for the whole request (nothing stored) when a record is outside the token's grant
  (``casewatch/edge/authorisation.py``): an authority not in its ``la_codes``, a reference that is
  already a pseudonym from a source not allowed to send one, a correction of another source's event.
* 202 only after Kafka acknowledged every record of the request (acks=all).
* 422 with field-level errors (never input values) for an invalid event, which is also written to
  the dead-letter topic (identifiers pseudonymised, suspect values redacted) before the answer.
  A batch: 202 when all were accepted, 422 when none, 207 when some; ``results`` lists each index.
* 503 with ``Retry-After`` when Kafka does not take or acknowledge a record in time, saying how many
  of the request's records were acknowledged: the client resends the whole request (event_id makes
  that safe; the engine de-duplicates on it).
* 401 without a valid token, 413 for a body over ``ingest_max_body_bytes`` or too many events;
  a body nested deeper than ``ingest_max_json_depth`` or with invalid Unicode is 422 and dead-lettered.
* ``/healthz`` (Kafka metadata reachable), ``/metrics`` (Prometheus).
* The contract (``services/ingest/openapi.py``): ``/openapi.json`` with every event type's schema and
  example, the answers and the bearer scheme; Swagger UI at ``/docs`` and ReDoc at ``/redoc``, both
  served from the package (``fastapi-offline``), so they work with no network.

Log lines carry counts and outcomes only: never identifiers, payloads or tokens.
"""
from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.concurrency import run_in_threadpool

from casewatch.access import grant_for_token, json_depth
from casewatch import bootstrap
from casewatch.config import IngestGrant, Settings
from services.ingest import openapi
from services.ingest.exceptions import NotAcknowledged
from casewatch.edge.authorisation import UUID_RE, door_checks
from casewatch.adapters.kafka.event_sources import EventSources, Origin
from casewatch.adapters.kafka.publisher import STAGE_DECODE, Checked, EventPublisher, KafkaUnavailable

log = logging.getLogger("casewatch.ingest")

RETRY_AFTER_SECONDS = 5
REQUEST_OUTCOMES = ("accepted", "partially_accepted", "rejected", "unauthorized", "forbidden", "too_large",
                    "unavailable")
EVENT_OUTCOMES = ("accepted", "rejected", "forbidden", "unavailable")


class RequestSources:
    """``EventSources`` plus the events earlier in the same request (not stored yet): a batch may
    hold an event and its correction. Only a record's well-formed event id and type are noted;
    a record that then fails validation is not stored, and its correction fails with it (422)."""

    def __init__(self, stored: EventSources):
        self.stored = stored
        self.pending: dict[str, Origin] = {}

    def add(self, record: dict, source_system: str) -> None:
        event_id, event_type = record.get("event_id"), record.get("event_type")
        if isinstance(event_id, str) and isinstance(event_type, str) and UUID_RE.match(event_id):
            self.pending.setdefault(event_id.lower(), Origin(source_system, event_type))

    def known_origin(self, event_id: str) -> Origin | None:
        return self.stored.known_origin(event_id) or self.pending.get(event_id)

    def origin(self, event_id: str) -> Origin | None:
        # what is stored wins: an earlier record re-using a stored event's id gains no right to correct it
        return self.stored.origin(event_id) or self.pending.get(event_id)


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


def _result(index: int | None, checked: Checked) -> dict:
    out: dict[str, Any] = {} if index is None else {"index": index}
    if checked.ok:
        out.update(status="accepted", event_id=checked.event.event_id)
    else:
        out.update(status="rejected", errors=checked.errors)
    return out


def create_app(settings: Settings | None = None, publisher: EventPublisher | None = None,
               event_sources: EventSources | None = None) -> FastAPI:
    parts = bootstrap.build(settings)
    settings = parts.settings
    publisher = publisher or parts.publisher("ingest", source="ingest")
    sources = event_sources if event_sources is not None else EventSources(settings)
    grants = settings.read_ingest_grants()
    metrics = IngestMetrics()
    max_body = settings.ingest_max_body_bytes
    max_batch = settings.ingest_max_batch
    max_depth = settings.ingest_max_json_depth
    served = tuple(settings.la_code_list)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        import threading
        threading.Thread(target=sources.warm_up, name="event-sources-warm-up", daemon=True).start()
        yield
        await run_in_threadpool(publisher.close)
        await run_in_threadpool(sources.close)

    app = FastAPIOffline(title="casewatch ingest", version="1", lifespan=lifespan,
                         description="Case events from source systems into Kafka (docs/api.md, docs/events.md).",
                         # no call to the public validator.swagger.io: the page works with no network
                         swagger_ui_parameters={"validatorUrl": None})
    openapi.install(app, max_batch)
    app.state.publisher = publisher
    app.state.metrics = metrics
    app.state.event_sources = sources

    def unavailable(acknowledged: int | None, total: int) -> JSONResponse:
        metrics.requests.labels("unavailable").inc()
        if acknowledged is None:
            detail = ("Kafka did not answer in time, before any record of this request was sent; "
                      "resend the whole request later")
            acknowledged = 0
        else:
            detail = (f"Kafka did not acknowledge every record in time: {acknowledged} of the {total} record(s) "
                      "of this request (events and dead letters) were acknowledged as stored, the others may or "
                      "may not be stored; resend the whole request later (event ids make a resend safe: "
                      "nothing is counted twice)")
        return JSONResponse({"status": "unavailable", "detail": detail, "acknowledged": acknowledged,
                             "records": total},
                            status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    def forbidden(refused: list[tuple[int | None, list[dict]]]) -> JSONResponse:
        metrics.requests.labels("forbidden").inc()
        metrics.events.labels("forbidden").inc(len(refused))
        log.warning("request refused (403): %d record(s) outside the source system's grant; nothing stored",
                    len(refused))
        results = [dict({} if i is None else {"index": i}, status="forbidden", errors=errors) for i, errors in refused]
        return JSONResponse({"status": "forbidden",
                             "detail": "this source system may not write what the request holds; nothing of it "
                                       "was stored", "results": results}, status_code=403)

    async def read_request(request: Request, credentials: HTTPAuthorizationCredentials | None
                           ) -> tuple[IngestGrant | None, bytes | None, JSONResponse | None]:
        source = grant_for_token(grants, credentials.credentials if credentials is not None else None)
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
        if json_depth(body) > max_depth:
            return False, None
        try:
            return True, json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False, None

    def undecodable(body: bytes) -> Checked:
        if json_depth(body) > max_depth:
            error = {"loc": "", "msg": f"the body nests arrays/objects deeper than {max_depth} levels",
                     "type": "json_too_deep"}
        else:
            error = {"loc": "", "msg": "the body is not valid UTF-8 JSON", "type": "json_invalid"}
        return Checked(None, publisher.pseudonymiser.opaque(body), [error], STAGE_DECODE)

    def check_one(record: Any, grant: IngestGrant, errors: list[dict]) -> Checked:
        if not isinstance(record, dict):
            try:
                payload = publisher.pseudonymiser.opaque(record)
            except (ValueError, RecursionError):
                payload = {"undecodable_bytes": None}
            return Checked(None, payload, [{"loc": "", "msg": "an event must be a JSON object",
                                            "type": "model_type"}], STAGE_DECODE)
        return publisher.check(record, source_system=grant.source, pre_pseudonymised=grant.pre_pseudonymised,
                               extra_errors=errors)

    def authorise_and_check(records: list[Any], grant: IngestGrant, indexed: bool):
        """(refusals by index, checked records); blocking (may read the event-sources topic)."""
        refused, checks = [], []
        sources.refresh()  # what other workers stored lately (at most one Kafka round trip a second)
        earlier = RequestSources(sources)  # a batch may correct an event sent earlier in it
        for i, record in enumerate(records):
            refusals, errors = door_checks(record, grant, earlier, served)
            if refusals:
                refused.append((i if indexed else None, refusals))
            elif isinstance(record, dict):
                earlier.add(record, grant.source)
            checks.append((record, errors))
        if refused:
            return refused, []
        return [], [check_one(record, grant, errors) for record, errors in checks]

    def publish_all(checked: list[Checked]) -> None:
        """Send every record and wait for Kafka; ``NotAcknowledged`` says how many were stored."""
        futures, failed = [], False
        for c in checked:
            try:
                futures.append(publisher.publish(c))
            except KafkaUnavailable:
                failed = True
                break
        acknowledged = 0
        for future in futures:
            if failed:  # after one failure only count what is already known, without waiting again
                done = getattr(future, "is_done", False) and future.succeeded()
                acknowledged += 1 if done else 0
                continue
            try:
                publisher.wait([future])
                acknowledged += 1
            except KafkaUnavailable:
                failed = True
        if failed:
            raise NotAcknowledged(acknowledged, len(checked))
        for c in checked:
            if c.ok:
                sources.remember(c.event.event_id, c.event.source_system, c.event.event_type)

    async def store(checked: list[Checked]) -> JSONResponse | None:
        try:
            await run_in_threadpool(publish_all, checked)
        except NotAcknowledged as exc:
            metrics.events.labels("unavailable").inc(exc.total - exc.acknowledged)
            log.warning("Kafka unavailable: %d of %d record(s) acknowledged (503)", exc.acknowledged, exc.total)
            return unavailable(exc.acknowledged, exc.total)
        return None

    async def authorised(records: list[Any], grant: IngestGrant, indexed: bool):
        try:
            refused, checked = await run_in_threadpool(authorise_and_check, records, grant, indexed)
        except KafkaUnavailable:
            metrics.events.labels("unavailable").inc(len(records))
            log.warning("Kafka unavailable: the event-sources topic could not be read (503)")
            return None, unavailable(None, len(records))
        if refused:
            return None, forbidden(refused)
        return checked, None

    def count_events(checked: list[Checked]) -> tuple[int, int]:
        accepted = sum(1 for c in checked if c.ok)
        rejected = len(checked) - accepted
        metrics.events.labels("accepted").inc(accepted)
        metrics.events.labels("rejected").inc(rejected)
        return accepted, rejected

    @app.post("/v1/events", status_code=202, summary="one case event", responses=openapi.EVENT_RESPONSES,
              openapi_extra=openapi.event_body())
    async def post_event(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Security(openapi.bearer)):
        source, body, refusal = await read_request(request, credentials)
        if refusal is not None:
            return refusal
        ok, record = decode(body)
        if ok:
            checked, refusal = await authorised([record], source, indexed=False)
            if refusal is not None:
                return refusal
        else:
            checked = [undecodable(body)]
        failure = await store(checked)
        if failure is not None:
            return failure
        checked = checked[0]
        count_events([checked])
        if checked.ok:
            metrics.requests.labels("accepted").inc()
            return JSONResponse(_result(None, checked), status_code=202)
        metrics.requests.labels("rejected").inc()
        log.info("event rejected and dead-lettered (%d errors)", len(checked.errors))
        return JSONResponse(_result(None, checked), status_code=422)

    @app.post("/v1/events:batch", status_code=202, summary="a JSON array of case events",
              responses=openapi.BATCH_RESPONSES, openapi_extra=openapi.batch_body())
    async def post_batch(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Security(openapi.bearer)):
        source, body, refusal = await read_request(request, credentials)
        if refusal is not None:
            return refusal
        ok, records = decode(body)
        if ok and isinstance(records, list):
            if len(records) > max_batch:
                metrics.requests.labels("too_large").inc()
                return JSONResponse({"status": "too_large", "detail": f"at most {max_batch} events per batch"},
                                    status_code=413)
            checked, refusal = await authorised(records, source, indexed=True)
            if refusal is not None:
                return refusal
        elif ok:
            checked = [Checked(None, publisher.pseudonymiser.opaque(body),
                               [{"loc": "", "msg": "a batch must be a JSON array of events", "type": "list_type"}],
                               STAGE_DECODE)]
        else:
            checked = [undecodable(body)]
        failure = await store(checked)
        if failure is not None:
            return failure
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

    # Read endpoints: on the write API's listener, or on a listener of their own (settings
    # ingest_read_host/ingest_read_port) so monitoring can reach them where case systems cannot.
    reader = app if settings.ingest_read_port is None else FastAPI(
        title="casewatch ingest (read endpoints)", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.read_app = reader

    @reader.get("/healthz", summary="Kafka reachable", responses=openapi.HEALTH_RESPONSES)
    async def healthz():
        if await run_in_threadpool(publisher.healthy):
            return {"status": "ok"}
        return JSONResponse({"status": "kafka_unavailable"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @reader.get("/metrics", include_in_schema=False)
    async def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(settings: Settings) -> None:
    """Run the API on ``settings.host:settings.ingest_port`` (blocks); the read endpoints on
    ``ingest_read_host:ingest_read_port`` instead when a separate read port is configured."""
    from casewatch import http_serving
    app = create_app(settings)
    http_serving.serve(app, settings.host, settings.ingest_port, app.state.read_app,
                       settings.ingest_read_host, settings.ingest_read_port)
