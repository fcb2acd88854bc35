"""The case event schemas (docs/events.md): pydantic v2 models, code lists by collection year, and the
exported JSON Schema.

    from schemas import parse_event, ValidationFailure, event_adapter
"""
from schemas.events import EVENT_CLASSES, EVENT_TYPES, IDENTIFIER_FIELDS, EventBase, WireEvent, event_adapter
from schemas.validation import ValidationFailure, parse_event, parse_wire, public_errors

__all__ = ["EVENT_CLASSES", "EVENT_TYPES", "IDENTIFIER_FIELDS", "EventBase", "WireEvent", "ValidationFailure",
           "event_adapter", "parse_event", "parse_wire", "public_errors"]
