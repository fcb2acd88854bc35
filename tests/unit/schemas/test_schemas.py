"""The event models against the contract (docs/events.md) and the code lists (docs/definitions.md)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from schemas import EVENT_TYPES, ValidationFailure, event_adapter, parse_event
from schemas.examples import CHILD, valid_examples

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events.md"

# Required own fields per event type, copied by hand from the bold fields of docs/events.md.
REQUIRED = {
    "contact.received": ["contact_date", "source", "outcome"],
    "referral.received": ["referral_date", "source"],
    "referral.outcome": ["outcome_date", "outcome"],
    "cin_episode.closed": ["closure_date", "reason"],
    "assessment.started": ["assessment_ref", "start_date"],
    "assessment.completed": ["assessment_ref", "authorisation_date"],
    "strategy_discussion.held": ["date", "decision"],
    "s47.started": ["s47_ref", "start_date"],
    "s47.completed": ["s47_ref", "end_date"],
    "icpc.held": ["date", "resulted_in_cpp"],
    "cp_plan.started": ["plan_ref", "start_date"],
    "cp_plan.category_changed": ["plan_ref", "date", "latest_category"],
    "cp_review.held": ["plan_ref", "date"],
    "cp_plan.ended": ["plan_ref", "end_date", "end_route"],
    "lac.started": ["decom", "placement"],
    "lac.legal_status_changed": ["date", "rne", "legal_status"],
    "placement.changed": ["date", "rne", "placement"],
    "lac.ended": ["dec"],  # no reason_ceased = not recorded (contract C1)
    "lac_review.held": ["date"],
    "statutory_visit.held": ["date"],
    "early_help.opened": ["start_date", "lead_agency"],
    "early_help.closed": ["end_date", "end_reason"],
    "court.application": ["court_app_date", "order_sought"],
    "court.final_order": ["final_order_date", "order_made"],
    "case.allocated": ["case_type", "allocation_date"],
    "case.unallocated": ["case_type", "allocation_date"],
    "care_leaver.status": ["date", "age_band", "in_touch"],
    "workforce.snapshot": ["date", "establishment_fte", "inpost_fte", "vacancy_fte", "agency_fte",
                           "case_holding_fte"],
    "event.voided": ["correction_of"],
}
ENVELOPE_REQUIRED = ["event_id", "la_code", "team"]
EXAMPLES = valid_examples()
SENTINEL = "Jane-Doe-LCS-999"


def errors_of(event: dict, **kw) -> list[dict]:
    with pytest.raises(ValidationFailure) as info:
        parse_event(event, **kw)
    return info.value.errors


def locs(errors: list[dict]) -> list[str]:
    return [e["loc"] for e in errors]


def test_the_catalogue_of_the_contract_has_a_model_for_every_event_type():
    documented = set(re.findall(r"^\| `([a-z_0-9]+\.[a-z_]+)` \|", DOCS.read_text(), flags=re.M))
    assert documented == set(EVENT_TYPES) == set(REQUIRED) == set(EXAMPLES)
    assert len(documented) == 29


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_valid_example_round_trips_json_model_json(event_type):
    text = json.dumps(EXAMPLES[event_type])
    model = event_adapter.validate_json(text)
    assert model.event_type == event_type
    assert json.loads(model.model_dump_json(exclude_none=True)) == EXAMPLES[event_type]
    assert parse_event(json.loads(text)).to_wire() == EXAMPLES[event_type]


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_each_required_field_missing_is_reported_on_that_field(event_type):
    for name in REQUIRED[event_type] + ENVELOPE_REQUIRED:
        event = dict(EXAMPLES[event_type])
        del event[name]
        errors = errors_of(event)
        assert {"loc": name, "msg": "field required"} in [{"loc": e["loc"], "msg": e["msg"]} for e in errors], name


@pytest.mark.parametrize("event_type", sorted(t for t in EXAMPLES if t not in ("workforce.snapshot", "event.voided")))
def test_child_ref_is_required_except_workforce_and_voids(event_type):
    event = dict(EXAMPLES[event_type])
    del event["child_ref"]
    assert locs(errors_of(event)) == ["child_ref"]


def test_workforce_snapshot_carries_no_child_and_is_keyed_by_team():
    event = dict(EXAMPLES["workforce.snapshot"], child_ref=CHILD)
    assert locs(errors_of(event)) == ["child_ref"]
    model = parse_event(EXAMPLES["workforce.snapshot"])
    assert model.partition_key == "wf:E06000004:cp_1"
    assert parse_event(EXAMPLES["icpc.held"]).partition_key == CHILD


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_unknown_field_is_rejected_without_naming_it(event_type):
    event = dict(EXAMPLES[event_type])
    event[SENTINEL] = "free text about the child"
    errors = errors_of(event)
    position = list(event).index(SENTINEL) + 1
    assert locs(errors) == [f"(unknown field #{position})"]
    assert SENTINEL not in json.dumps(errors)
    assert "free text" not in json.dumps(errors).replace("free text are not accepted", "")


# (field, bad value, expected message) that apply to every event type.
ENVELOPE_BAD = [
    ("event_id", "not-a-uuid", "must be a UUID (8-4-4-4-12 hex digits)"),
    ("event_id", 987654, "must be a UUID (8-4-4-4-12 hex digits)"),
    ("la_code", "808", "must be an ONS local authority code (E06-E09 and 6 digits, or E1 and 7 digits)"),
    ("la_code", "E05000004", "must be an ONS local authority code (E06-E09 and 6 digits, or E1 and 7 digits)"),
    ("team", "Team A", "must be a team code (1-32 of a-z, 0-9, _)"),
    ("occurred_at", "2025-06-02T10:15:00", "must be an RFC 3339 date-time with a UTC offset"),
    ("recorded_at", "yesterday", "must be an RFC 3339 date-time with a UTC offset"),
    ("effective_date", "02/06/2025", "must be an ISO date (YYYY-MM-DD)"),
    ("effective_date", "2025-02-30", "must be an ISO date (YYYY-MM-DD)"),
    ("collection_year", "2025-27", "must be a collection year YYYY-YY (e.g. 2025-26)"),
    ("collection_year", "2025/26", "must be a collection year YYYY-YY (e.g. 2025-26)"),
    ("schema_version", 2, "must be at most 1"),
    ("schema_version", "1", "must be a whole number"),
    ("episode_ref", "LCS-000123", "must be a pseudonymised reference (ps_ and 32 lowercase hex characters)"),
    ("correction_of", "void-that-one", "must be a UUID (8-4-4-4-12 hex digits)"),
]


@pytest.mark.parametrize("field,value,message", ENVELOPE_BAD)
def test_envelope_field_errors_are_field_level_and_quote_no_input(field, value, message):
    errors = errors_of(dict(EXAMPLES["referral.received"], **{field: value}))
    assert [(e["loc"], e["msg"]) for e in errors] == [(field, message)]
    assert str(value) not in json.dumps([e["msg"] for e in errors])


# (event_type, field, wrong-type value, message) for each kind of own field.
TYPE_BAD = [
    ("contact.received", "early_help_active", "yes", "must be true or false"),
    ("icpc.held", "resulted_in_cpp", 1, "must be true or false"),
    ("cp_plan.started", "previous_plans", -1, "must be at least 0"),
    ("cp_plan.started", "previous_plans", 1.5, "must be a whole number"),
    ("cp_plan.started", "previous_plans", True, "must be a whole number"),
    ("workforce.snapshot", "vacancy_fte", -0.5, "must be at least 0.0"),
    ("workforce.snapshot", "agency_fte", "4", "must be a number"),
    ("referral.received", "reasons", "3B", "must be a list"),
    ("referral.received", "referral_date", 20250602, "must be an ISO date (YYYY-MM-DD)"),
    ("lac.started", "decom", "2025-07-01T00:00:00", "must be an ISO date (YYYY-MM-DD)"),
    ("s47.started", "s47_ref", 7, "must be a string"),
    ("s47.started", "s47_ref", "S47-0001", "must be a pseudonymised reference (ps_ and 32 lowercase hex characters)"),
    ("contact.received", "source", 6, "must be a string"),
]


@pytest.mark.parametrize("event_type,field,value,message", TYPE_BAD)
def test_wrong_types_are_rejected_on_the_field(event_type, field, value, message):
    errors = errors_of(dict(EXAMPLES[event_type], **{field: value}))
    assert [(e["loc"], e["msg"]) for e in errors] == [(field, message)]


def test_nan_is_not_a_number_of_staff():
    errors = errors_of(dict(EXAMPLES["workforce.snapshot"], inpost_fte=float("nan")))
    assert [(e["loc"], e["msg"]) for e in errors] == [("inpost_fte", "must be a finite number")]


# (event_type, code field, a value that is no code of that list)
CODE_FIELDS = [
    ("contact.received", "source", "11"), ("contact.received", "outcome", "referral"),
    ("referral.received", "primary_need", "N10"), ("referral.outcome", "outcome", "closed"),
    ("cin_episode.closed", "reason", "RC10"), ("assessment.completed", "outcome", "icpc"),
    ("strategy_discussion.held", "decision", "yes"), ("s47.completed", "outcome", "cpp"),
    ("icpc.held", "child_participation", "PN8"), ("cp_plan.started", "initial_category", "NEGL"),
    ("cp_plan.category_changed", "latest_category", "ABC"), ("cp_review.held", "child_participation", "PN9"),
    ("cp_plan.ended", "end_route", "closed"), ("lac.started", "legal_status", "V1"), ("lac.started", "placement", "F1"),
    ("lac.started", "provider", "PR6"), ("lac.legal_status_changed", "legal_status", "C3"),
    ("placement.changed", "reason_place_change", "MOVE"), ("placement.changed", "distance_band", "far"),
    ("lac.ended", "reason_ceased", "E10"), ("lac_review.held", "participation", "PN"),
    ("early_help.opened", "lead_agency", "5E"), ("early_help.opened", "stepped_down_from", "lac"),
    ("early_help.closed", "end_reason", "closed"), ("court.application", "order_sought", "sgo"),
    ("case.allocated", "case_type", "eh"), ("case.allocated", "change_reason", "LEFT"),
    ("care_leaver.status", "age_band", "16-17"), ("care_leaver.status", "in_touch", "MAYBE"),
    ("care_leaver.status", "activity", "F3"), ("care_leaver.status", "accommodation", "A1"),
]


@pytest.mark.parametrize("event_type,field,value", CODE_FIELDS)
def test_unknown_code_names_the_allowed_values_not_the_input(event_type, field, value):
    errors = errors_of(dict(EXAMPLES[event_type], **{field: value}))
    assert [e["loc"] for e in errors] == [field]
    assert errors[0]["type"] == "code_list"
    assert "allowed: " in errors[0]["msg"]
    allowed = errors[0]["msg"].split("allowed: ", 1)[1].split(", ")
    assert value not in allowed and EXAMPLES[event_type][field] in allowed
    assert f" {value}" not in errors[0]["msg"].split("allowed: ")[0]


def test_code_lists_of_lists_are_checked_item_by_item():
    errors = errors_of(dict(EXAMPLES["assessment.completed"], factors=["3B", "25A", "16A"]))
    assert [e["loc"] for e in errors] == ["factors.1"]


def test_the_reason_for_a_new_episode_must_fit_the_event():
    # lac.started carries its first known episode's real RNE (any of S/P/B/T/U/L); legal status
    # changes L/B/U; placement changes P/T/B/U (T7)
    assert locs(errors_of(dict(EXAMPLES["lac.started"], rne="X"))) == ["rne"]
    for rne in ("P", "B", "T", "U", "L"):
        assert parse_event(dict(EXAMPLES["lac.started"], rne=rne, began_before_data=True)).began_before_data
    assert parse_event(dict(EXAMPLES["lac.started"], rne="P")).began_before_data is False  # a stitched new period
    # an RNE S episode begins its period: it cannot have begun before the data
    assert locs(errors_of(dict(EXAMPLES["lac.started"], rne="S", began_before_data=True))) == ["began_before_data"]
    assert locs(errors_of(dict(EXAMPLES["lac.started"], began_before_data="yes"))) == ["began_before_data"]
    assert locs(errors_of(dict(EXAMPLES["lac.legal_status_changed"], rne="P"))) == ["rne"]
    assert locs(errors_of(dict(EXAMPLES["placement.changed"], rne="L"))) == ["rne"]
    assert parse_event(dict(EXAMPLES["placement.changed"], rne="U")).rne == "U"
    # 903 need is N1-N8 only: N9 and N0 are CIN codes only
    assert locs(errors_of(dict(EXAMPLES["lac.started"], need="N9"))) == ["need"]


def _placement(day: str, code: str, year: str | None = None) -> dict:
    event = dict(EXAMPLES["placement.changed"], date=day, placement=code)
    for derived in ("effective_date", "collection_year", "occurred_at", "recorded_at"):
        del event[derived]
    if year:
        event["collection_year"] = year
    return event


def test_place_codes_follow_the_collection_year():
    # T8 placement codes: H5/P2/Z1 valid up to 2024-25, Z11-Z14 from 2025-26
    for code in ("H5", "P2", "Z1"):
        assert parse_event(_placement("2024-09-02", code)).collection_year == "2024-25"
        assert parse_event(_placement("2023-09-04", code)).collection_year == "2023-24"
        errors = errors_of(_placement("2025-09-01", code))
        assert locs(errors) == ["placement"]
        assert "for collection year 2025-26 (valid in 2023-24, 2024-25 only)" in errors[0]["msg"]
        assert locs(errors_of(_placement("2026-09-01", code))) == ["placement"]
    for code in ("Z11", "Z12", "Z13", "Z14"):
        assert parse_event(_placement("2025-09-01", code)).placement == code
        assert locs(errors_of(_placement("2025-03-31", code))) == ["placement"]  # 31 March: still 2024-25
    # an explicit collection_year chooses the lists
    assert parse_event(_placement("2025-04-01", "H5", year="2024-25")).placement == "H5"


def test_years_outside_the_files_use_the_nearest_year_on_file():
    assert parse_event(_placement("2017-06-01", "H5")).collection_year == "2017-18"
    assert locs(errors_of(_placement("2031-06-01", "H5"))) == ["placement"]


def _without_dates(event_type: str) -> dict:
    event = dict(EXAMPLES[event_type])
    for derived in ("effective_date", "collection_year"):
        del event[derived]
    return event


def test_effective_date_defaults_to_the_events_own_main_date():
    event = _without_dates("assessment.completed")
    event["occurred_at"] = "2025-07-30T09:00:00+01:00"  # entered two days after authorisation
    model = parse_event(event)
    assert model.effective_date.isoformat() == "2025-07-28"
    assert model.collection_year == "2025-26"
    event = _without_dates("lac.ended")
    assert parse_event(event).effective_date.isoformat() == "2026-03-02"


def test_effective_date_from_occurred_at_is_the_london_date():
    event = _without_dates("event.voided")
    event["occurred_at"] = "2025-06-30T23:30:00Z"  # 00:30 BST on 1 July
    model = parse_event(event)
    assert model.effective_date.isoformat() == "2025-07-01"
    event["occurred_at"] = "2025-03-31T22:30:00Z"  # 23:30 BST (from 30 March 2025): still 2024-25
    model = parse_event(event)
    assert (model.effective_date.isoformat(), model.collection_year) == ("2025-03-31", "2024-25")
    event["occurred_at"] = "2025-03-31T23:30:00Z"  # 00:30 BST on 1 April: 2025-26
    model = parse_event(event)
    assert (model.effective_date.isoformat(), model.collection_year) == ("2025-04-01", "2025-26")
    event["occurred_at"] = "2025-01-31T23:30:00Z"  # GMT in winter: the same date
    assert parse_event(event).effective_date.isoformat() == "2025-01-31"


def test_an_explicit_effective_date_is_kept():
    event = dict(EXAMPLES["icpc.held"], effective_date="2025-06-25")
    assert parse_event(event).effective_date.isoformat() == "2025-06-25"


def test_end_before_start_inside_one_event_is_reported_on_the_later_field():
    event = dict(EXAMPLES["court.application"], pre_proceedings_start="2025-05-01", letter_before_proceedings="2025-04-28")
    errors = errors_of(event)
    assert [(e["loc"], e["msg"]) for e in errors] == [
        ("letter_before_proceedings", "the letter before proceedings is dated before the pre-proceedings start")]
    event = dict(EXAMPLES["court.application"], pre_proceedings_start="2025-07-01", letter_before_proceedings="2025-07-01")
    assert [(e["loc"], e["msg"]) for e in errors_of(event)] == [
        ("court_app_date", "the court application is dated before the pre-proceedings start")]
    event = dict(EXAMPLES["s47.started"], icpc_target_date="2025-06-03")
    assert locs(errors_of(event)) == ["icpc_target_date"]
    # same day is allowed
    assert parse_event(dict(EXAMPLES["s47.started"], icpc_target_date="2025-06-04")).icpc_target_date.isoformat() == "2025-06-04"


def test_a_correction_cannot_name_itself():
    event = dict(EXAMPLES["event.voided"], correction_of=EXAMPLES["event.voided"]["event_id"])
    assert locs(errors_of(event)) == ["correction_of"]


def test_event_type_problems_are_named_without_echoing_the_value():
    errors = errors_of(dict(EXAMPLES["icpc.held"], event_type=SENTINEL))
    assert [e["loc"] for e in errors] == ["event_type"]
    assert errors[0]["msg"].startswith("unknown event_type; allowed: contact.received, referral.received")
    assert SENTINEL not in json.dumps(errors)
    event = dict(EXAMPLES["icpc.held"])
    del event["event_type"]
    assert errors_of(event) == [{"loc": "event_type", "msg": "field required", "type": "event_type"}]
    assert errors_of([EXAMPLES["icpc.held"]]) == [
        {"loc": "", "msg": "an event must be a JSON object", "type": "model_type"}]


def test_configured_teams_and_authorities_are_checked_when_given():
    event = dict(EXAMPLES["icpc.held"], team="cp_9", la_code="E06000005")
    errors = errors_of(event, teams=["cp_1", "cin_1"], la_codes=["E06000004"])
    assert [(e["loc"], e["msg"]) for e in errors] == [
        ("la_code", "not a local authority this deployment serves; allowed: E06000004"),
        ("team", "not a configured team; allowed: cp_1, cin_1")]
    assert parse_event(event).team == "cp_9"  # only the form is checked without a configuration


def test_no_error_message_quotes_an_input_value_anywhere():
    bad = {"event_id": SENTINEL, "event_type": "placement.changed", "la_code": SENTINEL, "team": SENTINEL,
           "child_ref": 123, "occurred_at": SENTINEL, "date": SENTINEL, "rne": SENTINEL, "placement": [SENTINEL],
           "provider": {"x": SENTINEL}, "inside_la": SENTINEL, SENTINEL: SENTINEL, "distance_band": SENTINEL * 3}
    errors = errors_of(bad)
    assert len(errors) >= 9
    assert SENTINEL not in json.dumps(errors)
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)


def test_birth_month_is_a_month_never_a_full_date_of_birth():
    ok = dict(EXAMPLES["lac.started"], birth_month="2014-05")
    assert parse_event(ok)
    for bad in ("2014-05-17", "2014-13", "14-05", "May 2014", 201405):
        assert "birth_month" in str(locs(errors_of(dict(EXAMPLES["lac.started"], birth_month=bad))))
