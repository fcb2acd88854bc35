"""`casewatch stack up | status | restart | down` as a user runs them, on a state directory of its own."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from casewatch.stack.processes import ProcessTable
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.integration


def _cli(env, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", "casewatch.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_stack_up_is_healthy_idempotent_and_down_leaves_no_process(tmp_path: Path):
    env = dict(os.environ)
    env.update({
        "CASEWATCH_STATE_DIR": str(tmp_path / "state"),
        "CASEWATCH_KAFKA_PORT": str(free_port()),
        "CASEWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CASEWATCH_PROMETHEUS_PORT": str(free_port()),
        "CASEWATCH_ALERTMANAGER_PORT": str(free_port()),
        "CASEWATCH_ENGINE_METRICS_PORT": str(free_port()),
        "CASEWATCH_INGEST_PORT": str(free_port()),
        "CASEWATCH_NOTIFIER_PORT": str(free_port()),
    })
    parts = "kafka,prometheus,alertmanager,engine"
    try:
        up = _cli(env, "stack", "up", "--no-demo", "--only", parts)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "All parts healthy" in up.stdout
        for name in ("kafka", "prometheus", "alertmanager", "engine"):
            assert name in up.stdout

        # Without the demo there is no demo history to backfill: Prometheus starts empty.
        assert not (tmp_path / "state" / "prometheus" / "data" / "casewatch-backfill.json").exists()

        table = ProcessTable(tmp_path / "state")
        pids_before = {p.name: p.pid for p in table.all()}
        assert set(pids_before) == {"kafka", "prometheus", "alertmanager", "engine"}

        again = _cli(env, "stack", "up", "--no-demo", "--only", parts)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("already running") == 4
        assert {p.name: p.pid for p in table.all()} == pids_before

        # A changed setting is not ignored in silence: `up` leaves the part alone, names it and the
        # variable, and says how to apply it (exit 1); `stack restart engine` applies it.
        changed = dict(env, CASEWATCH_FIXED_TODAY="2026-04-01")
        stale = _cli(changed, "stack", "up", "--no-demo", "--only", parts)
        assert stale.returncode == 1, stale.stdout + stale.stderr
        assert stale.stderr.strip().splitlines()[-1] == (
            "casewatch stack: engine runs with settings changed since it started (CASEWATCH_FIXED_TODAY): "
            "`casewatch stack restart engine` applies them")
        assert stale.stdout.count("already running") == 3 and "All parts healthy" not in stale.stdout
        assert {p.name: p.pid for p in table.all()} == pids_before

        restarted = _cli(changed, "stack", "restart", "engine")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        pids_after = {p.name: p.pid for p in table.all()}
        assert pids_after["engine"] != pids_before["engine"]
        assert {n: pid for n, pid in pids_after.items() if n != "engine"} == \
            {n: pid for n, pid in pids_before.items() if n != "engine"}
        # the engine's today is the new one: 1 April 2026, 00:00 in London (BST), as a unix time
        port = env["CASEWATCH_ENGINE_METRICS_PORT"]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        [line] = [m for m in metrics.splitlines() if m.startswith("casewatch_engine_today_timestamp_seconds ")]
        assert float(line.split()[1]) == datetime(2026, 4, 1, tzinfo=ZoneInfo("Europe/London")).timestamp()
        assert float(line.split()[1]) == 1774998000.0  # 2026-03-31T23:00:00Z, by hand
        pids_before = pids_after

        settled = _cli(changed, "stack", "up", "--no-demo", "--only", parts)
        assert settled.returncode == 0, settled.stdout + settled.stderr
        assert settled.stdout.count("already running") == 4

        status = _cli(env, "stack", "status", "--only", parts)
        rows = [line.split() for line in status.stdout.splitlines()[1:] if line.strip()]
        assert {r[0]: r[1] for r in rows} == {"kafka": "healthy", "prometheus": "healthy",
                                              "alertmanager": "healthy", "engine": "healthy"}
        assert status.returncode == 0
    finally:
        down = _cli(env, "stack", "down")
    assert down.returncode == 0, down.stderr
    for pid in pids_before.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], \
            f"process {pid} still running after stack down"
    assert ProcessTable(tmp_path / "state").all() == []


def test_a_part_that_fails_is_named_with_its_log(tmp_path: Path):
    """The engine alone, with no Kafka where CASEWATCH_KAFKA_PORT points: it exits at once, and
    `up` names it, shows the last lines of its log (the engine's own sentence) and where the log is."""
    env = dict(os.environ)
    env.update({"CASEWATCH_STATE_DIR": str(tmp_path / "state"),
                "CASEWATCH_KAFKA_PORT": str(free_port()),
                "CASEWATCH_ENGINE_METRICS_PORT": str(free_port())})
    env.pop("CASEWATCH_KAFKA_BOOTSTRAP", None)
    try:
        up = _cli(env, "stack", "up", "--no-demo", "--only", "engine", timeout=120)
    finally:
        _cli(env, "stack", "down")
    assert up.returncode == 1, up.stdout + up.stderr
    assert "engine failed to start: the process exited" in up.stderr
    assert f"Kafka at 127.0.0.1:{env['CASEWATCH_KAFKA_PORT']} is not reachable" in up.stderr
    assert "Full log:" in up.stderr and "engine.log" in up.stderr
