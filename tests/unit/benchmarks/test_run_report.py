"""The benchmark's report (benchmarks/baseline.py, benchmarks/run.py): every figure of a run is
shown against the committed baseline or listed as not in it, and --quick's side-by-side steps
report what each step measured, in the order a full run reports it, and fail when one fails."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import baseline  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
import run  # noqa: E402


def test_every_figure_is_compared_or_listed_as_not_in_the_baseline():
    results = {"quick": False, "ratio_c_over_b": 0.5, "recovery_memory_kill9_restart_s": 40.0,
               "region_1w_projected_replay_s": 500.0, "events": 83000, "region_projected_to_authorities": 20,
               "pairs": [{"ratio_c_over_b": 0.5}], "recovery_stores_same_reference_figures": True}
    base = {"machine": {"cpu_count": 2}, "runs": [], "figures": {"ratio_c_over_b": 0.4, "events": 80000}}
    lines = baseline.compare(results, base).splitlines()
    assert any(line.split()[:1] == ["ratio_c_over_b"] and line.endswith("+25%") for line in lines), lines
    assert lines[-1] == ("not in the baseline (no change to show): recovery_memory_kill9_restart_s, "
                         "region_1w_projected_replay_s")
    # sizes and settings are shown in the table, not compared
    assert not any(line.startswith(("events ", "region_projected_to_authorities ")) for line in lines)


def test_side_by_side_merges_each_steps_figures_in_the_lanes_order():
    started = []
    both_running = threading.Barrier(2, timeout=10)

    def lane(name: str, delay: float):
        def body(results: dict) -> None:
            started.append(name)
            both_running.wait()   # fails unless the two lanes run at the same time
            time.sleep(delay)
            results[f"{name}_s"] = delay
            run.step(results, name, 0.0)
        return body
    results: dict = {"started_at": "now"}
    run.side_by_side([lane("slow", 0.2), lane("fast", 0.0)], results)
    assert sorted(started) == ["fast", "slow"]
    assert list(results) == ["started_at", "slow_s", "steps", "load_average", "fast_s"]
    assert results["steps"] == ["slow", "fast"] and set(results["load_average"]) == {"slow", "fast"}


def test_side_by_side_raises_a_lanes_failure_once_all_have_ended():
    ended = []

    def fails(results: dict) -> None:
        raise RuntimeError("a measured engine exited early")

    def ends(results: dict) -> None:
        time.sleep(0.1)
        ended.append(True)
    with pytest.raises(RuntimeError, match="exited early"):
        run.side_by_side([fails, ends], {})
    assert ended == [True]
