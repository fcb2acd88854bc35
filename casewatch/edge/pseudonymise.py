"""Pseudonymisation at the edge (domain definitions: docs/definitions.md): a keyed HMAC-SHA-256,
written as ``ps_`` and the first 32 lowercase hex characters of the digest.

* The HMAC input is scoped: ``casewatch-pseudonym``, the key version, the record's ``la_code`` and
  the identifier after Unicode NFKC normalisation and trimming, joined by NUL bytes. So one
  case-system id in two authorities is two children, no pseudonym links across authorities, and a
  full-width or space-padded variant of an id is the same child.
* Applied to the identifier fields of docs/events.md (``schemas.IDENTIFIER_FIELDS``).
* A value already of the pseudonym form is kept only when the caller says the source may send
  pseudonyms (the replay tools); otherwise it is replaced by a marker that fails validation.
* A string or whole-number identifier is replaced by its pseudonym. Any other value in an
  identifier field (a list, an object, a decimal, true/false, text with a lone UTF-16 surrogate) is
  replaced by a marker that fails validation, so the raw value never reaches Kafka, not even in a
  dead letter.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from functools import lru_cache
from typing import Any

from casewatch.config import Settings
from schemas import IDENTIFIER_FIELDS
from casewatch.edge.exceptions import PseudonymisationKeyError  # noqa: F401 - also importable from here

PREFIX = "ps_"
PSEUDONYM_RE = re.compile(r"^ps_[0-9a-f]{32}$")
# what a source without the pre-pseudonymised grant is told when it sends a ps_ reference
PSEUDONYM_REFUSED_MESSAGE = ("a pre-pseudonymised reference (ps_...) is not accepted from this source; "
                             "send the case-system identifier")
SURROGATE_RE = re.compile("[\ud800-\udfff]")
MIN_KEY_BYTES = 32
UNUSABLE_IDENTIFIER = "(redacted: not a string identifier)"
REFUSED_PSEUDONYM = "(redacted: pre-pseudonymised reference not accepted from this source)"
INVALID_TEXT = "(redacted: invalid Unicode)"
REDACTED_TEAM_RE = re.compile(r"^\(redacted team #[0-9a-f]{16}\)$")


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


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a UTF-16 surrogate code point (not encodable as UTF-8)."""
    return SURROGATE_RE.search(text) is not None


