"""The ingest API's contract, as ``/openapi.json`` states it: the request bodies (every event type's
JSON Schema, from the pydantic models in ``schemas/events.py``, with one example each from
``schemas/examples.py``), the answers (pydantic models below) and the bearer-token scheme.

The handlers read the body themselves rather than through FastAPI's body validation, because an
invalid event is not just refused: it is written to the dead-letter topic with field-level reasons
before the 422 (``services/ingest/api.py``). So the request schemas are declared here and the
handlers' own validation (the same models) is what enforces them.

What a source system sends differs from the stored event in three ways, and the schema says so:
the references (``child_ref``, ``plan_ref``, ...) are the case system's own identifiers, which the
door pseudonymises (a value already of the pseudonym form is refused unless the token's grant is
``pre_pseudonymised``); ``source_system`` is set from the token, whatever the body says; and the
code lists are those of the latest collection year (an event of an earlier year is checked against
its own year's lists).
"""
from __future__ import annotations

import copy
from typing import Literal, Optional

from fastapi import FastAPI
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from schemas import IDENTIFIER_FIELDS, event_adapter
from schemas.examples import valid_examples

COMPONENTS = "#/components/schemas/{model}"
EVENT_SCHEMA = "IngestEvent"
VOIDED_EXAMPLE = "cp_plan.started"
BATCH_SCHEMA = "IngestBatch"

bearer = HTTPBearer(
    auto_error=False, scheme_name="sourceSystemToken",
    description="The source system's ingest token (CASEWATCH_INGEST_TOKENS): it names the source system "
                "stamped on every event and the authorities it may write for.")

CASE_SYSTEM_ID = {
    "type": ["string", "integer"],
    "description": "the case system's own identifier (a whole number is taken as its decimal text); the door "
                   "replaces it by a pseudonym within the event's la_code. A value already of the pseudonym form "
                   "(ps_ and 32 hex digits) is refused (403) unless the token's grant is pre_pseudonymised.",
}
SOURCE_SYSTEM_NOTE = {"description": "ignored: the source system is the bearer token's, whatever is sent here"}


# -- answers ----------------------------------------------------------------------------------
class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(_Answer):
    """One reason a record was rejected or refused; never quotes a value."""
    loc: str = Field(description="the field ('' for the record as a whole; an unknown field by its position)")
    msg: str
    type: str


class Accepted(_Answer):
    status: Literal["accepted"]
    event_id: str


class Rejected(_Answer):
    """The event is invalid; it was written to the dead-letter topic with these reasons."""
    status: Literal["rejected"]
    errors: list[FieldError]


class BatchItem(_Answer):
    index: Optional[int] = Field(default=None, description="the event's position in the array (absent when the "
                                                           "body was not an array)")
    status: Literal["accepted", "rejected"]
    event_id: Optional[str] = None
    errors: Optional[list[FieldError]] = None


class BatchAnswer(_Answer):
    accepted: int
    rejected: int
    results: list[BatchItem]


class RefusedItem(_Answer):
    index: Optional[int] = None
    status: Literal["forbidden"]
    errors: list[FieldError]


class Refused(_Answer):
    """Outside the token's grant: nothing of the request was stored."""
    status: Literal["forbidden"]
    detail: str
    results: list[RefusedItem]


class Problem(_Answer):
    status: Literal["unauthorized", "too_large"]
    detail: str


class Unavailable(_Answer):
    """Kafka did not take or acknowledge every record in time; resend the whole request later."""
    status: Literal["unavailable"]
    detail: str
    acknowledged: int = Field(description="records of this request (events and dead letters) Kafka acknowledged")
    records: int


