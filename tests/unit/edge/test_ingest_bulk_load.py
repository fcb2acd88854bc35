"""The bulk loader's reading, event ids, summary and exit codes (recording producer, no Kafka)."""
from __future__ import annotations

import json
import uuid

from casewatch import cli
from casewatch.config import get_settings
from schemas.examples import valid_examples
from casewatch.edge.bulk_load import EVENT_ID_NAMESPACE, csv_row_to_event, load_files
from casewatch.adapters.kafka.publisher import EventPublisher

from tests.unit.services.ingest.test_ingest_api import KEY, RecordingProducer, pseudonym, settings

CSV = """event_type,event_id,la_code,team,child_ref,referral_date,source,reasons,referral_nfa,primary_need
referral.received,,E06000004,cp_1,LCS-1,2025-06-02,6,3B;4B,false,N4
referral.received,,E06000004,cp_1,LCS-2,2025-06-03,2A,,TRUE,
referral.received,,E06000004,cp_1,LCS-3,2025-06-03,99,,false,
"""


def publisher_with(producer):
    return EventPublisher(settings(teams="cp_1,lac_1"), source_system="loader", source="loader", producer=producer)


def test_csv_cells_are_converted_by_the_event_types_schema():
    row = {"event_type": "cp_plan.started", "previous_plans": "2", "child_ref": "LCS-1", "team": "",
           "plan_ref": "P1", "start_date": "2025-06-24", "initial_category": "NEG"}
    assert csv_row_to_event(row) == {"event_type": "cp_plan.started", "previous_plans": 2, "child_ref": "LCS-1",
                                     "plan_ref": "P1", "start_date": "2025-06-24", "initial_category": "NEG"}
    row = {"event_type": "workforce.snapshot", "vacancy_fte": "3.5", "date": "2025-09-30"}
    assert csv_row_to_event(row)["vacancy_fte"] == 3.5
    row = {"event_type": "assessment.completed", "factors": "3B; 16A", "child_seen": "no"}
    assert csv_row_to_event(row) == {"event_type": "assessment.completed", "factors": ["3B", "16A"], "child_seen": False}


def test_csv_load_publishes_valid_rows_and_dead_letters_the_rest(tmp_path):
    path = tmp_path / "referrals.csv"
    path.write_text(CSV)
    producer = RecordingProducer()
    summary = load_files([path], publisher_with(producer))
    assert (summary.read, summary.published, summary.dead_lettered) == (3, 2, 1)
    assert dict(summary.rejected_by_reason) == {"code_list (source)": 1}
    assert summary.rejections[0].startswith("referrals.csv:4: source: not a code of referral_source")
    first = producer.on("ev")[0][2]
    assert first["reasons"] == ["3B", "4B"] and first["referral_nfa"] is False and first["primary_need"] == "N4"
    assert first["child_ref"] == pseudonym("LCS-1")
    assert producer.on("ev")[1][2]["referral_nfa"] is True


def test_event_ids_are_stable_uuid5_of_the_pseudonymised_record_or_the_given_one(tmp_path):
    event = valid_examples()["lac.ended"]
    del event["event_id"]
    event["child_ref"] = "LCS-77"
    given = dict(event, event_id="5f0c6a52-9d1e-4c36-8d1e-0000000000ff")
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(event) + "\n\n" + json.dumps(given) + "\n")
    runs = []
    for _ in range(2):
        producer = RecordingProducer()
        load_files([path], publisher_with(producer))
        runs.append([v["event_id"] for _, _, v in producer.on("ev")])
    pseudonymised = dict(event, child_ref=pseudonym("LCS-77"))
    derived = str(uuid.uuid5(EVENT_ID_NAMESPACE, json.dumps(pseudonymised, sort_keys=True, separators=(",", ":"))))
    assert runs[0] == runs[1] == [derived, "5f0c6a52-9d1e-4c36-8d1e-0000000000ff"]


