"""Attacks on the DfE CSC API adapter as it runs (`casewatch feeds serve`, a real process, default
--openapi): unauthenticated or garbage-token writes and purges are 401 and change nothing; a token
bound to another authority is 403; a 50 MB body is 413 and deep nesting 400, never a 500; the
service still answers afterwards."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY, free_port

REPO = Path(__file__).resolve().parents[2]
URL_PATH = "/children_social_care_data/808/children"
TOKEN_A = "supplier-a-token-0123456789abcdef"
TOKEN_B = "supplier-b-token-0123456789abcdef"


def _post(base: str, body: bytes, token: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + URL_PATH, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _announce_50_mb(base: str) -> int:
    """Send the headers of a 50 MB request and the first bytes of its body; the status answered."""
    import socket
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"POST {URL_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN_A}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n[").encode())
        reply = sock.recv(4096).decode(errors="replace")
    return int(reply.split(" ", 2)[1])


@pytest.fixture
def adapter(tmp_path):
    port = free_port()
    out = tmp_path / "events.jsonl"
    env = {**os.environ, "CASEWATCH_STATE_DIR": str(tmp_path / "state"), "CASEWATCH_PSEUDONYMISATION_KEY": TEST_KEY,
           "CASEWATCH_LA_CODES": "E06000004,E06000005",
           "CASEWATCH_INGEST_TOKENS": json.dumps({
               "supplier_a": {"token": TOKEN_A, "la_codes": ["E06000004"]},
               "supplier_b": {"token": TOKEN_B, "la_codes": ["E06000005"]}})}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "casewatch.cli", "feeds", "serve", "--port", str(port),
                             "--out", str(out)], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "the adapter never answered"
                time.sleep(0.3)
        yield base, out, tmp_path / "serve.log"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


CHILD = {"la_child_id": "Child77", "social_care_episodes": [{
    "social_care_episode_id": "EP1", "referral_date": "2025-05-01", "referral_source": "6"}]}


def test_unauthenticated_writes_and_purges_are_401_and_change_nothing(adapter):
    base, out, _ = adapter
    write = json.dumps([CHILD]).encode()
    purge = json.dumps([{"la_child_id": "Child77", "purge": True}]).encode()
    assert _post(base, write, TOKEN_A)[0] == 200
    before = out.read_text()
    assert len(before.splitlines()) == 1   # by hand: one referral.received
    for body in (write, purge):
        for token in (None, "garbage", "", TOKEN_A[:-1], TOKEN_A + "x"):
            status, text = _post(base, body, token)
            assert status == 401, (token, status)
            assert TOKEN_A not in text
    assert out.read_text() == before        # no void, no event: the child's figures are untouched


def test_a_token_for_another_authority_is_403(adapter):
    base, out, _ = adapter
    assert _post(base, json.dumps([{"la_child_id": "Child77", "purge": True}]).encode(), TOKEN_B)[0] == 403
    assert not out.exists() or out.read_text() == ""


def test_oversized_and_deeply_nested_bodies_are_refused_without_a_server_error(adapter):
    base, out, log = adapter
    assert _announce_50_mb(base) == 413   # refused on its Content-Length, before 50 MB is read
    assert _post(base, b"[" * 100_000 + b"]" * 100_000, TOKEN_A)[0] == 400
    assert _post(base, b'[{"la_child_id":"A1","child_details":' + b"[" * 50_000 + b"]" * 50_000 + b"}]",
                 TOKEN_A)[0] == 400
    assert _post(base, b"{not json", TOKEN_A)[0] == 400
    assert _post(base, json.dumps([{"la_child_id": "has space"}]).encode(), TOKEN_A)[0] == 400  # not 422
    assert _post(base, json.dumps([CHILD]).encode(), TOKEN_A)[0] == 200                       # still up
    assert "Traceback" not in log.read_text()


def test_serve_refuses_to_start_without_tokens_in_one_sentence(tmp_path):
    env = {**os.environ, "CASEWATCH_STATE_DIR": str(tmp_path), "CASEWATCH_PSEUDONYMISATION_KEY": TEST_KEY}
    env.pop("CASEWATCH_INGEST_TOKENS", None)
    env.pop("CASEWATCH_INGEST_TOKENS_FILE", None)
    done = subprocess.run([sys.executable, "-m", "casewatch.cli", "feeds", "serve", "--port", str(free_port())],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "CASEWATCH_INGEST_TOKENS" in done.stderr
