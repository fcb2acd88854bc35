"""``casewatch replay FILE``: a seeded history written by ``casewatch simulate --out`` goes through the
loader path (pseudonymised, validated, published) into Kafka, and a real engine reading the topic
with a fixed "today" shows the referral figures counted independently from the file here.

The replay is marked (casewatch/adapters/kafka/replay_marking.py): every record carries the run's
``casewatch-replay`` header and each partition ends with the run's replay-end control record, which
the engine neither counts nor dead-letters. Replaying the same file into the caught-up engine: while
the replay runs the worker reports itself catching up and publishes no indicator (so no page can
come of it); afterwards its figures are exactly those before."""
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
import time
from datetime import date

import pytest


from casewatch.adapters.kafka.replay_marking import CONTROL_HEADER, CONTROL_KEY, REPLAY_HEADER
from tests.conftest import REPO, TEST_KEY, free_port
from tests.support.kafka_topics import read_records
from tests.support.engine_runs import EndOffsets, figures, health, indicator_names, scrape, wait_until_caught_up

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


@pytest.fixture(scope="module")
def replayed(local_stack, tmp_path_factory):
    """A simulated year replayed with ``casewatch replay`` into new topics, then an engine started
    on them and waited for (the barrier: every partition applied to its end, caught up)."""
    tmp_path = tmp_path_factory.mktemp("replay")
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
    events = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]

    code, stdout, terminal = cli_on_terminal(["replay", str(history)], env)
    port = free_port()
    url = f"http://{settings.host}:{port}/metrics"
    local_stack.start_engine(settings, name="engine-replay", metrics_port=port)
    try:
        series = None
        if code == 0:
            wait_until_caught_up([url], settings.bootstrap, settings.events_topic, timeout=300)
            series = scrape(url)
        yield {"settings": settings, "env": env, "history": history, "events": events, "url": url,
               "code": code, "stdout": stdout, "terminal": terminal, "series": series}
    finally:
        local_stack.stop("engine-replay")


def test_replay_of_a_simulated_history_gives_the_engine_the_files_referral_counts(replayed):
    settings, events, series = replayed["settings"], replayed["events"], replayed["series"]
    terminal, stdout = replayed["terminal"], replayed["stdout"]
    # The independent count, from the file: referrals received dated in the 12 months to today
    # (after 31 March 2025, up to and including 31 March 2026) and in the 28 days to today.
    referral_dates = [date.fromisoformat(e["referral_date"]) for e in events
                      if e["event_type"] == "referral.received"]
    in_12m = sum(1 for d in referral_dates if date(2025, 3, 31) < d <= date(2026, 3, 31))
    in_28d = sum(1 for d in referral_dates if date(2026, 3, 4) <= d <= date(2026, 3, 31))
    assert in_12m > 20 and in_28d > 0  # the seeded history is big enough for the check to mean something
    assert not any(e["child_ref"].startswith("ps_") for e in events if e.get("child_ref"))  # raw-looking ids

    assert replayed["code"] == 0, terminal[-2000:]
    assert f"created topic(s): {settings.events_topic}" in terminal
    # the summary on stdout: every line read and published, none dead-lettered
    n = len(events)
    assert f"read {n}," in stdout and f"published {n}," in stdout and "dead_lettered 0" in stdout
    # the progress bar on the terminal reached the whole file
    assert "replay" in terminal and "100%" in terminal and f"{n}/{n}" in terminal

    def total(metric: str, window: str) -> float:
        return sum(v for (name, labels), v in series.items()
                   if name == metric and dict(labels).get("window") == window)

    processed = sum(v for (name, _), v in series.items() if name == "casewatch_events_processed_total")
    assert processed == len(events)  # every simulated event passed validation and was applied once
    assert total("casewatch_referrals", "12m") == in_12m
    assert total("casewatch_referrals", "28d") == in_28d
    # the pseudonymised references reached the engine, never the raw ones
    assert all("LCS-" not in str(labels) for (_, labels) in series)
    # the replay-end control records were neither counted nor dead-lettered
    assert sum(v for (name, _), v in series.items() if name == "casewatch_events_dead_lettered_total") == 0
    assert read_records(settings.bootstrap, settings.deadletter_topic) == []


def test_every_replayed_record_is_marked_and_every_partition_ends_with_the_runs_end(replayed):
    settings = replayed["settings"]
    records = read_records(settings.bootstrap, settings.events_topic)
    events = [r for r in records if r.key != CONTROL_KEY]
    controls = [r for r in records if r.key == CONTROL_KEY]
    assert events and all(len([h for h in r.headers if h[0] == REPLAY_HEADER]) == 1 for r in events)
    runs = {dict(r.headers)[REPLAY_HEADER] for r in events}
    assert len(runs) == 1
    run = runs.pop()
    assert run.decode("ascii").startswith("replay-")
    # one replay-end per partition, the last record of each, with the run's id and an empty value
    assert sorted(r.partition for r in controls) == list(range(settings.partitions))
    last = {}
    for r in records:
        last[r.partition] = max(last.get(r.partition, -1), r.offset)
    for r in controls:
        assert dict(r.headers) == {CONTROL_HEADER: b"replay-end", REPLAY_HEADER: run}
        assert r.value == b"" and r.offset == last[r.partition]


def test_replaying_the_same_history_into_a_caught_up_engine_publishes_nothing_meanwhile_and_changes_nothing(
        replayed):
    settings, url = replayed["settings"], replayed["url"]
    assert replayed["code"] == 0
    before = figures([url])
    duplicates_before = sum(v for (name, _), v in scrape(url).items() if name == "casewatch_events_duplicate_total")
    ends = EndOffsets(settings.bootstrap, settings.events_topic)
    start_ends = ends.read()

    samples: list[tuple[dict, dict, dict]] = []  # /healthz, /metrics, /healthz
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                samples.append((health(url), scrape(url), health(url)))
            except OSError:
                pass
            time.sleep(0.01)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # One event a message, so the replay takes a while to apply.
        again = cli(["replay", "--one-event-per-message", str(replayed["history"])], replayed["env"])
        assert again.returncode == 0, again.stderr[-2000:]
        after = wait_until_caught_up([url], settings.bootstrap, settings.events_topic, timeout=300)
    finally:
        stop.set()
        watcher.join(30)
        final_ends = ends.read()
        ends.close()

    def inside(h: dict) -> set[int]:
        """Partitions applied past the replay's first record but not yet up to its end marker."""
        return {int(p) for p, applied in h["applied_offsets"].items()
                if start_ends[int(p)] < applied < final_ends[int(p)]}

    during = [(first, scraped) for first, scraped, second in samples if inside(first) & inside(second)]
    assert during, "no scrape was taken while the replay was being applied"
    for first, scraped in during:
        assert scraped[("casewatch_engine_caught_up", ())] == 0.0
        assert scraped[("casewatch_engine_catching_up", (("reason", "replay"),))] == 1.0
        assert indicator_names(scraped) == set(), "an indicator was published during the replay"
        assert "replay" in first["catching_up"]
    # Afterwards (the barrier: every replay-end, the last records, applied): the same figures, and
    # every replayed event a duplicate.
    assert after == before
    duplicates = sum(v for (name, _), v in scrape(url).items() if name == "casewatch_events_duplicate_total")
    assert duplicates - duplicates_before == len(replayed["events"])
    assert health(url)["caught_up"] is True
