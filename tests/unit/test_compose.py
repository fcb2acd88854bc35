"""docker-compose.yml cannot run here (no Docker engine), so check it statically: it is valid
against the Compose Specification's JSON Schema (compose-spec.json as shipped by the
check-jsonschema package), runs without a .env, keeps its data on volumes, every long-running
service has a healthcheck and every dependency waits for one, the demo parts sit behind the `demo`
profile, every CASEWATCH_* variable it sets is a real setting, every file it mounts exists, the
secrets it generates are where the services and Alertmanager read them, and the Prometheus and
Alertmanager configs it mounts pass promtool/amtool."""
from __future__ import annotations

import copy
import importlib
import importlib.resources
import json
import os
import re
import shutil
import stat
import subprocess

import jsonschema
import pytest
import yaml

from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
ONE_SHOT = {"secrets", "topics"}
DEMO_ONLY = {"simulator", "mailpit"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict:
    return _compose()["services"]


def _schema() -> dict:
    return json.loads(importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
                      .joinpath("compose-spec.json").read_text())


def _mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        out.append((source, target))
    return out


def _environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


# --- the Compose Specification ----------------------------------------------------------------

def test_compose_file_is_valid_against_the_compose_specification():
    schema = _schema()
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("breakage", ["healthcheck key", "depends_on condition", "env_file key"])
def test_the_schema_check_catches_a_broken_file(breakage):
    """The validation above can fail: the same check refuses a file with one mistake."""
    broken = copy.deepcopy(_compose())
    engine = broken["services"]["engine"]
    if breakage == "healthcheck key":
        engine["healthcheck"]["every"] = "10s"
    elif breakage == "depends_on condition":
        engine["depends_on"]["kafka"]["condition"] = "service_ready"
    else:
        engine["env_file"][0]["optional"] = True  # the key is `required`
    assert list(jsonschema.Draft202012Validator(_schema()).iter_errors(broken))


# --- runs from a fresh clone ------------------------------------------------------------------

def test_no_env_file_is_required():
    for name, service in _services().items():
        for entry in service.get("env_file") or []:
            assert isinstance(entry, dict) and entry.get("required") is False, \
                f"{name}: env_file {entry!r} must be optional (path + required: false)"
    assert (REPO / ".env.example").exists()
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_every_interpolated_variable_has_a_default_listed_in_env_example():
    text = COMPOSE.read_text()
    example = (REPO / ".env.example").read_text()
    listed = dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$", example, re.M))
    found = re.findall(r"\$\{([A-Z0-9_]+)(:?-)?([^}]*)\}", text)
    assert found
    for name, dash, default in found:
        assert dash == ":-", f"${{{name}}} has no default: a fresh clone without .env would get an empty value"
        assert name in listed, f"{name} is not in .env.example"
        assert listed[name] == default, f".env.example says {name}={listed[name]}, compose defaults to {default}"


def test_compose_has_the_same_topology_as_the_local_stack():
    services = _services()
    assert {"kafka", "prometheus", "alertmanager", "grafana", "engine", "ingest", "notifier",
            "simulator"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert (REPO / "Dockerfile").exists()


# --- data on volumes --------------------------------------------------------------------------

def test_kafka_keeps_its_log_on_the_volume():
    kafka = _services()["kafka"]
    log_dirs = _environment(kafka)["KAFKA_LOG_DIRS"]
    named = {target: source for source, target in _mounts(kafka) if not source.startswith(".")}
    assert log_dirs in named, f"KAFKA_LOG_DIRS={log_dirs} is not a mounted volume ({named})"


def test_every_store_is_a_declared_volume_and_every_volume_is_used():
    compose = _compose()
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for source, _ in _mounts(service):
            if source and not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
                used.add(source)
    assert used == declared
    stores = {name: {target: source for source, target in _mounts(s)} for name, s in compose["services"].items()}
    assert stores["prometheus"]["/prometheus"] in declared
    assert stores["alertmanager"]["/alertmanager"] in declared
    assert stores["grafana"]["/var/lib/grafana"] in declared


def test_every_mounted_file_exists():
    checked = 0
    for name, service in _services().items():
        for source, _ in _mounts(service):
            if not source.startswith("./"):
                continue  # a named volume
            assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
            checked += 1
    assert checked >= 10


# --- health and order -------------------------------------------------------------------------

def test_every_long_running_service_has_a_healthcheck():
    for name, service in _services().items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} runs once"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL")


