"""CI smoke test of the benchmark script: `benchmarks/run.py --quick` runs end to end (its own broker,
a small event set) and reports every measurement. Speed is reported, never asserted here."""
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
    # the table on stdout names each measurement next to its value
    for name in MEASUREMENTS:
        assert name in proc.stdout
