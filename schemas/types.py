"""Field types shared by the event models: strict JSON scalars, ISO dates, pseudonymised references
and code-list codes. Every error they raise carries our own message, never the input value."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, Strict, StringConstraints
from pydantic_core import PydanticCustomError, core_schema

from schemas import code_lists

PSEUDONYM_PATTERN = r"^ps_[0-9a-f]{32}$"
LA_CODE_PATTERN = r"^(E0[6-9][0-9]{6}|E1[0-9]{7})$"
TEAM_PATTERN = r"^[a-z0-9_]{1,32}$"
SOURCE_SYSTEM_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATETIME_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
COLLECTION_YEAR_PATTERN = r"^[0-9]{4}-[0-9]{2}$"

_DATE_RE = re.compile(DATE_PATTERN)
_DATETIME_RE = re.compile(DATETIME_PATTERN)
_UUID_RE = re.compile(UUID_PATTERN)


def _plausible(day: date, info: core_schema.ValidationInfo | None) -> None:
    """Dates outside ``context["date_range"]`` (earliest, latest; both included) are implausible:
    the ingest edge and the loader pass the configured range; other readers pass none."""
    bounds = (info.context or {}).get("date_range") if info is not None and isinstance(info.context, dict) else None
    if bounds and not (bounds[0] <= day <= bounds[1]):
        raise PydanticCustomError("date_range", "must be a plausible date, from {earliest} to {latest}",
                                  {"earliest": bounds[0].isoformat(), "latest": bounds[1].isoformat()})


def _iso_date_text(value: Any, info: core_schema.ValidationInfo | None = None) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        _plausible(value, info)
        return value
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            _plausible(day, info)
            return day
    raise PydanticCustomError("date_format", "must be an ISO date (YYYY-MM-DD)")


def _rfc3339_text(value: Any, info: core_schema.ValidationInfo | None = None) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        _plausible(value.date(), info)
        return value
    if isinstance(value, str) and _DATETIME_RE.match(value):
        try:
            moment = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
        except ValueError:
            pass
        else:
            _plausible(moment.date(), info)
            return moment
    raise PydanticCustomError("datetime_format", "must be an RFC 3339 date-time with a UTC offset")


def _uuid_text(value: Any) -> Any:
    if isinstance(value, str) and _UUID_RE.match(value):
        return value.lower()
    raise PydanticCustomError("uuid_format", "must be a UUID (8-4-4-4-12 hex digits)")


def _event_date(value: Any, info: core_schema.ValidationInfo) -> Any:
    return _iso_date_text(value, info)


def _event_moment(value: Any, info: core_schema.ValidationInfo) -> Any:
    return _rfc3339_text(value, info)


IsoDate = Annotated[date, BeforeValidator(_event_date),
                    Field(json_schema_extra={"pattern": DATE_PATTERN})]
Rfc3339 = Annotated[datetime, BeforeValidator(_event_moment),
                    Field(json_schema_extra={"pattern": DATETIME_PATTERN})]
EventId = Annotated[str, BeforeValidator(_uuid_text),
                    Field(json_schema_extra={"format": "uuid", "pattern": UUID_PATTERN})]
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict(), Field(ge=0, le=1_000)]
Fte = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False, strict=True)]
Ref = Annotated[str, Strict(), StringConstraints(pattern=PSEUDONYM_PATTERN)]
LaCode = Annotated[str, Strict(), StringConstraints(pattern=LA_CODE_PATTERN)]
Team = Annotated[str, Strict(), StringConstraints(pattern=TEAM_PATTERN)]
SourceSystem = Annotated[str, Strict(), StringConstraints(pattern=SOURCE_SYSTEM_PATTERN)]


class CodeList:
    """Marks a string field as a code from the named code list, checked against the lists of the
    event's collection year (``info.data["collection_year"]``, validated before any own field).

    ``only`` narrows the list for one field (e.g. ``rne`` of ``lac.started`` is only ``S``).
    The exported JSON Schema carries the codes of the latest collection year as ``enum``.
    """

    def __init__(self, name: str, only: tuple[str, ...] | None = None):
        self.name = name
        self.only = only

    def allowed(self, collection_year: str) -> list[str]:
        listed = code_lists.codes(self.name, collection_year)
        return [c for c in listed if self.only is None or c in self.only]

    def check(self, value: str, info: core_schema.ValidationInfo) -> str:
        year = (info.data or {}).get("collection_year") if info.data is not None else None
        if year is None:  # the collection year itself is invalid; that error is reported instead
            return value
        allowed = self.allowed(year)
        if value in allowed:
            return value
        other_years = [y for y in code_lists.collection_years()
                       if y != code_lists.code_list_year(year) and value in self.allowed(y)]
        hint = f" (valid in {', '.join(other_years)} only)" if other_years else ""
        raise PydanticCustomError(
            "code_list",
            "not a code of {code_list} for collection year {year}{hint}; allowed: {allowed}",
            {"code_list": self.name, "year": code_lists.code_list_year(year), "hint": hint,
             "allowed": ", ".join(allowed)})

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler):
        inner = core_schema.str_schema(strict=True, max_length=32)
        return core_schema.with_info_after_validator_function(self.check, inner)

    def __get_pydantic_json_schema__(self, schema, handler: GetJsonSchemaHandler):
        js = handler(schema)
        js["enum"] = self.allowed(code_lists.latest_year())
        js["x-code-list"] = self.name
        return js


def code(name: str, only: tuple[str, ...] | None = None):
    return Annotated[str, CodeList(name, only)]


def codes_list(name: str, max_items: int = 60):
    return Annotated[list[Annotated[str, CodeList(name)]], Field(max_length=max_items)]
