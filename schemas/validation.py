"""``parse_event``: one raw event (a dict) -> a validated model, or a ``ValidationFailure`` whose
errors are field-level and never contain input values.

Pydantic's own messages can quote input (a rejected tag, a character of a bad UUID), and the
location of an unknown field is the field's name, which is input too. So each error is rebuilt
here from its type, with our own wording; an unknown field is located by its position only.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterable

from pydantic import ValidationError

from casewatch.domain.exceptions import CasewatchError
from schemas.events import EVENT_TYPES, EventBase, event_adapter

MESSAGES = {
    "missing": "field required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "dict_type": "must be a JSON object",
    "model_type": "an event must be a JSON object",
    "model_attributes_type": "an event must be a JSON object",
    "json_invalid": "not valid JSON",
    "json_type": "not valid JSON",
    "frozen_instance": "cannot be changed",
}
PATTERN_MESSAGES = {
    "la_code": "must be an ONS local authority code (E06-E09 and 6 digits, or E1 and 7 digits)",
    "team": "must be a team code (1-32 of a-z, 0-9, _)",
    "collection_year": "must be a collection year YYYY-YY (e.g. 2025-26)",
    "source_system": "must be a source system name (1-64 of A-Z, a-z, 0-9, _ . : -)",
}
REF_MESSAGE = "must be a pseudonymised reference (ps_ and 32 lowercase hex characters)"


class ValidationFailure(CasewatchError, ValueError):
    """An event failed validation. ``errors``: ``[{"loc": str, "msg": str, "type": str}]``. A
    casewatch error that stays a ``ValueError`` for the callers that catch that."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__(f"{len(errors)} validation error(s): " +
                         "; ".join(f"{e['loc'] or '(event)'}: {e['msg']}" for e in errors))


def _bounds_message(kind: str, ctx: dict) -> str:
    bound = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
             "greater_than": ("more than", "gt"), "less_than": ("less than", "lt")}[kind]
    return f"must be {bound[0]} {ctx.get(bound[1])}"


def _message(error: dict, field: str | None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in MESSAGES:
        return MESSAGES[kind]
    if kind == "string_pattern_mismatch":
        if field and field.endswith("_ref"):
            return REF_MESSAGE
        return PATTERN_MESSAGES.get(field or "", "does not have the required form")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return _bounds_message(kind, ctx)
    if kind == "too_long":
        return f"too many items (at most {ctx.get('max_length')})"
    if kind == "string_too_long":
        return f"too long (at most {ctx.get('max_length')} characters)"
    if kind == "string_too_short":
        return f"too short (at least {ctx.get('min_length')} characters)"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    if error.get("_ours"):
        return error["msg"]
    return f"invalid value ({kind})"


OUR_TYPES = {"date_format", "datetime_format", "uuid_format", "code_list", "collection_year", "team", "la_code",
             "correction_of", "date_order", "not_allowed", "missing", "date_range"}


def public_errors(exc: ValidationError, raw: Any) -> list[dict]:
    """Errors of ``exc`` as ``{"loc", "msg", "type"}`` without any input value."""
    keys = list(raw) if isinstance(raw, dict) else []
    tag = raw.get("event_type") if isinstance(raw, dict) else None
    out: list[dict] = []
    for error in exc.errors(include_url=False, include_input=False, include_context=True):
        kind = error["type"]
        loc = list(error["loc"])
        if loc and tag is not None and loc[0] == tag and tag in EVENT_TYPES:
            loc = loc[1:]
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            msg = ("field required" if kind == "union_tag_not_found" or tag is None else
                   "unknown event_type; allowed: " + ", ".join(EVENT_TYPES))
            if tag is not None and not isinstance(tag, str):
                msg = "must be a string naming an event type"
            out.append({"loc": "event_type", "msg": msg, "type": "event_type"})
            continue
        if kind == "extra_forbidden" and loc:
            name = loc[-1]
            position = keys.index(name) + 1 if name in keys else 0
            out.append({"loc": f"(unknown field #{position})", "type": kind,
                        "msg": f"not a field of {tag if tag in EVENT_TYPES else 'this event type'}; "
                               "unknown fields and free text are not accepted"})
            continue
        field = next((p for p in reversed(loc) if isinstance(p, str)), None)
        error["_ours"] = kind in OUR_TYPES
        out.append({"loc": ".".join(str(p) for p in loc), "msg": _message(error, field), "type": kind})
    return out


def parse_event(data: Any, *, teams: Iterable[str] | None = None, la_codes: Iterable[str] | None = None,
                date_range: tuple[date, date] | None = None) -> EventBase:
    """Validate one raw event. ``teams``/``la_codes``: the configured values (checked when given);
    ``date_range``: the plausible dates (earliest, latest), checked on every date field when given."""
    if not isinstance(data, dict):
        raise ValidationFailure([{"loc": "", "msg": "an event must be a JSON object", "type": "model_type"}])
    context = {"teams": list(teams) if teams else None, "la_codes": list(la_codes) if la_codes else None,
               "date_range": date_range}
    try:
        return event_adapter.validate_python(data, context=context)
    except ValidationError as exc:
        raise ValidationFailure(public_errors(exc, data)) from None


def parse_wire(raw: bytes | str) -> EventBase:
    """An event as it sits on the events topic (compact JSON), for consumers."""
    import json
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailure([{"loc": "", "msg": "not valid JSON", "type": "json_invalid"}]) from None
    return parse_event(data)