def normalise_identifier(identifier: str) -> str:
    """The form that is hashed: Unicode NFKC (full-width digits and letters become ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", identifier).strip()


class Pseudonymiser:
    def __init__(self, key: bytes, key_version: int = 1):
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymisationKeyError(f"the pseudonymisation key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.key_version = key_version

    @classmethod
    def from_settings(cls, settings: Settings) -> "Pseudonymiser":
        return cls(load_key(settings), settings.pseudonymisation_key_version)

    def pseudonym(self, identifier: str, la_code: str) -> str:
        """The pseudonym of one case-system identifier of the authority ``la_code``. Raises
        ``ValueError`` for text that is not valid Unicode (a lone surrogate)."""
        if has_lone_surrogate(identifier) or has_lone_surrogate(la_code):
            raise ValueError("the identifier is not valid Unicode")
        message = "\0".join(("casewatch-pseudonym", f"v{self.key_version}", la_code.strip(),
                              normalise_identifier(identifier)))
        digest = hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:32]

    def _field_value(self, value: Any, la_code: str, keep_pseudonyms: bool) -> Any:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return UNUSABLE_IDENTIFIER
        if has_lone_surrogate(value):
            return INVALID_TEXT
        if PSEUDONYM_RE.match(value):
            return value if keep_pseudonyms else REFUSED_PSEUDONYM
        return self.pseudonym(value, la_code)

    def redacted_team(self, team: str) -> str:
        """A dead letter's stand-in for a team code that is not configured: a keyed digest, so
        ``casewatch dlq replay`` can restore it once that team is configured, while the text itself
        (which may be a name) is never stored."""
        digest = hmac.new(self._key, b"casewatch-team\0" + team.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"(redacted team #{digest[:16]})"

    def restore_team(self, value: Any, teams: list[str]) -> Any:
        """The configured team whose stand-in ``value`` is, else ``value`` unchanged."""
        if isinstance(value, str) and REDACTED_TEAM_RE.match(value):
            for team in teams:
                if self.redacted_team(team) == value:
                    return team
        return value

    def opaque(self, value: Any) -> dict:
        """A dead-letter rendering of a body that is not a JSON object (or not JSON at all): its size
        and a keyed hash only, never content (it may hold identifiers that were never pseudonymised)."""
        import json
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        else:
            data = json.dumps(value, sort_keys=True, default=str).encode("utf-8", errors="surrogatepass")
        digest = hmac.new(self._key, data, hashlib.sha256).hexdigest()
        return {"undecodable_bytes": len(data), "hmac_sha256": digest}

    def event(self, raw: Any, keep_pseudonyms: bool = False) -> Any:
        """A copy of ``raw`` with every identifier field pseudonymised within the record's
        ``la_code`` (``raw`` is not changed). ``keep_pseudonyms``: values already of the pseudonym
        form are kept (replay tools only). A value that is not an object is returned as it is."""
        if not isinstance(raw, dict):
            return raw
        la_code = raw.get("la_code")
        la_code = la_code if isinstance(la_code, str) and not has_lone_surrogate(la_code) else ""
        out = dict(raw)
        for name in IDENTIFIER_FIELDS:
            if name in out:
                out[name] = self._field_value(out[name], la_code, keep_pseudonyms)
        return out


# -- what of an invalid record may be kept in a dead letter ------------------------------------
#
# A dead letter keeps only values that cannot carry free text: pseudonyms, code-list codes, the
# fixed values of a field (``outcome``: ``nfa``, ...), configured teams, ONS authority codes, ISO
# dates and date-times, UUIDs, collection years, numbers and true/false that validated. Every other
# string (a name typed into ``team`` or a code field, anything in an unknown field) is redacted.

# Errors whose value already has a bounded shape (a known code, a valid date, an ONS code, a UUID):
# the value is kept (when it also passes the shape check below) so the dead letter can be replayed
# once the cause is fixed.
KEEP_VALUE_ERRORS = frozenset({"code_list", "la_code", "date_order", "correction_of", "date_range",
                               "correction_target_unknown"})
REDACTED = "(redacted)"

from schemas.types import (COLLECTION_YEAR_PATTERN, DATE_PATTERN, DATETIME_PATTERN,  # noqa: E402
                           LA_CODE_PATTERN, SOURCE_SYSTEM_PATTERN, UUID_PATTERN)

_SHAPES = {
    "date": re.compile(DATE_PATTERN), "date-time": re.compile(DATETIME_PATTERN), "uuid": re.compile(UUID_PATTERN),
    "la_code": re.compile(LA_CODE_PATTERN), "collection_year": re.compile(COLLECTION_YEAR_PATTERN),
    "source_system": re.compile(SOURCE_SYSTEM_PATTERN),
}


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


@lru_cache(maxsize=None)
def _string_shapes(event_type: str) -> dict[str, tuple[str, frozenset[str]]]:
    """For each string field of an event type: (``shape``, fixed values). ``shape`` names the form
    a kept value must have (``date``, ``uuid``, ``la_code``, ``team``, ``code``, ``fixed``, ...)."""
    from schemas import EVENT_TYPES
    shapes: dict[str, tuple[str, frozenset[str]]] = {}
    for name, prop in EVENT_TYPES[event_type].model_json_schema().get("properties", {}).items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        fixed: set[str] = set()
        shape = None
        for o in options:
            item = o.get("items") or {}
            if "x-code-list" in o or "x-code-list" in item:
                shape = "code"
            elif "const" in o or "enum" in o:
                fixed.update(v for v in ([o["const"]] if "const" in o else o["enum"]) if isinstance(v, str))
                shape = shape or "fixed"
        if name in ("event_id", "correction_of"):
            shape = "uuid"
        elif name in ("la_code", "team", "collection_year", "source_system"):
            shape = name
        elif name in IDENTIFIER_FIELDS:
            shape = "pseudonym"
        elif shape is None:
            pattern = next((o.get("pattern") for o in options if o.get("pattern")), None)
            shape = {DATE_PATTERN: "date", DATETIME_PATTERN: "date-time"}.get(pattern, "text")
        shapes[name] = (shape, frozenset(fixed))
    return shapes


def _bounded(value: str, shape: str, fixed: frozenset[str], teams: frozenset[str]) -> bool:
    if shape == "pseudonym":
        return PSEUDONYM_RE.match(value) is not None
    if shape == "code":
        return value in _known_codes()
    if shape == "fixed":
        return value in fixed
    if shape == "team":
        return value in teams
    pattern = _SHAPES.get(shape)
    return pattern is not None and pattern.match(value) is not None


def _keepable(value: Any, shape: str, fixed: frozenset[str], teams: frozenset[str]) -> bool:
    if isinstance(value, str):
        return _bounded(value, shape, fixed, teams)
    if isinstance(value, list):
        return all(isinstance(v, str) and _bounded(v, shape, fixed, teams) for v in value)
    return value is None or isinstance(value, (bool, int, float))


def _code_shaped(value: Any) -> bool:
    codes = _known_codes()
    if isinstance(value, list):
        return all(isinstance(v, str) and v in codes for v in value)
    return isinstance(value, str) and value in codes


def dead_letter_payload(pseudonymised: Any, errors: list[dict], teams=None) -> Any:
    """The payload of a dead letter for a record that failed validation: identifier fields as
    pseudonyms; a known field's value kept when it validated (or only failed a list/configuration/
    order/plausibility rule) *and* is of a bounded shape (a code, a fixed value, a configured team
    of ``teams``, an ONS code, an ISO date, a UUID, a number); any other value (free text, wrong
    type or form, an unknown field) replaced by a marker, as it may hold a name or an identifier."""
    from schemas import EVENT_TYPES
    if not isinstance(pseudonymised, dict):
        raise TypeError("dead_letter_payload needs an object; use Pseudonymiser.opaque for anything else")
    team_codes = frozenset(teams or ())
    event_type = pseudonymised.get("event_type")
    cls = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    shapes = _string_shapes(event_type) if cls else {}
    bad = set()
    for e in errors:
        name = e["loc"].split(".", 1)[0]
        if name and e["type"] not in KEEP_VALUE_ERRORS:
            bad.add(name)
    out: dict = {}
    for position, (name, value) in enumerate(pseudonymised.items(), 1):
        if name in IDENTIFIER_FIELDS:
            out[name] = value if isinstance(value, str) and PSEUDONYM_RE.match(value) else REDACTED
        elif name == "event_type":
            out[name] = value if cls is not None else REDACTED
        elif name not in shapes:
            out[f"(unknown field #{position})"] = REDACTED
        elif name in bad or not _keepable(value, *shapes[name], team_codes):
            out[name] = REDACTED
        else:
            out[name] = value
    return out
