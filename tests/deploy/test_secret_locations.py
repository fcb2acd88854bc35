"""`stack up` says where the generated secrets are (paths only, never contents) and how to run
`casewatch` when it is not on PATH."""
from __future__ import annotations

import json

from casewatch.config import Settings
from casewatch.stack.commands import _print_where
from casewatch.stack.secrets import ensure_demo_secrets


def test_stack_up_names_each_secret_file_and_never_prints_a_secret(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CASEWATCH_PSEUDONYMISATION_KEY_FILE", raising=False)
    monkeypatch.delenv("CASEWATCH_INGEST_TOKENS_FILE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # casewatch is not on PATH
    settings = Settings(state_dir=tmp_path / "state", pseudonymisation_key=None, ingest_tokens=None)
    ensure_demo_secrets(settings)
    _print_where(settings)
    out = capsys.readouterr().out
    state = tmp_path / "state"
    for name in ("pseudonymisation.key", "ingest-tokens.json", "notifier-webhook.secret"):
        assert str(state / name) in out
    key = (state / "pseudonymisation.key").read_text().strip()
    token = json.loads((state / "ingest-tokens.json").read_text())["demo"]["token"]
    assert key not in out and token not in out
    assert "is not on PATH: run it as " in out and "/bin/casewatch" in out


def test_secrets_init_never_replaces_a_secret_and_names_a_wrong_owner_in_one_sentence(tmp_path):
    import subprocess

    from tests.conftest import REPO
    casewatch = str(REPO / ".venv" / "bin" / "casewatch")
    folder = tmp_path / "secrets"
    first = subprocess.run([casewatch, "secrets", "init", str(folder), "--source", "mosaic"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0 and first.stdout.count("created ") == 3, first.stderr
    before = {p.name: p.read_text() for p in folder.iterdir()}
    assert set(json.loads(before["ingest-tokens.json"])) == {"mosaic"}
    again = subprocess.run([casewatch, "secrets", "init", str(folder), "--source", "other"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("kept ") == 3
    assert {p.name: p.read_text() for p in folder.iterdir()} == before
    wrong = subprocess.run([casewatch, "secrets", "init", str(folder), "--owner", "no-such-user-h10"],
                           capture_output=True, text=True, cwd=tmp_path)
    lines = [line for line in wrong.stderr.splitlines() if line.strip()]
    assert wrong.returncode == 2 and len(lines) == 1 and "Traceback" not in wrong.stderr
    assert "--owner" in lines[0]
