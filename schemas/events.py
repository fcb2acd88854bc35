"""The case events (docs/events.md): flat JSON, the envelope and the event's own fields side by side,
discriminated on ``event_type``. Unknown fields are rejected (no free text gets in).

Cross-field rules inside one event are field-level: ``ORDER_RULES`` lists (later field, earlier
field, message) and the later field carries the error.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Union
from zoneinfo import ZoneInfo

from pydantic import (BaseModel, ConfigDict, Field, Strict, StringConstraints, TypeAdapter, ValidationInfo,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from casewatch.domain.events import EVENT_TABLE, partition_key
from schemas import code_lists
from schemas.types import (COLLECTION_YEAR_PATTERN, PSEUDONYM_PATTERN, Count, EventId, Flag, Fte, IsoDate, LaCode, Ref, Rfc3339,
                           SourceSystem, Team, _iso_date_text, _rfc3339_text, code, codes_list)

LONDON = ZoneInfo("Europe/London")
BIRTH_MONTH_PATTERN = r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$"

# Fields whose raw values the ingest edge replaces by pseudonyms (docs/events.md).
IDENTIFIER_FIELDS = ("child_ref", "episode_ref", "worker_ref", "referral_ref", "assessment_ref", "s47_ref",
                     "from_contact_ref", "plan_ref")


def _loose_date(value: Any) -> date | None:
    try:
        return _iso_date_text(value)
    except Exception:
        return None


def _loose_london_date(value: Any) -> date | None:
    try:
        return _rfc3339_text(value).astimezone(LONDON).date()
    except Exception:
        return None


def _json_schema_extra(schema: dict, cls: type) -> None:
    """What the field annotations cannot say: child_ref required (or absent) by event type."""
    props = schema.get("properties", {})
    if getattr(cls, "CHILD_REF_REQUIRED", False) and "child_ref" in props:
        props["child_ref"] = {k: v for k, v in props["child_ref"].items() if k not in ("anyOf", "default")}
        props["child_ref"].update({"type": "string", "pattern": PSEUDONYM_PATTERN})
        schema.setdefault("required", []).append("child_ref")
    if getattr(cls, "NO_CHILD", False):
        for name in ("child_ref", "episode_ref", "worker_ref"):
            props[name] = {"type": "null", "description": "not allowed on this event type"}
    for rule in getattr(cls, "JSON_SCHEMA_FORBIDDEN", ()):
        schema.setdefault("allOf", []).append({"not": rule})


class EventBase(BaseModel):
    """The envelope. Subclasses add ``event_type`` (the discriminator) and their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_json_schema_extra)

    # the event type's main date field: from the domain's event table (casewatch.domain.events),
    # set on each concrete model when it is defined
    MAIN_DATE_FIELD: ClassVar[str | None] = None
    ORDER_RULES: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    CHILD_REF_REQUIRED: ClassVar[bool] = True
    NO_CHILD: ClassVar[bool] = False
    # combinations of field values the model refuses, stated for the exported JSON Schema
    JSON_SCHEMA_FORBIDDEN: ClassVar[tuple[dict, ...]] = ()

    event_id: EventId
    schema_version: Annotated[int, Field(ge=1, le=1, strict=True)] = 1
    collection_year: Annotated[str, Field(pattern=COLLECTION_YEAR_PATTERN, strict=True)] | None = Field(
        default=None, description="which code lists validate this event; default: the year of effective_date")
    occurred_at: Rfc3339 | None = None
    effective_date: IsoDate | None = Field(
        default=None, description="date for all working-day arithmetic; default: the event's own main date, "
                                  "else occurred_at in Europe/London")
    recorded_at: Rfc3339 | None = None
    la_code: LaCode
    team: Team
    child_ref: Ref | None = Field(default=None, validate_default=True)
    episode_ref: Ref | None = None
    worker_ref: Ref | None = None
    correction_of: EventId | None = None
    source_system: SourceSystem | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_effective_date_and_year(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("effective_date") is None:
            derived = _loose_date(data.get(cls.MAIN_DATE_FIELD)) if cls.MAIN_DATE_FIELD else None
            if derived is None:
                derived = _loose_london_date(data.get("occurred_at"))
            if derived is not None:
                data["effective_date"] = derived.isoformat()
        if data.get("collection_year") is None:
            effective = _loose_date(data.get("effective_date"))
            if effective is not None:
                data["collection_year"] = code_lists.collection_year_of(effective)
        return data

    @field_validator("collection_year")
    @classmethod
    def _consecutive_years(cls, value: str | None) -> str | None:
        if value is not None and (int(value[:4]) + 1) % 100 != int(value[5:]):
            raise PydanticCustomError("collection_year", "must be a collection year YYYY-YY (e.g. 2025-26)")
        return value

    @field_validator("team")
    @classmethod
    def _configured_team(cls, value: str, info: ValidationInfo) -> str:
        teams = (info.context or {}).get("teams")
        if teams and value not in teams:
            raise PydanticCustomError("team", "not a configured team; allowed: {allowed}",
                                      {"allowed": ", ".join(teams)})
        return value

    @field_validator("la_code")
    @classmethod
    def _served_la(cls, value: str, info: ValidationInfo) -> str:
        la_codes = (info.context or {}).get("la_codes")
        if la_codes and value not in la_codes:
            raise PydanticCustomError("la_code", "not a local authority this deployment serves; allowed: {allowed}",
                                      {"allowed": ", ".join(la_codes)})
        return value

    @field_validator("correction_of")
    @classmethod
    def _not_itself(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == (info.data or {}).get("event_id"):
            raise PydanticCustomError("correction_of", "must name another event, not this one")
        return value

    @field_validator("*")
    @classmethod
    def _order_rules(cls, value: Any, info: ValidationInfo) -> Any:
        for later, earlier, message in cls.ORDER_RULES:
            if info.field_name == later and value is not None:
                start = (info.data or {}).get(earlier)
                if start is not None and value < start:
                    raise PydanticCustomError("date_order", message)
        return value

    @field_validator("child_ref", "episode_ref", "worker_ref")
    @classmethod
    def _child_presence(cls, value: str | None, info: ValidationInfo) -> str | None:
        if cls.NO_CHILD and value is not None:
            raise PydanticCustomError("not_allowed", "not allowed on this event type (it is about no child)")
        if info.field_name == "child_ref" and value is None and cls.CHILD_REF_REQUIRED:
            raise PydanticCustomError("missing", "field required")
        return value

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("event_type")
        if field is not None:  # a concrete event type: its row of the domain's table (KeyError if none)
            cls.MAIN_DATE_FIELD = EVENT_TABLE[field.annotation.__args__[0]].main_date

    @property
    def partition_key(self) -> str:
        """The Kafka key: the child, so each child's events share a partition (the domain's
        ``partition_key``: ``wf:<la>:<team>`` for an event about no child)."""
        return partition_key(self.child_ref, self.la_code, self.team)

    def to_wire(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


# ----------------------------------------------------------------------------------------------
# Contacts and referrals

class ContactReceived(EventBase):
    event_type: Literal["contact.received"]
    contact_date: IsoDate
    source: code("referral_source")
    outcome: code("contact_outcome")
    early_help_active: Flag | None = None
    closed_and_logged: Flag | None = None


class ReferralReceived(EventBase):
    event_type: Literal["referral.received"]
    referral_date: IsoDate
    source: code("referral_source")
    from_contact_ref: Ref | None = None
    referral_nfa: Flag | None = None
    reasons: codes_list("assessment_factor") | None = None
    primary_need: code("primary_need") | None = None


class ReferralOutcome(EventBase):
    event_type: Literal["referral.outcome"]
    outcome_date: IsoDate
    outcome: code("referral_outcome")
    referral_ref: Ref | None = None


class CinEpisodeClosed(EventBase):
    event_type: Literal["cin_episode.closed"]
    closure_date: IsoDate
    reason: code("reason_for_closure")


# ----------------------------------------------------------------------------------------------
# Assessments, strategy discussions, section 47 enquiries, ICPCs

class AssessmentStarted(EventBase):
    event_type: Literal["assessment.started"]
    assessment_ref: Ref
    start_date: IsoDate
    referral_ref: Ref | None = None


class AssessmentCompleted(EventBase):
    event_type: Literal["assessment.completed"]
    assessment_ref: Ref
    authorisation_date: IsoDate
    factors: codes_list("assessment_factor") | None = None
    child_seen: Flag | None = None
    outcome: code("assessment_outcome") | None = None


class StrategyDiscussionHeld(EventBase):
    event_type: Literal["strategy_discussion.held"]
    date: IsoDate
    decision: code("strategy_decision")


class S47Started(EventBase):
    event_type: Literal["s47.started"]
    ORDER_RULES = (("icpc_target_date", "start_date", "the ICPC target date is before the S47 start date"),)
    s47_ref: Ref
    start_date: IsoDate
    icpc_target_date: IsoDate | None = None


class S47Completed(EventBase):
    event_type: Literal["s47.completed"]
    s47_ref: Ref
    end_date: IsoDate
    icpc_not_required: Flag | None = None
    outcome: code("s47_outcome") | None = None


class IcpcHeld(EventBase):
    event_type: Literal["icpc.held"]
    date: IsoDate
    s47_ref: Ref | None = None
    resulted_in_cpp: Flag
    transfer_in: Flag | None = None
    child_participation: code("participation") | None = None


# ----------------------------------------------------------------------------------------------
# Child protection plans

class CpPlanStarted(EventBase):
    event_type: Literal["cp_plan.started"]
    plan_ref: Ref
    start_date: IsoDate
    # Optional: the DfE CSC API feed does not carry a category; counted as `not_recorded`.
    initial_category: code("abuse_category") | None = None
    previous_plans: Count | None = None


class CpPlanCategoryChanged(EventBase):
    event_type: Literal["cp_plan.category_changed"]
    plan_ref: Ref
    date: IsoDate
    latest_category: code("abuse_category")


class CpReviewHeld(EventBase):
    event_type: Literal["cp_review.held"]
    plan_ref: Ref
    date: IsoDate
    due_date: IsoDate | None = None
    continue_plan: Flag | None = None
    quorate: Flag | None = None
    child_participation: code("participation") | None = None


class CpPlanEnded(EventBase):
    event_type: Literal["cp_plan.ended"]
    plan_ref: Ref
    end_date: IsoDate
    end_route: code("cp_end_route")


# ----------------------------------------------------------------------------------------------
# Looked-after children (SSDA903)

class LacStarted(EventBase):
    """A period of care opens. ``rne`` is the RNE of the period's first known episode: S when the
    period begins here; P/B/T/U/L when the child's first known episode continues a period whose
    beginning precedes the data (then ``began_before_data`` is true: looked after, but not a start
    in any window and no first-review clock), or when an import's stitching rule found a new period
    without an S row (``began_before_data`` false: a start)."""
    event_type: Literal["lac.started"]
    JSON_SCHEMA_FORBIDDEN = ({"properties": {"rne": {"const": "S"}, "began_before_data": {"const": True}},
                              "required": ["rne", "began_before_data"]},)
    decom: IsoDate
    # Optional: the DfE CSC API feed does not carry a legal status; counted as `not_recorded`.
    legal_status: code("legal_status") | None = None
    placement: code("placement")
    rne: code("reason_new_episode", only=("S", "P", "B", "T", "U", "L")) | None = None
    began_before_data: Flag = Field(
        default=False, description="true: the period began before the data (the child's first known episode "
                                   "has an RNE other than S); looked after, but not a start")
    need: code("primary_need", only=("N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8")) | None = None
    provider: code("place_provider") | None = None
    uasc: Flag | None = None
    # O11 needs the child's age at a snapshot: the month of birth only, never the full date.
    birth_month: Annotated[str, Strict(), StringConstraints(pattern=BIRTH_MONTH_PATTERN)] | None = Field(
        default=None, description="the child's month of birth, YYYY-MM (never the day)")

    @field_validator("began_before_data")
    @classmethod
    def _not_with_rne_s(cls, value: bool, info: ValidationInfo) -> bool:
        if value and (info.data or {}).get("rne") == "S":
            raise PydanticCustomError(
                "began_before_data", "an episode with RNE S begins its period: it cannot have begun before the data")
        return value


class LacLegalStatusChanged(EventBase):
    event_type: Literal["lac.legal_status_changed"]
    date: IsoDate
    rne: code("reason_new_episode", only=("L", "B", "U"))
    legal_status: code("legal_status")


class PlacementChanged(EventBase):
    event_type: Literal["placement.changed"]
    date: IsoDate
    rne: code("reason_new_episode", only=("P", "T", "B", "U"))
    placement: code("placement")
    provider: code("place_provider") | None = None
    reason_place_change: code("reason_place_change") | None = None
    distance_band: code("distance_band") | None = None
    inside_la: Flag | None = None


class LacEnded(EventBase):
    """A period of care ends (an X1 episode end is not an end of the period). No ``reason_ceased``
    = not recorded: the end is known to have happened but not why (counted as a leaving with
    outcome group ``not_recorded``); ``end_date_estimated`` says ``dec`` is not the real date."""
    event_type: Literal["lac.ended"]
    dec: IsoDate
    reason_ceased: code("reason_ceased") | None = None
    end_date_estimated: Flag = False


class LacReviewHeld(EventBase):
    event_type: Literal["lac_review.held"]
    date: IsoDate
    due_date: IsoDate | None = None
    participation: code("participation") | None = None


class StatutoryVisitHeld(EventBase):
    event_type: Literal["statutory_visit.held"]
    date: IsoDate
    due_date: IsoDate | None = None


# ----------------------------------------------------------------------------------------------
# Early help, proceedings, allocation, care leavers, workforce, voids

class EarlyHelpOpened(EventBase):
    event_type: Literal["early_help.opened"]
    start_date: IsoDate
    lead_agency: code("referral_source")
    stepped_down_from: code("stepped_down_from") | None = None


class EarlyHelpClosed(EventBase):
    event_type: Literal["early_help.closed"]
    end_date: IsoDate
    end_reason: code("early_help_end_reason")


class CourtApplication(EventBase):
    event_type: Literal["court.application"]
    ORDER_RULES = (
        ("letter_before_proceedings", "pre_proceedings_start",
         "the letter before proceedings is dated before the pre-proceedings start"),
        ("court_app_date", "pre_proceedings_start", "the court application is dated before the pre-proceedings start"),
        ("court_app_date", "letter_before_proceedings",
         "the court application is dated before the letter before proceedings"),
    )
    # start dates first: a rule's earlier field must be validated before its later field
    pre_proceedings_start: IsoDate | None = None
    letter_before_proceedings: IsoDate | None = None
    court_app_date: IsoDate
    order_sought: code("order_sought")


class CourtFinalOrder(EventBase):
    """Care proceedings end: the final order (or the application withdrawn). Stops the 26-week
    care proceedings clock that ``court.application`` (ico, care_order or supervision_order) opened."""
    event_type: Literal["court.final_order"]
    final_order_date: IsoDate
    order_made: code("final_order")


class CaseAllocated(EventBase):
    event_type: Literal["case.allocated"]
    case_type: code("case_type")
    allocation_date: IsoDate
    change_reason: code("sw_change_reason") | None = None


class CaseUnallocated(EventBase):
    event_type: Literal["case.unallocated"]
    case_type: code("case_type")
    allocation_date: IsoDate = Field(description="the date the case became unallocated")
    change_reason: code("sw_change_reason") | None = None


class CareLeaverStatus(EventBase):
    event_type: Literal["care_leaver.status"]
    date: IsoDate
    age_band: code("care_leaver_age_band")
    in_touch: code("in_touch")
    activity: code("activity") | None = None
    accommodation: code("accommodation") | None = None


class WorkforceSnapshot(EventBase):
    event_type: Literal["workforce.snapshot"]
    CHILD_REF_REQUIRED: ClassVar[bool] = False
    NO_CHILD: ClassVar[bool] = True
    date: IsoDate
    establishment_fte: Fte
    inpost_fte: Fte
    vacancy_fte: Fte
    agency_fte: Fte
    case_holding_fte: Fte
    leavers_fte: Fte | None = None
    absence_days: Fte | None = None


class EventVoided(EventBase):
    """Voids ``correction_of``; the voided event no longer counts anywhere. ``child_ref`` is needed
    (same partition as the voided event) except when voiding a workforce snapshot."""
    event_type: Literal["event.voided"]
    CHILD_REF_REQUIRED: ClassVar[bool] = False
    correction_of: EventId


EVENT_CLASSES: tuple[type[EventBase], ...] = (
    ContactReceived, ReferralReceived, ReferralOutcome, CinEpisodeClosed, AssessmentStarted,
    AssessmentCompleted, StrategyDiscussionHeld, S47Started, S47Completed, IcpcHeld, CpPlanStarted,
    CpPlanCategoryChanged, CpReviewHeld, CpPlanEnded, LacStarted, LacLegalStatusChanged, PlacementChanged,
    LacEnded, LacReviewHeld, StatutoryVisitHeld, EarlyHelpOpened, EarlyHelpClosed, CourtApplication,
    CourtFinalOrder, CaseAllocated, CaseUnallocated, CareLeaverStatus, WorkforceSnapshot, EventVoided,
)
EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["event_type"].annotation.__args__[0]: cls for cls in EVENT_CLASSES}

# Any one wire event (the domain's parsed event is casewatch.domain.history.Event: another thing).
WireEvent = Annotated[Union[tuple(EVENT_CLASSES)], Field(discriminator="event_type")]
event_adapter: TypeAdapter = TypeAdapter(WireEvent)
