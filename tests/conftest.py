"""Test fixtures: a real Kafka (KRaft), Prometheus and Alertmanager, started once per test session
on free loopback ports with the stack manager's own code, and stopped afterwards.

Integration tests are never skipped: if a part cannot start, the session fails and says why.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from casewatch.config import Settings
from casewatch.stack import components as stack_components
from casewatch.stack.manager import StackManager
from casewatch.stack.processes import ProcessTable
from tests.support.ports import free_port  # noqa: F401  (tests import it from here too)

REPO = Path(__file__).resolve().parents[1]
SESSION_EVALUATION_INTERVAL = "5s"
TEST_KEY = "test-pseudonymisation-key-0123456789abcdef"


@dataclass
class LocalStack:
    settings: Settings
    manager: StackManager

    @property
    def kafka_bootstrap(self) -> str:
        return self.settings.bootstrap

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.alertmanager_port}"

    @property
    def processes(self) -> ProcessTable:
        return self.manager.processes

    def settings_for(self, **overrides) -> Settings:
        """Settings for one test: its own topics and consumer group unless given."""
        tag = uuid.uuid4().hex[:8]
        base = {"events_topic": f"events-{tag}", "deadletter_topic": f"deadletters-{tag}",
                "engine_app_id": f"engine-{tag}"}
        base.update(overrides)
        return self.settings.model_copy(update=base)

    # -- Prometheus ------------------------------------------------------------------------
    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = str(at)
        url = f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for_query(self, expr: str, predicate, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(1.0)
        raise AssertionError(f"Prometheus query {expr!r} never satisfied the check; last result {result}")

    def reload_prometheus(self) -> None:
        """prometheus.yml as `casewatch stack up` renders it, with the second engine target and the
        rules evaluated every 5 s (the engine's scrape interval) instead of every 15 s: the same
        rules on the same scrapes, so a test waiting for a recording rule waits a third as long."""
        path = stack_components.render_prometheus_config(self.settings, self.extra_engine_targets())
        config = yaml.safe_load(path.read_text())
        config["global"]["evaluation_interval"] = SESSION_EVALUATION_INTERVAL
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        req = urllib.request.Request(f"{self.prometheus_url}/-/reload", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def extra_engine_targets(self) -> list[str]:
        return [f"{self.settings.host}:{self.settings.engine_metrics_port + 1}"]

    # -- casewatch services ------------------------------------------------------------------
    def start_engine(self, settings: Settings, name: str = "engine", metrics_port: int | None = None,
                     timeout: float = 90.0):
        """Start one engine worker as a real process and wait until /metrics answers."""
        port = metrics_port or settings.engine_metrics_port
        env = stack_components.settings_env(settings)
        env["CASEWATCH_ENGINE_METRICS_PORT"] = str(port)
        proc = self.processes.start(name, [sys.executable, "-m", "casewatch.cli", "engine"],
                                    env=env, cwd=REPO)
        url = f"http://{settings.host}:{port}/metrics"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive:
                raise AssertionError(f"engine exited:\n{self.processes.tail(name, 40)}")
            if stack_components.http_ok(url)[0]:
                return proc
            time.sleep(0.5)
        raise AssertionError(f"engine /metrics never answered:\n{self.processes.tail(name, 40)}")

    def stop(self, name: str, kill: bool = False) -> None:
        self.processes.stop(name, kill=kill)


def _session_settings(state_dir: Path) -> Settings:
    ports = {name: free_port() for name in (
        "kafka_port", "kafka_controller_port", "prometheus_port", "alertmanager_port",
        "ingest_port", "notifier_port")}
    # The engine gets two adjacent ports (a second worker uses engine_metrics_port + 1).
    while True:
        engine = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", engine + 1))
                break
            except OSError:
                continue
    return Settings(state_dir=state_dir, engine_metrics_port=engine, engine_web_port=free_port(),
                    pseudonymisation_key=TEST_KEY, la_codes="E06000004,E06000005",
                    fixed_today=None, **ports)


@pytest.fixture(scope="session")
def local_stack() -> LocalStack:
    state_dir = Path(tempfile.mkdtemp(prefix="casewatch-test-"))
    settings = _session_settings(state_dir)
    manager = StackManager(settings, parts=["kafka", "prometheus", "alertmanager"], demo=False,
                           log=lambda msg: print(msg, file=sys.stderr))
    stack = LocalStack(settings, manager)
    try:
        manager.up()
        stack.reload_prometheus()
    except stack_components.StackError as exc:
        manager.down()
        pytest.fail(f"the real test stack could not start: {exc}", pytrace=False)
    yield stack
    manager.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: LocalStack) -> str:
    return local_stack.kafka_bootstrap


os.environ.setdefault("CASEWATCH_PSEUDONYMISATION_KEY", TEST_KEY)


# -- pytest-xdist (./dev test runs two workers with --dist loadgroup) -----------------------------
# Every test file is one unit of work (a module-scoped fixture such as the e2e demo stack or a SASL
# broker would otherwise start once on each worker that runs one of the file's tests). The tests
# of the shared stack (local_stack) are not held on one worker: each worker starts its own session
# stack the first time it runs such a file (about half a minute), which lets both workers share
# those tests; held on one worker they were ~1,000 s of the ~1,130 s run, a floor no other saving
# could go below. Units start longest first (xdist's own order, by number of tests, would start
# the three-test e2e file near the end): the end-to-end files, then the files on the shared stack,
# then the other integration-type folders, the unit tests last to fill the gaps. A serial run (-n 0
# or -p no:xdist) is unaffected: one session stack, collection order.
LONG_FIRST = ("tests/e2e/test_history_day_one.py", "tests/e2e/")
# Files that must not run beside each other: the engine tests with a CPU hog on one core, and the
# sustained-rate test that bounds the producer's pace and the lag's recovery. One unit of work.
NEVER_SIDE_BY_SIDE = {"tests/integration/test_engine_consistency.py": "cpu-hog-or-rate-bound",
                      "tests/resilience/test_load.py": "cpu-hog-or-rate-bound"}
SLOW_FOLDERS = ("tests/integration/", "tests/resilience/", "tests/security/", "tests/reports/",
                "tests/statutory/", "tests/deploy/", "tests/golden/")


def _file(item) -> str:
    return item.nodeid.split("::")[0]


def _start_rank(item) -> int:
    path = _file(item)
    for n, prefix in enumerate(LONG_FIRST):
        if path.startswith(prefix):
            return n
    if "local_stack" in getattr(item, "fixturenames", ()):
        return len(LONG_FIRST)
    return len(LONG_FIRST) + (1 if path.startswith(SLOW_FOLDERS) else 2)


def pytest_configure(config):
    # xdist's loadscope/loadgroup reorders units by their number of tests unless told not to;
    # the order set in pytest_collection_modifyitems is the one wanted (read by the controller).
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = NEVER_SIDE_BY_SIDE.get(_file(item), "file:" + _file(item))
            item.add_marker(pytest.mark.xdist_group(group))
    if getattr(config, "workerinput", None) is not None:   # an xdist worker: longest units first
        rank: dict[str, int] = {}
        for item in items:   # a file starts as early as its earliest test would
            rank[_file(item)] = min(rank.get(_file(item), 99), _start_rank(item))
        items.sort(key=lambda item: rank[_file(item)])   # stable: files and tests keep their order
