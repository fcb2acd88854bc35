"""The exported JSON Schema (schemas/json/) is current, and accepts and rejects what the models do
for the structural cases. Code-list fields carry the codes of the latest collection year as enum."""
from __future__ import annotations

import copy

import jsonschema
import pytest

from schemas import ValidationFailure, parse_event
from schemas import export as schema_export
from schemas.examples import valid_examples

from tests.unit.schemas.test_schemas import CODE_FIELDS, ENVELOPE_BAD, REQUIRED, TYPE_BAD

EXAMPLES = valid_examples()
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def validator(event_type: str | None = None) -> jsonschema.Draft202012Validator:
    schema = schema_export.load(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


UNION = validator()


def model_accepts(event: dict) -> bool:
    try:
        parse_event(event)
        return True
    except ValidationFailure:
        return False


def schema_accepts(event: dict) -> bool:
    own = validator(event["event_type"]) if event.get("event_type") in EXAMPLES else None
    union = UNION.is_valid(event)
    if own is not None:
        assert own.is_valid(event) == union
    return union


def test_the_exported_files_match_the_models():
    assert schema_export.stale() == [], "run `casewatch schemas export`"


def test_stale_detection_notices_a_changed_file(tmp_path):
    schema_export.export(tmp_path)
    assert schema_export.stale(tmp_path) == []
    (tmp_path / "icpc.held.schema.json").write_text("{}\n")
    (tmp_path / "gone.schema.json").write_text("{}\n")
    (tmp_path / "lac.ended.schema.json").unlink()
    assert sorted(schema_export.stale(tmp_path)) == [
        "gone.schema.json (no such event type)", "icpc.held.schema.json (out of date)", "lac.ended.schema.json (missing)"]


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_valid_examples_pass_both(event_type):
    assert model_accepts(EXAMPLES[event_type])
    assert schema_accepts(EXAMPLES[event_type])


def structural_invalids():
    for event_type in sorted(EXAMPLES):
        for name in REQUIRED[event_type] + ["event_id", "la_code", "team", "event_type"]:
            event = copy.deepcopy(EXAMPLES[event_type])
            del event[name]
            yield f"{event_type}-missing-{name}", event
        event = copy.deepcopy(EXAMPLES[event_type])
        event["notes"] = "free text"
        yield f"{event_type}-unknown-field", event
    for field, value, _ in ENVELOPE_BAD:
        if field in ("collection_year",) and value == "2025-27":
            continue  # consecutive years: a rule the JSON Schema does not carry
        if field == "effective_date" and value == "2025-02-30":
            yield "calendar-date", dict(EXAMPLES["icpc.held"], effective_date=value)
            continue
        yield f"envelope-{field}-{value}", dict(EXAMPLES["icpc.held"], **{field: value})
    for event_type, field, value, _ in TYPE_BAD:
        yield f"{event_type}-{field}-{value!r}", dict(EXAMPLES[event_type], **{field: value})
    yield "child-on-workforce", dict(EXAMPLES["workforce.snapshot"], child_ref=EXAMPLES["icpc.held"]["child_ref"])
    no_child = dict(EXAMPLES["icpc.held"])
    del no_child["child_ref"]
    yield "no-child", no_child
    yield "unknown-event-type", dict(EXAMPLES["icpc.held"], event_type="icpc.cancelled")
    yield "too-many-factors", dict(EXAMPLES["assessment.completed"], factors=["3B"] * 61)
    # contract C1: an RNE S episode begins its period, it cannot have begun before the data
    yield "rne-s-began-before-data", dict(EXAMPLES["lac.started"], rne="S", began_before_data=True)
    yield "began-before-data-not-bool", dict(EXAMPLES["lac.started"], rne="L", began_before_data="true")
    yield "end-date-estimated-not-bool", dict(EXAMPLES["lac.ended"], end_date_estimated=1)


CASES = list(structural_invalids())


@pytest.mark.parametrize("case", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_structural_invalids_fail_both(case):
    assert not model_accepts(case)
    assert not UNION.is_valid(case)


@pytest.mark.parametrize("event_type,field,value", CODE_FIELDS)
def test_unknown_codes_fail_both(event_type, field, value):
    event = dict(EXAMPLES[event_type], **{field: value})
    assert not model_accepts(event)
    assert not UNION.is_valid(event)


def test_the_enum_is_the_latest_years_list():
    schema = schema_export.load("placement.changed")
    assert schema["x-code-lists-year"] == "2026-27"
    enum = schema["properties"]["placement"]["enum"]
    assert {"Z11", "Z12", "Z13", "Z14"} <= set(enum)
    assert not {"H5", "P2", "Z1"} & set(enum)
    # so a 2024-25 event with H5 passes the models (which know every year) but not the exported schema
    old = dict(EXAMPLES["placement.changed"], date="2024-09-02", effective_date="2024-09-02",
               collection_year="2024-25", placement="H5")
    assert model_accepts(old) and not UNION.is_valid(old)


def test_periods_before_the_data_and_ends_without_a_reason_pass_both():
    for rne in ("P", "B", "T", "U", "L"):
        event = dict(EXAMPLES["lac.started"], rne=rne, began_before_data=True)
        assert model_accepts(event) and schema_accepts(event)
    no_reason = {k: v for k, v in EXAMPLES["lac.ended"].items() if k != "reason_ceased"}
    no_reason["end_date_estimated"] = True
    assert model_accepts(no_reason) and schema_accepts(no_reason)