class Health(_Answer):
    status: Literal["ok", "kafka_unavailable"]


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before resending", "schema": {"type": "integer"}}}
_COMMON = {
    401: {"model": Problem, "description": "no valid bearer token",
          "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}},
    403: {"model": Refused, "description": "a record outside the source system's grant (an authority not in its "
                                           "la_codes, a pseudonym it may not send, another source's event id or "
                                           "correction); nothing stored"},
    413: {"model": Problem, "description": "the body is over ingest_max_body_bytes, or a batch has too many events"},
    503: {"model": Unavailable, "description": "Kafka unavailable; says how many records were acknowledged",
          "headers": _RETRY_AFTER},
}
EVENT_RESPONSES = {
    202: {"model": Accepted, "description": "stored in Kafka (acknowledged by every in-sync replica)"},
    **_COMMON,
    422: {"model": Rejected, "description": "invalid (or not JSON, or nested too deeply): rejected with field-level "
                                            "reasons and dead-lettered"},
}
BATCH_RESPONSES = {
    202: {"model": BatchAnswer, "description": "every event stored"},
    207: {"model": BatchAnswer, "description": "some stored, the others rejected and dead-lettered"},
    **_COMMON,
    422: {"model": BatchAnswer, "description": "none valid (or not a JSON array): all rejected and dead-lettered"},
}
HEALTH_RESPONSES = {200: {"model": Health, "description": "Kafka reachable"},
                    503: {"model": Health, "description": "Kafka not reachable", "headers": _RETRY_AFTER}}


# -- request bodies -----------------------------------------------------------------------------
def _as_sent(prop: dict) -> dict:
    """A reference field's schema as a source system sends it (a case-system identifier)."""
    if prop.get("type") == "null":       # not allowed on this event type: stays so
        return prop
    kept = {k: v for k, v in prop.items() if k in ("title", "default")}
    if "anyOf" in prop:                  # optional: the identifier or null
        return {**kept, "anyOf": [CASE_SYSTEM_ID, {"type": "null"}]}
    return {**kept, **CASE_SYSTEM_ID}


def request_example(event_type: str) -> dict:
    """The documented example of ``event_type`` as a case system sends it: its own identifiers
    (placeholders) where the stored event has pseudonyms, and no source_system. Sent in the
    document's order, every example is accepted (the void's target is sent before it)."""
    examples = valid_examples()
    event = examples[event_type]
    event.pop("source_system", None)
    if event_type == "event.voided":   # voids the cp_plan.started example (a void needs a stored target)
        event["correction_of"] = examples[VOIDED_EXAMPLE]["event_id"]
    for name in IDENTIFIER_FIELDS:
        if isinstance(event.get(name), str):
            event[name] = f"{name.removesuffix('_ref')}-id-in-your-case-system"
    return event


def request_schemas(max_batch: int) -> dict[str, dict]:
    """Component schemas of the request bodies: one per event type, the union (discriminated on
    ``event_type``) and the batch (an array of at most ``max_batch`` events)."""
    union = copy.deepcopy(event_adapter.json_schema(ref_template=COMPONENTS))
    components: dict[str, dict] = union.pop("$defs")
    names = {ref.rsplit("/", 1)[1]: event_type for event_type, ref in union["discriminator"]["mapping"].items()}
    for name, schema in components.items():
        props = schema.get("properties", {})
        for field in IDENTIFIER_FIELDS:
            if field in props:
                props[field] = _as_sent(props[field])
        if "source_system" in props:
            props["source_system"] = dict(SOURCE_SYSTEM_NOTE, title=props["source_system"].get("title"))
        if name in names:
            schema["examples"] = [request_example(names[name])]
    components[EVENT_SCHEMA] = {
        **union, "title": "case event",
        "description": "one case event (docs/events.md), discriminated on event_type; unknown fields are refused"}
    components[BATCH_SCHEMA] = {"type": "array", "items": {"$ref": COMPONENTS.format(model=EVENT_SCHEMA)},
                                "maxItems": max_batch, "title": "case events",
                                "description": f"at most {max_batch} events (ingest_max_batch); more is 413"}
    return components


def _body(schema: str, examples: dict[str, dict]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": COMPONENTS.format(model=schema)}, "examples": examples}}}}


def event_body() -> dict:
    """``openapi_extra`` of ``POST /v1/events``: the body schema and one example per event type."""
    return _body(EVENT_SCHEMA, {t: {"summary": t, "value": request_example(t)} for t in valid_examples()})


def batch_body() -> dict:
    """``openapi_extra`` of ``POST /v1/events:batch``."""
    pair = [request_example("referral.received"), request_example("assessment.started")]
    return _body(BATCH_SCHEMA, {"two events": {"summary": "a referral and its assessment", "value": pair}})


def install(app: FastAPI, max_batch: int) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) carry the request body schemas."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(request_schemas(max_batch))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
