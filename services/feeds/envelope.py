"""What every feed shares: the event envelope, deterministic event ids, LA codes, dead letters.

Event ids (docs/events.md: the engine de-duplicates on ``event_id``) are UUIDv5 of the *source
record identity*: the feed, the LA, the child and the record's own key (an episode start, an
assessment id, a review date ...), never of the record's content. Importing the same file twice
gives the same ids, so nothing is counted twice. When a pseudonymisation key is configured the
child part of the identity is the child's pseudonym, so an event id cannot be used to confirm a
guessed case-system id; without a key (development, ``--out`` files) it is the raw id.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Iterable, Mapping

from casewatch.adapters.kafka.dead_letters import DeadLetterRecord
from services.feeds.exceptions import FeedConfigError

# Fixed namespace of every feed event id (never change it: ids would change and count twice).
FEEDS_NAMESPACE = uuid.UUID("6f1f2a8e-3c4b-5d2e-9a77-0c1a5e0fd903")

ONS_LA_CODE = re.compile(r"^(E0[6-9]\d{6}|E1\d{7})$")

# Old three-digit DfE LA numbers that CIN census and SSDA903 files carry -> ONS codes: every English
# authority (data in la_numbers.yaml, with the numbers of authorities since reorganised); a
# deployment may add or override pairs with --la-map OLD=ONS (or pass --la-code).
def _la_numbers() -> dict[str, str]:
    import yaml
    from importlib import resources
    table = yaml.safe_load(resources.files("services.feeds").joinpath("la_numbers.yaml").read_text("utf-8"))
    return {number: pair[0] for part in ("former", "current") for number, pair in table[part].items()}


OLD_LA_NUMBERS: dict[str, str] = _la_numbers()

UNASSIGNED_TEAM = "unassigned"


def parse_la_map(text: str | None) -> dict[str, str]:
    """``"975=E10000002,201=E09000001"`` -> mapping; checked against the ONS code pattern."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        old, sep, ons = part.partition("=")
        old, ons = old.strip(), ons.strip()
        if not sep or not old.isdigit() or not ONS_LA_CODE.match(ons):
            raise FeedConfigError("--la-map takes OLD=ONS pairs, e.g. 808=E06000004")
        out[old.lstrip("0") or "0"] = ons
    return out


def resolve_la_code(explicit: str | None, old_number: str | None, la_map: Mapping[str, str] | None = None) -> str:
    """The ONS LA code for a file: ``explicit`` (``--la-code``) wins; else the file's old LA number
    through ``la_map`` and the built-in table."""
    if explicit:
        if not ONS_LA_CODE.match(explicit):
            raise FeedConfigError("--la-code must be an ONS code such as E06000004")
        return explicit
    table = dict(OLD_LA_NUMBERS)
    table.update(la_map or {})
    key = (old_number or "").strip().lstrip("0")
    if key and key in table:
        return table[key]
    raise FeedConfigError("the file's LA number has no ONS code: pass --la-code or --la-map OLD=ONS")


# -- dates -------------------------------------------------------------------------------------
_UK_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_date(text: Any) -> date | None:
    """An ISO ``YYYY-MM-DD`` or UK ``dd/mm/yyyy`` date; None for blank; ValueError if malformed."""
    if text is None:
        return None
    if isinstance(text, date) and not isinstance(text, datetime):
        return text
    s = str(text).strip()
    if not s:
        return None
    m = _UK_DATE.match(s)
    if m:
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    if len(s) >= 10 and s[4] == "-" and s[7] == "-":
        return date.fromisoformat(s[:10])
    raise ValueError("not a date")


def year_ending(collection_end_year: int) -> date:
    return date(collection_end_year, 3, 31)


def collection_year_label(end_year: int) -> str:
    """Year ending 31 March 2018 -> ``2017-18``."""
    return f"{end_year - 1}-{end_year % 100:02d}"


# -- events ------------------------------------------------------------------------------------
@dataclass
class FeedContext:
    """Who the events are for and how their ids are made."""
    la_code: str
    source: str                                    # e.g. "import:cin-census"; also the id namespace
    team: str = UNASSIGNED_TEAM
    # (child id, la_code) -> the child's identity, e.g. a Pseudonymiser.pseudonym (scoped by authority)
    child_identity: Callable[[str, str], str] | None = None

    def identity_of_child(self, child_id: str) -> str:
        return self.child_identity(child_id, self.la_code) if self.child_identity else child_id

    def event_id(self, child_id: str, *parts: Any) -> str:
        name = "|".join([self.source, self.la_code, self.identity_of_child(child_id), *(str(p) for p in parts)])
        return str(uuid.uuid5(FEEDS_NAMESPACE, name))

    def event(self, event_type: str, child_id: str, identity: Iterable[Any], **fields: Any) -> dict:
        """One wire event (flat dict). ``identity``: the source record's own key parts; ``fields``
        with value None are left out. Dates become ISO strings."""
        ev: dict[str, Any] = {
            "event_id": self.event_id(child_id, event_type, *identity),
            "event_type": event_type,
            "schema_version": 1,
            "la_code": self.la_code,
            "team": self.team,
            "child_ref": child_id,
        }
        for name, value in fields.items():
            if value is None:
                continue
            if isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, (list, tuple)):
                value = [v.isoformat() if isinstance(v, date) else v for v in value]
            ev[name] = value
        return ev


# -- dead letters ------------------------------------------------------------------------------
@dataclass
class DeadLetter:
    """A source record that cannot be mapped. ``reason`` is a fixed code and ``loc`` names the
    element or column; neither ever holds an input value. ``payload`` keeps only mapped, non-
    identifying fields plus the raw ``child_ref`` (pseudonymised when it is published)."""
    reason: str
    loc: str
    payload: dict = field(default_factory=dict)
    msg: str = ""
    also: list[tuple[str, str]] = field(default_factory=list)  # further (reason, loc) of the same record

    def record(self, source: str, received_at: str | None = None) -> DeadLetterRecord:
        """The dead-letter topic's record of this rejection (stage ``map``)."""
        errors = [{"loc": self.loc, "msg": self.msg or REASON_MESSAGES.get(self.reason, self.reason),
                   "type": self.reason}]
        errors += [{"loc": loc, "msg": REASON_MESSAGES.get(reason, reason), "type": reason} for reason, loc in self.also]
        if received_at is None:
            return DeadLetterRecord(self.payload, errors, source, "map")
        return DeadLetterRecord(self.payload, errors, source, "map", received_at)

    def to_record(self, source: str, received_at: str | None = None) -> dict:
        """:meth:`record` as its JSON object (for a dead-letter file, or to publish)."""
        return self.record(source, received_at).to_dict()


REASON_MESSAGES = {
    "invalid_date": "not a valid date",
    "missing_date": "a required date is missing",
    "end_before_start": "the end date is before the start date",
    "unknown_code": "not a code of the list for this collection year",
    "missing_code": "a required code is missing",
    "missing_identifier": "the record has no child identifier",
    "stray_text": "unexpected text between elements",
    "unparseable_xml": "the file is not well-formed XML",
    "unknown_column": "the file lacks a required column",
    "review_after_collection_year": "the review is dated after the end of the return's collection year",
    "review_outside_period_of_care": "the review is not within any period of care of the child",
    "no_episode_for_child": "the child has no episode in the returns",
    "before_referral": "dated before the referral of its episode",
    "after_census_reference_date": "dated after the census reference date in the header",
    "before_census_year": "dated before the census period (1 April of the year before the reference date)",
    "required_field_not_in_source": "a field the event requires is not in the source",
}
