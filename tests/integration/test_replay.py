"""``casewatch replay FILE``: a seeded history written by ``casewatch simulate --out`` goes through the
loader path (pseudonymised, validated, published) into Kafka, and a real engine reading the topic
with a fixed "today" shows the referral figures counted independently from the file here."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import termios
import subprocess
import sys
import threading
from datetime import date

import pytest

from tests.conftest import REPO, TEST_KEY, free_port
from tests.support.engine_runs import scrape, wait_until_settled

pytestmark = pytest.mark.integration

TODAY = "2026-03-31"


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "casewatch.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def cli_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal, as an operator at a shell would (the progress bar is
    only drawn on a terminal). Returns (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 24 rows, 120 columns
    shown = bytearray()

    def read_terminal():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)
    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    proc = subprocess.Popen([sys.executable, "-m", "casewatch.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    stdout, _ = proc.communicate(timeout=300)
    reader.join(10)
    os.close(master)
    return proc.returncode, stdout, shown.decode(errors="replace")


def test_replay_of_a_simulated_history_gives_the_engine_the_files_referral_counts(local_stack, tmp_path):
    settings = local_stack.settings_for(fixed_today=TODAY, la_codes="E06000004")
    # (no topics yet: replay onto a new cluster or topic name creates them)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWATCH_")}
    env.update(CASEWATCH_KAFKA_BOOTSTRAP=settings.bootstrap, CASEWATCH_EVENTS_TOPIC=settings.events_topic,
               CASEWATCH_DEADLETTER_TOPIC=settings.deadletter_topic, CASEWATCH_PSEUDONYMISATION_KEY=TEST_KEY,
               CASEWATCH_LA_CODES="E06000004", CASEWATCH_STATE_DIR=str(tmp_path / "state"))

    history = tmp_path / "history.jsonl"
    made = cli(["simulate", "--la", "E06000004", "--population", "1500", "--seed", "5",
                "--history-years", "1", "--until", TODAY, "--out", str(history)], env)
    assert made.returncode == 0, made.stderr[-2000:]

    # The independent count, from the file: referrals received dated in the 12 months to today
    # (after 31 March 2025, up to and including 31 March 2026) and in the 28 days to today.
    events = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    referral_dates = [date.fromisoformat(e["referral_date"]) for e in events
                      if e["event_type"] == "referral.received"]
    in_12m = sum(1 for d in referral_dates if date(2025, 3, 31) < d <= date(2026, 3, 31))
    in_28d = sum(1 for d in referral_dates if date(2026, 3, 4) <= d <= date(2026, 3, 31))
    assert in_12m > 20 and in_28d > 0  # the seeded history is big enough for the check to mean something
    assert not any(e["child_ref"].startswith("ps_") for e in events if e.get("child_ref"))  # raw-looking ids

    code, stdout, terminal = cli_on_terminal(["replay", str(history)], env)
    assert code == 0, terminal[-2000:]
    assert f"created topic(s): {settings.events_topic}" in terminal
    # the summary on stdout: every line read and published, none dead-lettered
    n = len(events)
    assert f"read {n}," in stdout and f"published {n}," in stdout and "dead_lettered 0" in stdout
    # the progress bar on the terminal reached the whole file
    assert "replay" in terminal and "100%" in terminal and f"{n}/{n}" in terminal

    port = free_port()
    local_stack.start_engine(settings, name="engine-replay", metrics_port=port)
    try:
        url = f"http://{settings.host}:{port}/metrics"
        wait_until_settled([url], timeout=300)
        series = scrape(url)
    finally:
        local_stack.stop("engine-replay")

    def total(metric: str, window: str) -> float:
        return sum(v for (name, labels), v in series.items()
                   if name == metric and dict(labels).get("window") == window)

    processed = sum(v for (name, _), v in series.items() if name == "casewatch_events_processed_total")
    assert processed == len(events)  # every simulated event passed validation and was applied once
    assert total("casewatch_referrals", "12m") == in_12m
    assert total("casewatch_referrals", "28d") == in_28d
    # the pseudonymised references reached the engine, never the raw ones
    assert all("LCS-" not in str(labels) for (_, labels) in series)
