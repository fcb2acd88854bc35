"""CI smoke test of the benchmark script: `benchmarks/run.py --quick` runs end to end (its own broker,
small event sets of every step: throughput pairs, recovery after kill -9 and a partition move, a
two-authority region) and reports every measurement and its change against benchmarks/baseline.json.
Speed is reported, never asserted here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

MEASUREMENTS = (
    "a_plain_aiokafka_events_per_s", "b_bare_faust_events_per_s", "c_engine_events_per_s",
    "ratio_c_over_b", "ratio_c_over_a",
    "c2_two_workers_events_per_s", "ratio_2_workers_over_1",
    "latency_p50_ms", "latency_p99_ms",
    "metrics_get_20_authorities_ms", "metrics_series_20_authorities",
    "state_bytes_per_child",
    # every (c)/(b) pair and casewatch's own CPU per event (engine minus bare agent, from /proc)
    "ratio_c_over_b_min_pair", "casewatch_own_us_per_event_max",
    # recovery (--quick: the memory store, Faust's session timeout at 10 s)
    "recovery_memory_session10s_replay_s", "recovery_memory_session10s_kill9_restart_s",
    "recovery_memory_session10s_move_s", "recovery_memory_session10s_kill9_one_of_two_s",
    # the region, by one and by two workers
    "region_1w_replay_s", "region_2w_replay_s", "region_1w_peak_rss_mb_max", "region_2w_peak_rss_mb_max",
    "region_1w_metrics_render_ms_max", "region_2w_metrics_render_ms_max",
)


@pytest.mark.timeout(900)
def test_quick_benchmark_reports_every_measurement(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=840)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert "latest.json" in files and len(files) == 2, files
    results = json.loads((out / "latest.json").read_text())
    assert results["quick"] is True and results["events"] > 0
    for name in MEASUREMENTS:
        assert isinstance(results.get(name), (int, float)) and results[name] > 0, (name, results.get(name))
    # the quick latency run posts 100 events/s for 5 s, and every one must have been seen
    assert results["latency_events"] == 500
    assert results["latency_p50_ms"] <= results["latency_p99_ms"]
    # every pair is reported, each with casewatch's own µs/event
    assert len(results["pairs"]) == 1 and results["pairs"][0]["casewatch_own_us_per_event"] is not None
    # the recovered and the moved figures were compared with a reference that has series in it
    assert results["recovery_memory_session10s_reference_series"] > 0
    # the table on stdout names each measurement next to its value
    for name in MEASUREMENTS:
        assert name in proc.stdout
    # and each figure's change against the committed baseline follows (never a failure on a number)
    assert "against benchmarks/baseline.json" in proc.stdout
    assert "--quick: a small event set" in proc.stdout
