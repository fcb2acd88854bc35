"""`casewatch erase` without Kafka: CLI mistakes get one sentence with the fix (no traceback, no id),
the DfE purge queue keeps one request per child in a 600 file, and the audit reference is keyed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from casewatch.config import Settings
from casewatch.erasure import ErasureQueue, audit_reference, child_pseudonym
from tests.conftest import TEST_KEY, free_port

REPO = Path(__file__).resolve().parents[2]


def _erase(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "CASEWATCH_STATE_DIR": str(tmp_path), "CASEWATCH_PSEUDONYMISATION_KEY": TEST_KEY,
           "CASEWATCH_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}   # nothing listens there
    return subprocess.run([sys.executable, "-m", "casewatch.cli", "erase", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_mistakes_get_one_sentence_with_the_fix(tmp_path):
    for args, fix in ((["--child", "SECRET-ID-1"], "--la"),
                      (["--child", "SECRET-ID-1", "--la", "Stockton"], "ONS code"),
                      (["--child", "SECRET-ID-1", "--la", "E06000004"], "start it")):
        done = _erase(tmp_path, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and fix in lines[0] and "Traceback" not in done.stderr
        assert "SECRET-ID-1" not in done.stderr + done.stdout
    assert "no erasure is pending" in _erase(tmp_path, "--pending").stdout


def test_the_purge_queue_keeps_one_request_per_child_in_a_600_file(tmp_path):
    queue = ErasureQueue(tmp_path / "erasure" / "pending.jsonl")
    queue.request("E06000004", "ps_" + "a" * 32)
    queue.request("E06000004", "ps_" + "a" * 32)
    queue.request("E06000005", "ps_" + "b" * 32)
    assert [r["child"] for r in queue.pending()] == ["ps_" + "a" * 32, "ps_" + "b" * 32]
    assert oct(queue.path.stat().st_mode & 0o777) == "0o600"
    assert oct(queue.path.parent.stat().st_mode & 0o777) == "0o700"
    assert queue.remove("ps_" + "a" * 32) and not queue.remove("ps_" + "a" * 32)
    assert [r["child"] for r in queue.pending()] == ["ps_" + "b" * 32]
    assert b"ps_" + b"a" * 32 not in queue.path.read_bytes()


def test_the_pseudonym_is_ingests_scoped_one_and_the_audit_reference_is_keyed():
    from casewatch.edge.pseudonymise import Pseudonymiser
    settings = Settings(pseudonymisation_key=TEST_KEY)
    ps = child_pseudonym(settings, "ZZ-CHILD-7731", "E06000004")
    assert ps == Pseudonymiser(TEST_KEY.encode(), settings.pseudonymisation_key_version).pseudonym(
        "ZZ-CHILD-7731", "E06000004")
    assert ps != child_pseudonym(settings, "ZZ-CHILD-7731", "E08000025")   # one id, two authorities
    assert child_pseudonym(settings, ps, "E06000004") == ps                 # a pseudonym is taken as it is
    ref = audit_reference(settings, ps)
    assert ref.startswith("er_") and ps[3:] not in ref
    other_key = Settings(pseudonymisation_key=TEST_KEY + "-other")
    assert audit_reference(other_key, ps) != ref
