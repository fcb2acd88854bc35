"""`casewatch stack up | status | down` as a user runs them, on a state directory of its own."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    env = dict(os.environ)
    busy = free_port()
    import socket
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", busy))
    blocker.listen(1)
    env.update({"CASEWATCH_STATE_DIR": str(tmp_path / "state"),
                "CASEWATCH_PROMETHEUS_PORT": str(busy)})
    try:
        up = _cli(env, "stack", "up", "--no-demo", "--only", "prometheus", timeout=120)
    finally:
        blocker.close()
        _cli(env, "stack", "down")
    assert up.returncode == 1
    assert "prometheus failed to start" in up.stderr
    assert "Full log:" in up.stderr and "prometheus.log" in up.stderr
