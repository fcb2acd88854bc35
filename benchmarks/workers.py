"""Engine worker processes for the benchmark: start and stop them, read their CPU and memory from
/proc, their state from /healthz and their figures from /metrics."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from casewatch.domain.catalogue import MAX_METRICS

REPO = Path(__file__).resolve().parents[1]

# Faust settings given to every worker of this run through Faust's own environment variables
# (run.py --quick: BROKER_HEARTBEAT_INTERVAL); a step's own (the recovery's session) go on top.
FAUST_ENV: dict[str, str] = {}


def engine_env(bootstrap: str, topic: str, app_id: str, state: Path, partitions: int,
               la_codes: str = "E06000004", store: str = "memory", state_name: str = "engine") -> dict:
    """A worker's environment. ``store`` other than memory sets CASEWATCH_ENGINE_STORE; the
    worker's local directory is ``state/state_name`` (give each worker of a group its own, as on
    separate machines: a RocksDB store locks its files)."""
    env = dict(os.environ, CASEWATCH_KAFKA_BOOTSTRAP=bootstrap, CASEWATCH_EVENTS_TOPIC=topic,
               CASEWATCH_DEADLETTER_TOPIC=f"{topic}-dlq", CASEWATCH_ENGINE_APP_ID=app_id,
               CASEWATCH_STATE_DIR=str(state / state_name), CASEWATCH_PARTITIONS=str(partitions),
               CASEWATCH_FIXED_TODAY="2026-03-31", CASEWATCH_LA_CODES=la_codes, PYTHONPATH=str(REPO))
    env.update(FAUST_ENV)
    env.pop("CASEWATCH_ENGINE_STORE", None)
    if store != "memory":
        env["CASEWATCH_ENGINE_STORE"] = store
    return env


def store_supported(store: str) -> bool:
    """Whether this checkout's engine reads CASEWATCH_ENGINE_STORE (memory is always there)."""
    if store == "memory":
        return True
    from casewatch.config import Settings
    return "engine_store" in Settings.model_fields


def start_worker(env: dict, port: int, log_path: Path) -> tuple[subprocess.Popen, object]:
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "casewatch.cli", "engine", "--metrics-port", str(port)],
                            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def start_engines(env: dict, ports: list[int], state: Path, name: str) -> list[tuple[subprocess.Popen, object]]:
    return [start_worker(env, port, state / f"{name}-{i}.log") for i, port in enumerate(ports)]


def stop_all(procs: list[tuple[subprocess.Popen, object]]) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc, log in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def kill_hard(proc: subprocess.Popen) -> None:
    """``kill -9`` of one worker (no shutdown, no last commit, no leave-group)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes so far (Linux /proc; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def memory_mb(pid: int) -> dict[str, float]:
    """``{"rss": VmRSS, "hwm": VmHWM}`` of a process in MB (peak RSS is VmHWM), {} if it is gone."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[2:5].lower()] = int(line.split()[1]) / 1024
    except OSError:
        return {}
    return out


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def health(url: str, timeout: float = 5) -> dict:
    """The worker's /healthz (``url`` is its /metrics URL)."""
    with urllib.request.urlopen(url.replace("/metrics", "/healthz"), timeout=timeout) as resp:
        return json.load(resp)


def engine_processed_cheaply(metrics_url: str) -> int:
    """The engine's processed-event count from /healthz (a full /metrics render 5 times a second
    took ~4% of the engine's time in a profile; Prometheus scrapes every 15 s)."""
    return int(health(metrics_url)["events_processed"])


def engine_assigned(url: str) -> int:
    return int(health(url)["assigned_partitions"])


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
Figures = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_figures(text: str) -> Figures:
    """The indicator series of one /metrics body (the families whose HELP says ``casewatch figure``;
    the worker's own metrics, which differ between workers and restarts, are left out)."""
    figures_names = {line.split()[2] for line in text.splitlines()
                     if line.startswith("# HELP ") and " casewatch figure " in line}
    out: Figures = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m and m.group(1) in figures_names:
            labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def get_text(url: str, timeout: float = 60) -> tuple[str, float]:
    """The body of a GET and its seconds."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body = resp.read().decode()
    return body, time.perf_counter() - t0


def combined(parts: list[Figures]) -> Figures:
    """Several workers' figures as the boards see them: summed, the maximum for MAX_METRICS."""
    out: Figures = {}
    for part in parts:
        for key, value in part.items():
            if key in out:
                out[key] = max(out[key], value) if key[0] in MAX_METRICS else out[key] + value
            else:
                out[key] = value
    return out


def differences(a: Figures, b: Figures) -> int:
    """How many series differ (a series missing on one side counts as 0 there)."""
    n = 0
    for key in a.keys() | b.keys():
        x, y = a.get(key, 0.0), b.get(key, 0.0)
        if abs(x - y) > 1e-6 * max(1.0, abs(x), abs(y)):
            n += 1
    return n
