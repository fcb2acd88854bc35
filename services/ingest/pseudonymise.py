"""Pseudonymisation at the edge (domain.md §4): a keyed HMAC-SHA-256 of the case-system identifier,
written as ``ps_`` and the first 32 lowercase hex characters of the digest.

* Applied to the identifier fields of docs/events.md (``schemas.IDENTIFIER_FIELDS``).
* A value already of the pseudonym form is kept (dead letters can be replayed through the edge).
* A string or whole-number identifier is replaced by its pseudonym. Any other value in an
  identifier field (a list, an object, a decimal, true/false) is replaced by a marker that fails
  validation, so the raw value never reaches Kafka, not even in a dead letter.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from typing import Any

from casewatch.config import Settings
from schemas import IDENTIFIER_FIELDS

PREFIX = "ps_"
PSEUDONYM_RE = re.compile(r"^ps_[0-9a-f]{32}$")
MIN_KEY_BYTES = 32
UNUSABLE_IDENTIFIER = "(redacted: not a string identifier)"


class PseudonymisationKeyError(RuntimeError):
    """No usable key: the ingest API and the loader refuse to start (exit code 2)."""


def load_key(settings: Settings) -> bytes:
    try:
        key = settings.read_pseudonymisation_key()
    except OSError as exc:
        raise PseudonymisationKeyError(
            f"the pseudonymisation key file cannot be read ({exc.strerror}); "
            "set CASEWATCH_PSEUDONYMISATION_KEY or CASEWATCH_PSEUDONYMISATION_KEY_FILE") from None
    if not key:
        raise PseudonymisationKeyError(
            "no pseudonymisation key: set CASEWATCH_PSEUDONYMISATION_KEY or CASEWATCH_PSEUDONYMISATION_KEY_FILE "
            f"(at least {MIN_KEY_BYTES} bytes). Raw case-system identifiers must never reach Kafka.")
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymisationKeyError(
            f"the pseudonymisation key is too short ({len(key)} bytes; at least {MIN_KEY_BYTES} are needed)")
    return key


class Pseudonymiser:
    def __init__(self, key: bytes):
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymisationKeyError(f"the pseudonymisation key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> "Pseudonymiser":
        return cls(load_key(settings))

    def pseudonym(self, identifier: str) -> str:
        """The pseudonym of one case-system identifier (a pseudonym is returned unchanged)."""
        if PSEUDONYM_RE.match(identifier):
            return identifier
        digest = hmac.new(self._key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:32]

    def _field_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return self.pseudonym(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.pseudonym(str(value))
        return UNUSABLE_IDENTIFIER

    def opaque(self, value: Any) -> dict:
        """A dead-letter rendering of a body that is not a JSON object (or not JSON at all): its size
        and a keyed hash only, never content (it may hold identifiers that were never pseudonymised)."""
        import json
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        else:
            data = json.dumps(value, sort_keys=True, default=str).encode("utf-8")
        digest = hmac.new(self._key, data, hashlib.sha256).hexdigest()
        return {"undecodable_bytes": len(data), "hmac_sha256": digest}

    def event(self, raw: Any) -> Any:
        """A copy of ``raw`` with every identifier field pseudonymised (``raw`` is not changed).
        A value that is not an object is returned as it is."""
        if not isinstance(raw, dict):
            return raw
        out = dict(raw)
        for name in IDENTIFIER_FIELDS:
            if name in out:
                out[name] = self._field_value(out[name])
        return out


# -- what of an invalid record may be kept in a dead letter ------------------------------------

# Errors whose value already had the right shape (a code-sized string, a valid date, a configured
# value); the value is kept so the dead letter can be replayed once the cause is fixed.
KEEP_VALUE_ERRORS = frozenset({"code_list", "team", "la_code", "date_order", "correction_of"})
REDACTED = "(redacted)"


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    """Every code of every list in every collection year: an unknown code is kept in a dead letter
    only when it is one of these (a code of another year or list), so anything else typed into a
    code field (an identifier, a name) never reaches Kafka."""
    from schemas.code_lists import all_code_lists
    return frozenset(c for year in all_code_lists().values() for codes in year.values() for c in codes)


@lru_cache(maxsize=None)
def _code_fields(event_type: str) -> frozenset[str]:
    """The fields of an event type that hold codes. Their codes are only checked once the
    collection year is known, so a record with a bad year has unchecked code fields."""
    from schemas import EVENT_TYPES
    names = set()
    for name, prop in EVENT_TYPES[event_type].model_json_schema().get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        if any("x-code-list" in o or "x-code-list" in (o.get("items") or {}) for o in options):
            names.add(name)
    return frozenset(names)


def _code_shaped(value: Any) -> bool:
    codes = _known_codes()
    if isinstance(value, list):
        return all(isinstance(v, str) and v in codes for v in value)
    return isinstance(value, str) and value in codes


def dead_letter_payload(pseudonymised: Any, errors: list[dict]) -> Any:
    """The payload of a dead letter for a record that failed validation: identifier fields as
    pseudonyms; a known field's value kept when it is valid or only failed a list/configuration/
    order rule; any other value (wrong type, wrong form, unknown field) replaced by a marker, as it
    may hold free text or an identifier in the wrong place."""
    from schemas import EVENT_TYPES
    if not isinstance(pseudonymised, dict):
        raise TypeError("dead_letter_payload needs an object; use Pseudonymiser.opaque for anything else")
    event_type = pseudonymised.get("event_type")
    cls = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    known = set(cls.model_fields) if cls else set()
    bad = {}
    for e in errors:
        name = e["loc"].split(".", 1)[0]
        if not name:
            continue
        value = pseudonymised.get(name)
        if e["type"] not in KEEP_VALUE_ERRORS:
            bad[name] = e["type"]
        elif e["type"] == "code_list" and not _code_shaped(value):
            bad[name] = e["type"]
    if cls is not None:
        for name in _code_fields(event_type):
            if name in pseudonymised and pseudonymised[name] is not None and not _code_shaped(pseudonymised[name]):
                bad.setdefault(name, "unchecked")
    out: dict = {}
    for position, (name, value) in enumerate(pseudonymised.items(), 1):
        if name in IDENTIFIER_FIELDS:
            out[name] = value if isinstance(value, str) and PSEUDONYM_RE.match(value) else REDACTED
        elif name == "event_type":
            out[name] = value if cls is not None else REDACTED
        elif name not in known:
            out[f"(unknown field #{position})"] = REDACTED
        elif name in bad:
            out[name] = REDACTED
        else:
            out[name] = value
    return out

