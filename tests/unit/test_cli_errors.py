"""Every CLI failure is one sentence naming the cause and the fix, with exit code 2 (usage or
configuration) or 1 (run time), and a traceback only with --debug.

Each case runs the real installed command (.venv/bin/casewatch) as a subprocess, in an empty
folder with a HOME of its own and no CASEWATCH_* variables from the caller, so no .env, no local
stack state and no developer's settings leak in."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CASEWATCH = REPO / ".venv" / "bin" / "casewatch"
if not CASEWATCH.exists():  # an install elsewhere: the script beside this interpreter
    CASEWATCH = Path(sys.executable).with_name("casewatch")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "pseudonymisation.key"
    path.write_text(secrets.token_hex(32))
    return path


@pytest.fixture
def taken_port():
    """A port another program listens on for the duration of the test."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def run(home: Path, *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASEWATCH_")}
    environ.update(HOME=str(home), CASEWATCH_STATE_DIR=str(home / ".casewatch"),
                   CASEWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{_closed_port()}")
    environ.update(env)
    return subprocess.run([str(CASEWATCH), *args], cwd=home, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def one_sentence(done: subprocess.CompletedProcess) -> str:
    output = (done.stderr + done.stdout).strip()
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{output}"
    return lines[0]


def test_engine_with_kafka_stopped_says_so_and_how_to_fix_it(home, key_file):
    done = run(home, "engine", CASEWATCH_PSEUDONYMISATION_KEY_FILE=str(key_file))
    line = one_sentence(done)
    assert done.returncode == 1
    assert "Kafka at 127.0.0.1:" in line and "not reachable" in line
    assert "CASEWATCH_KAFKA_BOOTSTRAP" in line and "stack up" in line


def test_import_of_a_missing_file_names_the_file(home, key_file):
    done = run(home, "import", "cin-census", "missing.xml", CASEWATCH_PSEUDONYMISATION_KEY_FILE=str(key_file))
    line = one_sentence(done)
    assert done.returncode == 2
    assert "missing.xml" in line and "no such file" in line


def test_ingest_without_a_key_names_the_settings_that_give_one(home):
    done = run(home, "ingest")
    line = one_sentence(done)
    assert done.returncode == 2
    assert "CASEWATCH_PSEUDONYMISATION_KEY" in line and "CASEWATCH_PSEUDONYMISATION_KEY_FILE" in line


def test_ingest_with_a_tokens_file_that_does_not_exist(home, key_file):
    done = run(home, "ingest", CASEWATCH_PSEUDONYMISATION_KEY_FILE=str(key_file),
               CASEWATCH_INGEST_TOKENS_FILE=str(home / "nowhere" / "tokens.json"))
    line = one_sentence(done)
    assert done.returncode == 2
    assert "ingest tokens file cannot be read" in line


def test_replay_outside_the_stack_says_kafka_is_not_reachable(home, key_file):
    events = home / "events.jsonl"
    events.write_text('{"event_type": "contact.received"}\n')
    done = run(home, "replay", str(events), CASEWATCH_PSEUDONYMISATION_KEY_FILE=str(key_file))
    line = one_sentence(done)
    assert done.returncode == 1
    assert "Kafka at 127.0.0.1:" in line and "not reachable" in line and "CASEWATCH_KAFKA_BOOTSTRAP" in line


def test_replay_of_a_missing_file_names_it(home, key_file):
    done = run(home, "replay", "nowhere.jsonl", CASEWATCH_PSEUDONYMISATION_KEY_FILE=str(key_file))
    line = one_sentence(done)
    assert done.returncode == 2
    assert "nowhere.jsonl: no such events file" in line


@pytest.mark.parametrize("command, variable, env", [
    ("engine", "CASEWATCH_ENGINE_METRICS_PORT", "CASEWATCH_ENGINE_METRICS_PORT"),
    ("ingest", "CASEWATCH_INGEST_PORT", "CASEWATCH_INGEST_PORT"),
    ("notifier", "CASEWATCH_NOTIFIER_PORT", "CASEWATCH_NOTIFIER_PORT"),
    ("ingest", "CASEWATCH_INGEST_READ_PORT", "CASEWATCH_INGEST_READ_PORT"),
])
def test_a_port_already_taken_is_named_with_the_setting_that_moves_it(home, key_file, taken_port,
                                                                       command, variable, env):
    tokens = home / "tokens.json"
    tokens.write_text('{"mosaic": "%s"}' % secrets.token_urlsafe(24))
    webhook = home / "webhook.secret"
    webhook.write_text(secrets.token_urlsafe(32))
    free = {"CASEWATCH_INGEST_PORT": str(_closed_port())}  # not the default: a stack may run here
    done = run(home, command, CASEWATCH_PSEUDONYMISATION_KEY_FILE=str(key_file),
               CASEWATCH_INGEST_TOKENS_FILE=str(tokens), CASEWATCH_NOTIFIER_WEBHOOK_CREDENTIALS_FILE=str(webhook),
               **{**free, env: str(taken_port)})
    line = one_sentence(done)
    assert done.returncode == 1
    assert f"port {taken_port} on 127.0.0.1 is already in use" in line and variable in line


def test_an_invalid_setting_names_the_variable_and_exits_2(home):
    done = run(home, "engine", CASEWATCH_KAFKA_PORT="twenty-nine thousand")
    line = one_sentence(done)
    assert done.returncode == 2
    assert "invalid configuration" in line and "CASEWATCH_KAFKA_PORT" in line and "valid integer" in line


def test_an_invalid_secret_setting_is_named_without_its_value(home):
    done = run(home, "engine", CASEWATCH_PSEUDONYMISATION_KEY_VERSION="0", CASEWATCH_INGEST_TOKENS_FILE="")
    line = one_sentence(done)
    assert done.returncode == 2
    assert "CASEWATCH_PSEUDONYMISATION_KEY_VERSION" in line and "'0'" not in line


def test_kafka_security_misconfigured_is_a_configuration_mistake(home, key_file):
    done = run(home, "engine", CASEWATCH_PSEUDONYMISATION_KEY_FILE=str(key_file),
               CASEWATCH_KAFKA_BOOTSTRAP="127.0.0.1:9", CASEWATCH_KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    line = one_sentence(done)
    # SASL without a mechanism, user or password cannot be used, whatever the broker says
    assert done.returncode == 2
    assert "CASEWATCH_KAFKA_SASL" in line and "not reachable" not in line


def test_notifier_without_its_webhook_secret_names_the_setting(home):
    done = run(home, "notifier")
    line = one_sentence(done)
    assert done.returncode == 2
    assert "CASEWATCH_NOTIFIER_WEBHOOK_CREDENTIALS_FILE" in line


def test_debug_shows_the_traceback(home):
    done = run(home, "--debug", "engine", CASEWATCH_KAFKA_PORT="abc")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ValidationError" in done.stderr


def test_a_command_module_that_cannot_be_imported_stops_the_cli(monkeypatch, capsys):
    """No silent skip: a renamed or missing command module is named, with the fix, and nothing runs
    (before issue 14 the CLI dropped it quietly, so `stack up` could start without the engine)."""
    from casewatch import cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "services.engine.not_there"])
    code = cli.main(["stack", "status"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "the command module services.engine.not_there cannot be imported" in err[0]
    assert "pip install -e ." in err[0]
    assert "Traceback" not in err[0]


def test_every_command_module_imports():
    import importlib

    from casewatch import cli
    for name in cli.COMMAND_MODULES:
        assert callable(importlib.import_module(name).register), name