def test_lines_that_are_not_json_are_dead_lettered_without_content(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"child_ref": "LCS-5", \n[1, 2]\n')
    producer = RecordingProducer()
    summary = load_files([path], publisher_with(producer))
    assert dict(summary.rejected_by_reason) == {"json_invalid": 1, "model_type": 1}
    letters = [v for _, _, v in producer.on("dl")]
    assert [set(letter["payload"]) for letter in letters] == [{"undecodable_bytes", "hmac_sha256"}] * 2
    assert "LCS-5" not in json.dumps(letters)


def test_dry_run_publishes_nothing(tmp_path):
    path = tmp_path / "referrals.csv"
    path.write_text(CSV)
    producer = RecordingProducer()
    summary = load_files([path], publisher_with(producer), dry_run=True)
    assert (summary.read, summary.rejected, producer.records) == (3, 1, [])
    assert summary.render(dry_run=True).splitlines()[0] == "read 3, valid 2, rejected 1"


def test_the_command_exits_1_when_anything_was_rejected_and_2_for_a_missing_file(tmp_path, monkeypatch, capsys):
    path = tmp_path / "referrals.csv"
    path.write_text(CSV)
    monkeypatch.setenv("CASEWATCH_PSEUDONYMISATION_KEY", KEY)
    monkeypatch.setenv("CASEWATCH_TEAMS", "cp_1")
    get_settings.cache_clear()
    try:
        assert cli.main(["load", "--dry-run", str(path)]) == 1
        out = capsys.readouterr()
        assert "read 3, valid 2, rejected 1" in out.out and "code_list (source)" in out.out
        assert "LCS-" not in out.out + out.err
        path.write_text(CSV.rsplit("referral.received,,E06000004,cp_1,LCS-3", 1)[0])
        assert cli.main(["load", "--dry-run", str(path)]) == 0
        assert cli.main(["load", "--dry-run", str(tmp_path / "nope.jsonl")]) == 2
    finally:
        get_settings.cache_clear()


def test_the_loader_dead_letters_surrogates_implausible_dates_and_pseudonyms_with_reasons(tmp_path):
    """Issue 19 items 5-7 in the loader: a lone surrogate, a date of 9999 or 1066 and a ps_ reference
    (an extract holds raw ids) are dead letters with their reason, never a crash."""
    base = {"event_type": "referral.received", "la_code": "E06000004", "team": "cp_1", "child_ref": "LCS-8",
            "referral_date": "2025-06-02", "source": "6"}
    lines = [json.dumps(dict(base, child_ref="LCS-\ud800")),                        # escaped: valid JSON text
             json.dumps(dict(base, referral_date="9999-12-31")),
             json.dumps(dict(base, referral_date="1066-10-14")),
             json.dumps(dict(base, child_ref="ps_" + "ab" * 16)),
             json.dumps(base)]
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    producer = RecordingProducer()
    summary = load_files([path], publisher_with(producer))
    assert (summary.read, summary.published, summary.dead_lettered) == (5, 1, 4)
    assert dict(summary.rejected_by_reason) == {"unicode_invalid (child_ref)": 1, "date_range (referral_date)": 2,
                                                "pseudonym_not_permitted (child_ref)": 1}
    letters = [v for _, _, v in producer.on("dl")]
    assert all(letter["payload"]["child_ref"] == "(redacted)" for letter in (letters[0], letters[3]))
    assert [letter["payload"]["referral_date"] for letter in letters[1:3]] == ["9999-12-31", "1066-10-14"]


def test_stable_event_id_is_the_standard_uuid5_of_the_canonical_json():
    # expectation from the standard library's uuid5, over ASCII, accented, CJK and astral text
    from casewatch.edge.bulk_load import stable_event_id
    records = [{"child_ref": "ps_" + "0" * 32, "n": n, "x": text, "f": n / 7}
               for n, text in enumerate(["", "plain", "Zoë", "寄養", "\U0001F600 emoji", 'q"uote\\'])]
    for record in records:
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert stable_event_id(record) == str(uuid.uuid5(EVENT_ID_NAMESPACE, canonical))
