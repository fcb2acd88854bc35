"""`casewatch stack up` checks every port it will listen on before it starts anything: a taken port,
or two settings naming one port, is one sentence naming the variable and the fix, exit 2."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from casewatch.command_errors import CommandError
from casewatch.config import Settings
from casewatch.stack.manager import START_ORDER
from casewatch.stack.ports import check_ports, stack_ports
from casewatch.stack.processes import ProcessTable
from tests.conftest import REPO, free_port

PORT_FIELDS = ["kafka_port", "kafka_controller_port", "prometheus_port", "alertmanager_port", "smtp_port",
               "notifier_port", "notifier_read_port", "engine_metrics_port", "ingest_port", "ingest_read_port"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWATCH_")}
    env["CASEWATCH_STATE_DIR"] = str(tmp_path / "state")
    env["CASEWATCH_PSEUDONYMISATION_KEY"] = "unit-test-key-0123456789abcdef"
    for field in PORT_FIELDS:
        env[f"CASEWATCH_{field.upper()}"] = str(free_port())
    return env


def _up(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "casewatch.cli", "stack", "up"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def _holding(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen(1)
    return sock


@pytest.mark.parametrize("field", ["ingest_port", "smtp_port", "notifier_read_port", "kafka_controller_port"])
def test_a_taken_port_is_named_with_its_variable_before_anything_starts(tmp_path, field):
    env = _env(tmp_path)
    variable = f"CASEWATCH_{field.upper()}"
    port = int(env[variable])
    with _holding(port):
        up = _up(env)
    assert up.returncode == 2, up.stdout + up.stderr
    lines = up.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in up.stderr
    assert lines[0].startswith("casewatch stack: port ")
    assert f"port {port} on 127.0.0.1 ({variable}, for " in lines[0]
    assert f"set {variable} to a free port; nothing was started" in lines[0]
    # nothing started: no pid file, no part's log, and Kafka (first in order) never listened
    assert ProcessTable(tmp_path / "state").all() == []
    assert not list((tmp_path / "state" / "logs").glob("*.log"))
    assert " up in " not in up.stdout
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(env["CASEWATCH_KAFKA_PORT"]))) != 0


def test_two_taken_ports_are_named_in_one_sentence(tmp_path):
    env = _env(tmp_path)
    a, b = int(env["CASEWATCH_PROMETHEUS_PORT"]), int(env["CASEWATCH_ENGINE_METRICS_PORT"])
    with _holding(a), _holding(b):
        up = _up(env)
    assert up.returncode == 2
    assert up.stderr.strip() == (
        f"casewatch stack: ports {a} (CASEWATCH_PROMETHEUS_PORT) and {b} (CASEWATCH_ENGINE_METRICS_PORT) on "
        "127.0.0.1 are already in use by other programs: stop them or set CASEWATCH_PROMETHEUS_PORT and "
        "CASEWATCH_ENGINE_METRICS_PORT to free ports; nothing was started")
    assert ProcessTable(tmp_path / "state").all() == []


def test_two_settings_naming_one_port_are_refused(tmp_path):
    env = _env(tmp_path)
    env["CASEWATCH_INGEST_READ_PORT"] = env["CASEWATCH_NOTIFIER_PORT"]
    up = _up(env)
    assert up.returncode == 2
    assert up.stderr.strip() == (
        f"casewatch stack: CASEWATCH_NOTIFIER_PORT and CASEWATCH_INGEST_READ_PORT are both "
        f"{env['CASEWATCH_NOTIFIER_PORT']} on 127.0.0.1: give each its own port (README, \"Ports\"); "
        "nothing was started")
    assert ProcessTable(tmp_path / "state").all() == []


def test_only_the_parts_asked_for_are_checked(tmp_path):
    env = _env(tmp_path)
    with _holding(int(env["CASEWATCH_INGEST_PORT"])):
        env["CASEWATCH_KAFKA_PORT"] = env["CASEWATCH_INGEST_PORT"]  # kafka's port taken: named
        up = subprocess.run([sys.executable, "-m", "casewatch.cli", "stack", "up", "--only", "kafka"], env=env,
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert up.returncode == 2
    assert "(CASEWATCH_KAFKA_PORT, for kafka)" in up.stderr and "INGEST" not in up.stderr


def test_every_listening_port_setting_is_checked_for_its_part():
    """Each port setting (except Faust's web port, which stays off) belongs to one part."""
    settings = Settings(ingest_read_port=1, notifier_read_port=2)
    ports = stack_ports(settings)
    assert set(ports) == set(START_ORDER)
    checked = {use.variable: use.part for uses in ports.values() for use in uses}
    fields = {name for name in Settings.model_fields if name.endswith("_port")}
    assert set(checked) == {f"CASEWATCH_{f.upper()}" for f in fields - {"engine_web_port"}}
    assert checked["CASEWATCH_SMTP_PORT"] == "mailbox"
    assert checked["CASEWATCH_NOTIFIER_READ_PORT"] == "notifier"
    assert checked["CASEWATCH_INGEST_READ_PORT"] == "ingest"
    assert checked["CASEWATCH_KAFKA_CONTROLLER_PORT"] == "kafka"
    # unset read ports are not ports the stack listens on
    unset = {use.variable for uses in stack_ports(Settings()).values() for use in uses}
    assert "CASEWATCH_INGEST_READ_PORT" not in unset and "CASEWATCH_NOTIFIER_READ_PORT" not in unset


def test_a_read_port_on_another_host_may_share_the_number():
    settings = Settings(ingest_port=free_port(), ingest_read_host="127.0.0.2", ingest_read_port=None)
    uses = stack_ports(settings.model_copy(update={"ingest_read_port": settings.ingest_port}))["ingest"]
    assert [(u.host, u.port) for u in uses] == [("127.0.0.1", settings.ingest_port),
                                                ("127.0.0.2", settings.ingest_port)]
    check_ports(uses)  # different addresses, both free: no error
    with _holding(settings.ingest_port), pytest.raises(CommandError) as caught:
        check_ports(uses)
    assert caught.value.exit_code == 2 and "(CASEWATCH_INGEST_PORT, for ingest)" in str(caught.value)
