"""Pseudonymisation at the edge: keyed HMAC-SHA-256, ``ps_`` + 32 hex, for the identifier fields
of docs/events.md; no key, no start."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from casewatch import cli
from casewatch.config import Settings, get_settings
from services.ingest.pseudonymise import (REDACTED, UNUSABLE_IDENTIFIER, PseudonymisationKeyError, Pseudonymiser,
                                          dead_letter_payload, load_key)

KEY = b"k" * 16 + b"0123456789abcdef"  # 32 bytes
# The identifier fields, copied from docs/events.md ("The ingest edge replaces any raw value in ...").
DOC_FIELDS = ["child_ref", "episode_ref", "worker_ref", "referral_ref", "assessment_ref", "s47_ref",
              "from_contact_ref", "plan_ref"]


def expected(key: bytes, identifier: str) -> str:
    return "ps_" + hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()[:32]


def test_pseudonym_is_the_truncated_keyed_hmac():
    p = Pseudonymiser(KEY)
    assert p.pseudonym("LCS-000123") == expected(KEY, "LCS-000123")
    assert len(p.pseudonym("LCS-000123")) == 35
    assert p.pseudonym("LCS-000123") != p.pseudonym("LCS-000124")
    assert Pseudonymiser(KEY[::-1]).pseudonym("LCS-000123") != p.pseudonym("LCS-000123")


def test_every_identifier_field_of_the_contract_is_replaced_and_nothing_else():
    p = Pseudonymiser(KEY)
    raw = {name: f"RAW-{i}" for i, name in enumerate(DOC_FIELDS)}
    raw.update(event_type="icpc.held", date="2025-06-24", team="cp_1", source="6")
    out = p.event(raw)
    for i, name in enumerate(DOC_FIELDS):
        assert out[name] == expected(KEY, f"RAW-{i}")
    assert {k: out[k] for k in ("event_type", "date", "team", "source")} == {
        "event_type": "icpc.held", "date": "2025-06-24", "team": "cp_1", "source": "6"}
    assert raw["child_ref"] == "RAW-0"  # the input is not changed


def test_a_pseudonym_is_kept_so_dead_letters_can_be_replayed():
    p = Pseudonymiser(KEY)
    once = p.event({"child_ref": "LCS-1"})
    assert p.event(once) == once
    assert p.pseudonym("ps_0123456789abcdef0123456789abcdef") == "ps_0123456789abcdef0123456789abcdef"
    # upper-case hex is not the pseudonym form: treated as a raw value
    assert p.pseudonym("ps_0123456789ABCDEF0123456789ABCDEF") == expected(KEY, "ps_0123456789ABCDEF0123456789ABCDEF")


def test_numeric_ids_are_pseudonymised_and_other_shapes_never_pass_through():
    p = Pseudonymiser(KEY)
    out = p.event({"child_ref": 123456, "plan_ref": ["LCS-9"], "s47_ref": {"id": "LCS-9"}, "worker_ref": True,
                   "episode_ref": None})
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
    out = dead_letter_payload(p.event(raw), errors)
    assert out == {"event_id": "5f0c6a52-9d1e-4c36-8d1e-000000000001", "event_type": "placement.changed",
                   "la_code": "E06000004", "team": "lac_1", "child_ref": expected(KEY, "LCS-77"),
                   "date": "2025-09-01", "rne": REDACTED, "placement": "H5", "inside_la": REDACTED,
                   "(unknown field #10)": REDACTED, "episode_ref": REDACTED}
    assert "Jane" not in json.dumps(out) and "LCS-7" not in json.dumps(out) and "RAW-ID" not in json.dumps(out)


def test_opaque_rendering_of_a_body_that_is_not_an_object():
    p = Pseudonymiser(KEY)
    rendering = p.opaque(b"LCS-000123 Jane")
    assert rendering == {"undecodable_bytes": 15,
                         "hmac_sha256": hmac.new(KEY, b"LCS-000123 Jane", hashlib.sha256).hexdigest()}
