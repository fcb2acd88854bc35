"""The production process definitions (deploy/systemd/) are valid systemd units, start real
`casewatch` subcommands with flags the command accepts, read their secrets from files that
`casewatch secrets init` writes (handed over with LoadCredential=), and are hardened."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

UNITS = REPO / "deploy" / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
INSTALLED = "/opt/casewatch/venv/bin/casewatch"
SECRETS = "/etc/casewatch/secrets"
HARDENING = {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
             "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
             "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes"}


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> every value (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def environment(unit: dict) -> dict[str, str]:
    env = {}
    for value in unit["Service"].get("Environment", []):
        for item in shlex.split(value):
            name, _, setting = item.partition("=")
            env[name] = setting
    return env


def test_every_part_has_a_unit():
    names = {p.name for p in SERVICES}
    assert names == {"casewatch-engine@.service", "casewatch-ingest.service", "casewatch-feeds.service",
                     "casewatch-notifier.service"}


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_exec_start_is_a_real_casewatch_command_with_valid_flags(path):
    from casewatch.cli import build_parser
    unit = parse(path)
    (exec_start,) = unit["Service"]["ExecStart"]
    argv = shlex.split(exec_start.replace("%i", "29100"))
    assert argv[0] == INSTALLED
    parser = build_parser()
    args = parser.parse_args(argv[1:])  # argparse exits (SystemExit) on an unknown command or flag
    assert callable(getattr(args, "func", None)), f"{exec_start} names no runnable subcommand"
    # and the installed command answers --help for it
    done = subprocess.run([str(REPO / ".venv" / "bin" / "casewatch"), *argv[1:], "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: casewatch" in done.stdout, done.stderr


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_secrets_come_from_files_that_secrets_init_writes(path):
    from casewatch.deployment import KEY_NAME, TOKENS_NAME
    from casewatch.config import WEBHOOK_SECRET_NAME
    unit = parse(path)
    service = unit["Service"]
    credentials = dict(value.split(":", 1) for value in service.get("LoadCredential", []))
    assert credentials, "secrets are handed over with LoadCredential="
    for name, source in credentials.items():
        assert source == f"{SECRETS}/{name}" and name in {KEY_NAME, TOKENS_NAME, WEBHOOK_SECRET_NAME}
    env = environment(unit)
    file_settings = {k: v for k, v in env.items() if k.endswith("_FILE") and "ROTA" not in k}
    assert file_settings and all(v.startswith("%d/") and v[3:] in credentials for v in file_settings.values())
    assert not any(k in env for k in ("CASEWATCH_PSEUDONYMISATION_KEY", "CASEWATCH_INGEST_TOKENS"))
    assert service["EnvironmentFile"] == ["/etc/casewatch/casewatch.env"]


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_units_are_hardened_and_restart_except_on_a_configuration_mistake(path):
    service = parse(path)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{path.name}: {key}={value}"
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # casewatch's exit code for a config mistake
    env = environment(parse(path))
    state = env["CASEWATCH_STATE_DIR"]
    assert state.startswith("%S/") and state[3:] == service["StateDirectory"][0]


def test_every_setting_the_units_give_is_a_real_setting():
    from casewatch.config import Settings
    from casewatch.config import NotifierSettings
    known = {f"CASEWATCH_{f.upper()}" for f in (*Settings.model_fields, *NotifierSettings.model_fields)}
    given = set()
    for path in SERVICES:
        given |= {k for k in environment(parse(path)) if k.startswith("CASEWATCH_")}
    given |= set(re.findall(r"^#?(CASEWATCH_[A-Z0-9_]+)=", (UNITS / "casewatch.env.example").read_text(), re.M))
    unknown = given - known
    assert not unknown, f"no casewatch setting reads {sorted(unknown)}"


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    """systemd's own offline check (works without systemd as PID 1); the installed path is
    pointed at this checkout's command so the executable check can pass."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is required"
    for path in [*SERVICES, UNITS / "casewatch.target"]:
        text = path.read_text().replace(INSTALLED, str(REPO / ".venv" / "bin" / "casewatch"))
        (tmp_path / path.name).write_text(text)
    names = [p.name.replace("@.service", "@29100.service") for p in SERVICES] + ["casewatch.target"]
    done = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "casewatch" in line or "Unknown" in line or "Invalid" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
