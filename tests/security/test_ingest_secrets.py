"""Issue 19 item 7 (the part of it in casewatch/stack/secrets.py) and the token grants' format:
the local stack's demo key and tokens are owner-only from the first byte, in an owner-only state
directory; the tokens file keeps its old format and refuses a grant it cannot honour."""
from __future__ import annotations

import json
import stat

import pytest

from casewatch.config import IngestGrant, Settings
from casewatch.stack.secrets import ensure_demo_secrets


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_secrets_are_0600_in_a_0700_state_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("CASEWATCH_PSEUDONYMISATION_KEY_FILE", raising=False)
    monkeypatch.delenv("CASEWATCH_INGEST_TOKENS_FILE", raising=False)
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    s = Settings(state_dir=state, pseudonymisation_key=None, ingest_tokens=None, la_codes="E06000004,E08000025")
    ensure_demo_secrets(s)
    assert mode(state) == 0o700
    assert mode(state / "pseudonymisation.key") == 0o600
    assert mode(state / "ingest-tokens.json") == 0o600
    grants = s.read_ingest_grants()
    assert grants["demo"].la_codes == ("E06000004", "E08000025") and grants["demo"].pre_pseudonymised is False
    ensure_demo_secrets(s)  # again: the same secrets are kept
    assert s.read_ingest_grants() == grants


def test_token_grants_old_and_new_format():
    served = ["E06000004", "E08000025"]
    assert IngestGrant.parse("lcs", "t1", served) == IngestGrant("lcs", "t1", ("E06000004", "E08000025"), False)
    assert IngestGrant.parse("replay", {"token": "t2", "la_codes": ["E08000025"], "pre_pseudonymised": True},
                             served) == IngestGrant("replay", "t2", ("E08000025",), True)
    for bad in ({"token": ""}, {"token": "t", "la_codes": "E06000004"}, {"token": "t", "la_codes": ["E09000001"]},
                {"token": "t", "pre_pseudonymised": "yes"}, {"token": "t", "admin": True}, 5):
        with pytest.raises(ValueError):
            IngestGrant.parse("x", bad, served)
    s = Settings(ingest_tokens=json.dumps({"a": "t1", "b": {"token": "t2"}}), la_codes="E06000004")
    assert s.read_ingest_tokens() == {"a": "t1", "b": "t2"}
