"""The committed results (issue 18, item 6): ``benchmarks/baseline.json`` holds the latest full
run's figures with the machine (cores, memory) and the load average of each step; every run
prints its figures' change against it, and never fails on a number."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

BASELINE = Path(__file__).resolve().parent / "baseline.json"

# Figures that are settings or sizes of the run, not measurements: shown, not compared.
NOT_COMPARED = ("cpu_count", "partitions", "population", "years", "events", "quick", "load_average",
                "mem_total_gb", "large_population", "large_messages", "region_authorities",
                "region_population_per_authority", "region_years", "region_messages", "region_partitions",
                "region_projected_to_authorities",
                "latency_target_rate_per_s", "latency_events")


# What belongs to a run (kept in ``runs``) or the machine, not to the figures.
RUN_KEYS = ("load_average", "steps", "started_at", "load_average_1m", "load_average_1m_end", "cpu_count",
            "mem_total_gb", "platform", "python", "quick")


def machine() -> dict:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "mem_total_gb": round(mem_kb / 1024 / 1024, 1),
            "platform": platform.platform(), "python": platform.python_version()}


def load(path: Path = BASELINE) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# ... and sizes of what was measured (events, children, series, samples)
SIZES = ("_events", "_children", "_keys_tracked", "_reference_series", "_partitions_moved", "_samples",
         "_messages", "_population")


def comparable(key: str, value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and not key.startswith(NOT_COMPARED) and not key.endswith(SIZES))


def compare(results: dict, baseline: dict) -> str:
    """One line per figure in both: this run, the baseline, the change."""
    if not baseline:
        return "no benchmarks/baseline.json to compare with"
    base = baseline.get("figures", baseline)
    head = (f"against benchmarks/baseline.json ({baseline.get('machine', {}).get('cpu_count', '?')} cores, "
            f"{baseline.get('machine', {}).get('mem_total_gb', '?')} GB; runs "
            f"{', '.join(r.get('started_at', '?') for r in baseline.get('runs', []))})")
    if results.get("quick"):
        head += "\n(--quick: a small event set, its steps side by side, so the figures are not comparable with a full run's)"
    lines = [head, f"{'measure':<46} {'this run':>12} {'baseline':>12} {'change':>8}"]
    new = []
    for key, value in results.items():
        if not comparable(key, value):
            continue
        old = base.get(key)
        if not comparable(key, old):
            new.append(key)
            continue
        change = f"{(value - old) / old * 100:+.0f}%" if old else "-"
        lines.append(f"{key:<46} {value:>12,.3f} {old:>12,.3f} {change:>8}")
    if len(lines) == 2:
        lines.append("(no figure in common)")
    if new:
        lines.append(f"not in the baseline (no change to show): {', '.join(new)}")
    return "\n".join(lines)


def update(results: dict, command: list[str], path: Path = BASELINE) -> Path:
    """Merge this run's figures into the baseline (a step run on its own replaces that step's
    figures and keeps the others'), with the machine and the run's command and load averages."""
    baseline = load(path)
    figures = baseline.get("figures", {})
    figures.update({k: v for k, v in results.items() if k not in RUN_KEYS})
    runs = [r for r in baseline.get("runs", []) if set(r.get("steps", [])) - set(results.get("steps", []))]
    runs.append({"started_at": results.get("started_at"), "command": " ".join(command),
                 "load_average_1m_start_end": [results.get("load_average_1m"), results.get("load_average_1m_end")],
                 "steps": results.get("steps", []), "load_average_1m": results.get("load_average", {})})
    out = {"about": "latest full benchmark run (benchmarks/run.py --write-baseline); each run's steps, "
                    "command and 1-minute load average (start, end of each step) in runs",
           "machine": machine(), "runs": runs, "figures": figures}
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path