def test_dependencies_wait_for_health_or_completion():
    services = _services()
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition for each service"
        for target, rule in depends.items():
            assert target in services
            condition = rule["condition"]
            if target in ONE_SHOT:
                assert condition == "service_completed_successfully", f"{name} -> {target}"
            else:
                assert condition == "service_healthy", f"{name} -> {target}: {condition}"
                assert services[target].get("healthcheck"), f"{name} waits for {target}, which has no healthcheck"
    for name in ("engine", "ingest"):
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "topics" in services[name]["depends_on"] and "secrets" in services[name]["depends_on"]
    assert "secrets" in services["notifier"]["depends_on"] and "secrets" in services["alertmanager"]["depends_on"]


def test_the_demo_parts_run_only_with_the_demo_profile():
    for name, service in _services().items():
        if name in DEMO_ONLY:
            assert service.get("profiles") == ["demo"], f"{name} must be demo-only"
        else:
            assert not service.get("profiles"), f"{name} must run in a council's deployment"
        # a production service never waits for a demo-only one
        for target in service.get("depends_on") or {}:
            if name not in DEMO_ONLY:
                assert target not in DEMO_ONLY, f"{name} depends on demo-only {target}"


# --- settings ---------------------------------------------------------------------------------

def test_every_casewatch_variable_is_a_real_setting():
    from casewatch.config import Settings
    from casewatch.config import NotifierSettings
    known = {f"CASEWATCH_{field.upper()}" for field in (*Settings.model_fields, *NotifierSettings.model_fields)}
    seen = set()
    for name, service in _services().items():
        for variable in _environment(service):
            if variable.startswith("CASEWATCH_"):
                assert variable in known, f"{name} sets {variable}, which no casewatch setting reads"
                seen.add(variable)
    example = re.findall(r"^#?\s*(CASEWATCH_[A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M)
    for variable in example:
        assert variable in known, f".env.example lists {variable}, which no casewatch setting reads"
    assert "CASEWATCH_SMTP_HOST" in seen and "CASEWATCH_PSEUDONYMISATION_KEY_FILE" in seen


def test_notifier_mail_goes_to_the_demo_catcher_by_default():
    services = _services()
    env = _environment(services["notifier"])
    assert env["CASEWATCH_SMTP_HOST"] == "${CASEWATCH_SMTP_HOST:-mailpit}"
    assert "1025" in env["CASEWATCH_SMTP_PORT"]


# --- secrets ----------------------------------------------------------------------------------

def test_generated_secrets_are_where_services_and_alertmanager_read_them(tmp_path):
    """Run the secrets service's own command and check each path the services are given."""
    from casewatch.config import WEBHOOK_SECRET_NAME
    services = _services()
    init = services["secrets"]
    assert init["command"][:3] == ["casewatch", "secrets", "init"]
    folder = init["command"][3]
    assert (dict((t, s) for s, t in _mounts(init)))[folder] == "secrets"

    out = tmp_path / "secrets"
    done = subprocess.run([str(REPO / ".venv" / "bin" / "casewatch"), "secrets", "init", str(out),
                           "--owner", str(os.getuid()), "--webhook-group", str(os.getgid())],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "CASEWATCH_LA_CODES": "E06000004"})
    assert done.returncode == 0, done.stderr
    written = {p.name for p in out.iterdir()}
    assert written == {"pseudonymisation.key", "ingest-tokens.json", WEBHOOK_SECRET_NAME}
    assert stat.S_IMODE((out / "pseudonymisation.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / WEBHOOK_SECRET_NAME).stat().st_mode) == 0o640
    assert (out / "pseudonymisation.key").read_text() not in done.stdout

    def in_volume(service, path):
        mounts = dict((t, s) for s, t in _mounts(service))
        parent, _, file_name = path.rpartition("/")
        return mounts.get(parent) == "secrets" and file_name in written

    for name in ("engine", "ingest", "notifier", "simulator"):
        env = {**_environment(services[name])}
        for variable in ("CASEWATCH_PSEUDONYMISATION_KEY_FILE", "CASEWATCH_INGEST_TOKENS_FILE"):
            assert in_volume(services[name], env[variable]), f"{name}: {variable}={env[variable]}"
    notifier_file = _environment(services["notifier"])["CASEWATCH_NOTIFIER_WEBHOOK_CREDENTIALS_FILE"]
    assert in_volume(services["notifier"], notifier_file)

    alertmanager = yaml.safe_load((REPO / "prometheus" / "alertmanager.yml").read_text())
    files = {w["http_config"]["authorization"]["credentials_file"]
             for r in alertmanager["receivers"] for w in r.get("webhook_configs") or []}
    assert files == {notifier_file}, "Alertmanager must read the notifier's own secret file"
    assert in_volume(services["alertmanager"], notifier_file)


# --- Prometheus, Alertmanager, Grafana --------------------------------------------------------

def test_prometheus_keeps_backfilled_history_and_has_no_admin_api():
    flags = _services()["prometheus"]["command"]
    retention = next(f.split("=", 1)[1] for f in flags if f.startswith("--storage.tsdb.retention.time="))
    assert retention.endswith("y") and int(retention[:-1]) >= 3  # the demo backfills two years
    assert "--web.enable-admin-api" not in flags
    assert "--storage.tsdb.path=/prometheus" in flags


def test_grafana_provisions_the_datasource_and_puts_the_published_board_in_its_own_folder():
    grafana = _services()["grafana"]
    mounts = {target: source for source, target in _mounts(grafana) if source.startswith("./")}
    datasources = REPO / mounts["/etc/grafana/provisioning/datasources"]
    sources = [yaml.safe_load(p.read_text()) for p in datasources.glob("*.y*ml")]
    assert any(ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
               for doc in sources for ds in doc["datasources"])

    provisioning = yaml.safe_load((REPO / mounts["/etc/grafana/provisioning/dashboards/casewatch.yml"]).read_text())
    folder_of = {p["options"]["path"]: p["folder"] for p in provisioning["providers"]}
    boards = {}
    for target, source in mounts.items():
        if source.startswith("./dashboards/generated/"):
            parent = target.rsplit("/", 1)[0]
            assert parent in folder_of, f"{target} is in no provider's path"
            boards[source.rsplit("/", 1)[1]] = folder_of[parent]
    generated = {p.name for p in (REPO / "dashboards" / "generated").glob("*.json")}
    assert set(boards) == generated, "every generated board is provisioned, once"
    published = {name for name in generated if "published" in name}
    assert published and all(boards[name] == "casewatch published" for name in published)
    assert all(folder == "casewatch" for name, folder in boards.items() if name not in published)


def test_mounted_prometheus_config_passes_promtool():
    assert shutil.which("promtool"), "promtool (Debian package prometheus) is required"
    done = subprocess.run(["promtool", "check", "config", str(REPO / "prometheus" / "prometheus.yml")],
                          capture_output=True, text=True, cwd=REPO / "prometheus")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mounted_alertmanager_config_passes_amtool():
    assert shutil.which("amtool"), "amtool (Debian package prometheus-alertmanager) is required"
    done = subprocess.run(["amtool", "check-config", str(REPO / "prometheus" / "alertmanager.yml")],
                          capture_output=True, text=True, cwd=REPO / "prometheus")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_casewatch_command_in_compose_is_a_real_subcommand_with_valid_flags():
    from casewatch.cli import build_parser
    checked = 0
    for name, service in _services().items():
        command = service.get("command")
        if not command or command[0] not in ("casewatch", "python"):
            continue
        if command[0] == "casewatch":
            args = build_parser().parse_args(command[1:])  # SystemExit on an unknown command or flag
            assert callable(getattr(args, "func", None)), f"{name}: {command} runs nothing"
        else:
            assert command[1] == "-c"
            code = command[2]
            compile(code, name, "exec")
            for module, names in re.findall(r"from ([\w.]+) import ([\w, ]+);", code):
                imported = importlib.import_module(module)
                for attribute in names.split(","):
                    assert hasattr(imported, attribute.strip()), f"{name}: {module}.{attribute} does not exist"
        checked += 1
    assert checked >= 6
