"""docker-compose.yml cannot run here (no Docker engine), so check it statically: it parses, every
file it mounts exists, and the Prometheus and Alertmanager configs it mounts pass promtool/amtool."""
from __future__ import annotations

import shutil
import subprocess

import yaml

from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"


def _services():
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_has_the_same_topology_as_the_local_stack():
    services = _services()
    assert {"kafka", "prometheus", "alertmanager", "grafana", "engine", "ingest", "notifier",
            "simulator"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert (REPO / "Dockerfile").exists()


def test_every_mounted_file_exists():
    checked = 0
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("./"):
                continue  # a named volume
            assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
            checked += 1
    assert checked >= 7


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboards():
    mounts = {v.split(":")[1]: v.split(":")[0] for v in _services()["grafana"]["volumes"] if v.startswith("./")}
    datasources = REPO / mounts["/etc/grafana/provisioning/datasources"]
    sources = [yaml.safe_load(p.read_text()) for p in datasources.glob("*.y*ml")]
    assert any(ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
               for doc in sources for ds in doc["datasources"])
    dashboards = REPO / mounts["/var/lib/grafana/dashboards"]
    assert list(dashboards.glob("*.json")), "no generated dashboards to provision"


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
