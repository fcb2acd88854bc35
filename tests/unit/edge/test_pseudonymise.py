"""Pseudonymisation at the edge: keyed HMAC-SHA-256, ``ps_`` + 32 hex, for the identifier fields
of docs/events.md, scoped by key version and authority (contract C3); no key, no start."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from casewatch import cli
from casewatch.config import Settings, get_settings
from casewatch.edge.pseudonymise import (INVALID_TEXT, REDACTED, REFUSED_PSEUDONYM, UNUSABLE_IDENTIFIER,
                                         PseudonymisationKeyError, Pseudonymiser, dead_letter_payload, load_key)

KEY = b"k" * 16 + b"0123456789abcdef"  # 32 bytes
# The identifier fields, copied from docs/events.md ("The ingest edge replaces any raw value in ...").
DOC_FIELDS = ["child_ref", "episode_ref", "worker_ref", "referral_ref", "assessment_ref", "s47_ref",
              "from_contact_ref", "plan_ref"]


LA = "E06000004"


def expected(key: bytes, identifier: str, la_code: str = LA, version: int = 1) -> str:
    # docs/events.md: HMAC-SHA-256 of "casewatch-pseudonym", "v<key version>", the LA code and the
    # NFKC-normalised, trimmed identifier, joined by NUL bytes; "ps_" + the first 32 hex characters.
    message = b"\0".join([b"casewatch-pseudonym", f"v{version}".encode(), la_code.encode(), identifier.encode()])
    return "ps_" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def test_pseudonym_is_the_truncated_keyed_hmac_of_version_authority_and_id():
    p = Pseudonymiser(KEY)
    assert p.pseudonym("LCS-000123", LA) == expected(KEY, "LCS-000123")
    assert len(p.pseudonym("LCS-000123", LA)) == 35
    assert p.pseudonym("LCS-000123", LA) != p.pseudonym("LCS-000124", LA)
    assert Pseudonymiser(KEY[::-1]).pseudonym("LCS-000123", LA) != p.pseudonym("LCS-000123", LA)
    assert Pseudonymiser(KEY, key_version=2).pseudonym("LCS-000123", LA) == expected(KEY, "LCS-000123", version=2)


def test_one_id_in_two_authorities_is_two_pseudonyms():
    p = Pseudonymiser(KEY)
    assert p.pseudonym("ZZ-CHILD-7731", "E06000004") != p.pseudonym("ZZ-CHILD-7731", "E08000025")
    assert p.pseudonym("ZZ-CHILD-7731", "E08000025") == expected(KEY, "ZZ-CHILD-7731", "E08000025")


def test_full_width_and_space_padded_variants_are_the_same_id():
    p = Pseudonymiser(KEY)
    plain = p.pseudonym("LCS-000123", LA)
    assert p.pseudonym(" LCS-000123\t", LA) == plain
    assert p.pseudonym("\uff2c\uff23\uff33-\uff10\uff10\uff10\uff11\uff12\uff13", LA) == plain  # full-width
    assert p.pseudonym("LCS-000124", LA) != plain


def test_text_with_a_lone_surrogate_is_never_hashed():
    p = Pseudonymiser(KEY)
    with pytest.raises(ValueError):
        p.pseudonym("LCS-\ud800", LA)
    assert p.event({"la_code": LA, "child_ref": "LCS-\ud800", "worker_ref": "W\udfff"}) == {
        "la_code": LA, "child_ref": INVALID_TEXT, "worker_ref": INVALID_TEXT}


def test_every_identifier_field_of_the_contract_is_replaced_and_nothing_else():
    p = Pseudonymiser(KEY)
    raw = {name: f"RAW-{i}" for i, name in enumerate(DOC_FIELDS)}
    raw.update(event_type="icpc.held", date="2025-06-24", team="cp_1", source="6", la_code="E08000025")
    out = p.event(raw)
    for i, name in enumerate(DOC_FIELDS):
        assert out[name] == expected(KEY, f"RAW-{i}", "E08000025")
    assert {k: out[k] for k in ("event_type", "date", "team", "source")} == {
        "event_type": "icpc.held", "date": "2025-06-24", "team": "cp_1", "source": "6"}
    assert raw["child_ref"] == "RAW-0"  # the input is not changed


def test_a_pseudonym_is_kept_only_for_the_replay_tools():
    p = Pseudonymiser(KEY)
    once = p.event({"la_code": LA, "child_ref": "LCS-1"})
    assert p.event(once, keep_pseudonyms=True) == once
    # from any other source a pseudonym is refused (a marker that fails validation), never passed on
    assert p.event(once) == {"la_code": LA, "child_ref": REFUSED_PSEUDONYM}
    # upper-case hex is not the pseudonym form: treated as a raw value
    upper = "ps_0123456789ABCDEF0123456789ABCDEF"
    assert p.event({"la_code": LA, "child_ref": upper})["child_ref"] == expected(KEY, upper)


def test_numeric_ids_are_pseudonymised_and_other_shapes_never_pass_through():
    p = Pseudonymiser(KEY)
    out = p.event({"la_code": LA, "child_ref": 123456, "plan_ref": ["LCS-9"], "s47_ref": {"id": "LCS-9"},
                   "worker_ref": True, "episode_ref": None})
    assert out["child_ref"] == expected(KEY, "123456")
    assert out["plan_ref"] == out["s47_ref"] == out["worker_ref"] == UNUSABLE_IDENTIFIER
    assert out["episode_ref"] is None
    assert "LCS-9" not in json.dumps(out)


def test_keys_shorter_than_32_bytes_are_refused():
    with pytest.raises(PseudonymisationKeyError):
        Pseudonymiser(b"x" * 31)
    with pytest.raises(PseudonymisationKeyError, match="too short"):
        load_key(Settings(pseudonymisation_key="x" * 31))
    with pytest.raises(PseudonymisationKeyError, match="no pseudonymisation key"):
        load_key(Settings(pseudonymisation_key=None, pseudonymisation_key_file=None))


def test_key_from_a_file(tmp_path):
    path = tmp_path / "key"
    path.write_text("f" * 40 + "\n")
    assert load_key(Settings(pseudonymisation_key=None, pseudonymisation_key_file=path)) == b"f" * 40


@pytest.mark.parametrize("argv", [["ingest"], ["load", "events.jsonl"], ["dlq", "replay"]])
def test_ingest_loader_and_replay_refuse_to_start_without_a_key(argv, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "events.jsonl").write_text("{}\n")
    monkeypatch.delenv("CASEWATCH_PSEUDONYMISATION_KEY", raising=False)
    monkeypatch.delenv("CASEWATCH_PSEUDONYMISATION_KEY_FILE", raising=False)
    get_settings.cache_clear()
    try:
        assert cli.main(argv) == 2
    finally:
        get_settings.cache_clear()
    assert "no pseudonymisation key" in capsys.readouterr().err


def test_dead_letter_payload_keeps_known_codes_and_redacts_the_rest():
    # H5 is a PLACE code of 2024-25 (kept, for a replay); RAW-ID-5 is no code at all (redacted)
    p = Pseudonymiser(KEY)
    raw = {"event_id": "5f0c6a52-9d1e-4c36-8d1e-000000000001", "event_type": "placement.changed",
           "la_code": "E06000004", "team": "lac_1", "child_ref": "LCS-77", "date": "2025-09-01",
           "rne": "RAW-ID-5", "placement": "H5", "inside_la": "Jane Smith's aunt", "Jane": "Smith", "episode_ref": ["LCS-78"]}
    errors = [{"loc": "rne", "msg": "...", "type": "code_list"},
              {"loc": "placement", "msg": "...", "type": "code_list"},
              {"loc": "inside_la", "msg": "must be true or false", "type": "bool_type"},
              {"loc": "(unknown field #10)", "msg": "...", "type": "extra_forbidden"},
              {"loc": "episode_ref", "msg": "...", "type": "string_pattern_mismatch"}]
    out = dead_letter_payload(p.event(raw), errors, teams=["lac_1"])
    assert out == {"event_id": "5f0c6a52-9d1e-4c36-8d1e-000000000001", "event_type": "placement.changed",
                   "la_code": "E06000004", "team": "lac_1", "child_ref": expected(KEY, "LCS-77"),
                   "date": "2025-09-01", "rne": REDACTED, "placement": "H5", "inside_la": REDACTED,
                   "(unknown field #10)": REDACTED, "episode_ref": REDACTED}
    assert "Jane" not in json.dumps(out) and "LCS-7" not in json.dumps(out) and "RAW-ID" not in json.dumps(out)


def test_dead_letter_payload_redacts_free_text_in_team_and_every_unbounded_string():
    p = Pseudonymiser(KEY)
    raw = {"event_id": "5f0c6a52-9d1e-4c36-8d1e-000000000002", "event_type": "assessment.completed",
           "la_code": "Jane Smith", "team": "jane_smith", "child_ref": "LCS-77", "assessment_ref": "A-1",
           "authorisation_date": "Jane", "factors": ["1A", "Jane Smith"], "outcome": "Jane", "child_seen": "Jane",
           "collection_year": "Jane", "correction_of": "Jane"}
    # even when no error names them (e.g. a team that is not configured: the same pattern as a name)
    out = dead_letter_payload(p.event(raw), [{"loc": "team", "msg": "...", "type": "team"}], teams=["cp_1"])
    assert "Jane" not in json.dumps(out).replace("(redacted)", "") and "jane" not in json.dumps(out)
    assert out["team"] == out["la_code"] == out["factors"] == out["outcome"] == REDACTED
    assert out["child_ref"] == expected(KEY, "LCS-77", "Jane Smith")
    # a configured team, a known code list and a fixed value are kept
    good = dict(raw, la_code=LA, team="cp_1", factors=["1A"], outcome="nfa", authorisation_date="2025-06-01")
    out = dead_letter_payload(p.event(good), [], teams=["cp_1"])
    assert (out["la_code"], out["team"], out["factors"], out["outcome"], out["authorisation_date"]) == (
        LA, "cp_1", ["1A"], "nfa", "2025-06-01")


def test_opaque_rendering_of_a_body_that_is_not_an_object():
    p = Pseudonymiser(KEY)
    rendering = p.opaque(b"LCS-000123 Jane")
    assert rendering == {"undecodable_bytes": 15,
                         "hmac_sha256": hmac.new(KEY, b"LCS-000123 Jane", hashlib.sha256).hexdigest()}


def test_an_unconfigured_team_is_kept_only_as_a_keyed_digest_that_a_replay_can_restore():
    from casewatch.adapters.kafka.publisher import EventPublisher
    from tests.unit.services.ingest.test_ingest_api import RecordingProducer
    s = Settings(pseudonymisation_key=KEY.decode(), teams="cp_1")
    publisher = EventPublisher(s, producer=RecordingProducer())
    raw = {"event_id": "5f0c6a52-9d1e-4c36-8d1e-000000000003", "event_type": "referral.received",
           "la_code": LA, "team": "jane_smith", "child_ref": "LCS-1", "referral_date": "2025-06-02", "source": "6"}
    checked = publisher.check(raw)
    assert [e["type"] for e in checked.errors] == ["team"]
    stand_in = checked.payload["team"]
    assert stand_in.startswith("(redacted team #") and "jane" not in stand_in and "smith" not in stand_in
    p = publisher.pseudonymiser
    assert p.restore_team(stand_in, ["cp_1"]) == stand_in          # still not configured: stays redacted
    assert p.restore_team(stand_in, ["cp_1", "jane_smith"]) == "jane_smith"
    # free text that is not even team-shaped is plain "(redacted)"
    assert publisher.check(dict(raw, team="Jane Smith")).payload["team"] == REDACTED
