"""CI smoke test of the benchmark script: `benchmarks/run.py --quick` runs end to end against the
session's Kafka (small event sets of every step: the ceilings and the throughput pair, the formed and
the joining groups, the latency through a real ingest, /metrics for 20 authorities, recovery after
kill -9 and a partition move (the memory store), a two-authority region projected to 20, the
memory per child) and reports every measurement and its change against benchmarks/baseline.json.
--quick runs its steps side by side (their time is mostly waiting for workers, group joins and the
dead members' sessions, here at the broker's 6 s minimum), so its figures are not comparable with a
full run's; the script says so. Speed is reported, never asserted here."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

MEASUREMENTS = (
    "a_plain_aiokafka_events_per_s", "b_bare_faust_events_per_s", "c_engine_events_per_s",
    "ratio_c_over_b", "ratio_c_over_a",
    "c1_formed_group_events_per_s", "c2_two_workers_events_per_s", "ratio_2_workers_over_1",
    "c2_joining_events_per_s",
    "latency_p50_ms", "latency_p99_ms",
    "metrics_get_20_authorities_ms", "metrics_series_20_authorities",
    "state_bytes_per_child",
    # every (c)/(b) pair and casewatch's own CPU per event (engine minus bare agent, from /proc)
    "ratio_c_over_b_min_pair", "casewatch_own_us_per_event_max",
    # recovery (--quick: the memory store, Faust's session timeout at 6 s)
    *(f"recovery_memory_session6s_{figure}"
      for figure in ("replay_s", "kill9_restart_s", "move_s", "kill9_one_of_two_s", "rss_kb_per_child")),
    # the region, by one and by two workers, and its projection to 20 authorities
    "region_1w_replay_s", "region_2w_replay_s", "region_1w_peak_rss_mb_max", "region_2w_peak_rss_mb_max",
    "region_1w_rss_kb_per_child", "region_2w_rss_kb_per_child",
    "region_1w_metrics_render_ms_max", "region_2w_metrics_render_ms_max",
    "region_1w_projected_replay_s", "region_2w_projected_replay_s",
    "region_1w_projected_peak_rss_mb_per_worker", "region_2w_projected_peak_rss_mb_per_worker",
    # where a child's memory goes
    "child_memory_parsed_events_kb_per_key", "child_memory_contribution_kb_per_key",
    "child_memory_table_value_kb_per_key",
)


@pytest.mark.timeout(600)
def test_quick_benchmark_reports_every_measurement(tmp_path, kafka_bootstrap):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick",
                           "--bootstrap", kafka_bootstrap, "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert "latest.json" in files and len(files) == 2, files
    results = json.loads((out / "latest.json").read_text())
    assert results["quick"] is True and results["events"] > 0
    # every step ran (each records its load average at start and end)
    assert results["steps"] == ["throughput", "latency_and_exposition", "recovery_memory_session6s",
                                "region"], results["steps"]
    assert set(results["load_average"]) == set(results["steps"])
    for name in MEASUREMENTS:
        value = results.get(name)
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)
        # RSS growth over a replay of a few hundred children is a number, not necessarily above 0
        assert value > 0 or (name.endswith("rss_kb_per_child") and value == value), (name, value)
    # the quick latency run posts 100 events/s for 2 s, and every one must have been seen
    assert results["latency_events"] == 200 and results["latency_events_accepted"] == 200
    assert results["latency_p50_ms"] <= results["latency_p99_ms"]
    # every pair is reported, each with casewatch's own µs/event
    assert len(results["pairs"]) == 1 and results["pairs"][0]["casewatch_own_us_per_event"] is not None
    # the recovered and the moved figures were compared with a reference that has series in it
    assert results["recovery_memory_session6s_reference_series"] > 0
    # the projection says it is one, from how many authorities
    assert results["region_authorities"] == 2 and results["region_projected_to_authorities"] == 20
    table, _, comparison = proc.stdout.partition("against benchmarks/baseline.json")
    # the table on stdout names each measurement next to its value
    for name in MEASUREMENTS:
        assert re.search(rf"^{name} +\S", table, re.M), name
    assert re.search(r"^region_1w_projected_replay_s .*projected from 2 authorities to 20, not run", table, re.M)
    # and each figure's change against the committed baseline follows (never a failure on a number):
    # a line with this run, the baseline and the change, or the list of figures the baseline lacks
    assert comparison, proc.stdout[-2000:]
    assert "--quick: a small event set" in comparison
    new = re.search(r"^not in the baseline \(no change to show\): (.*)$", comparison, re.M)
    lacking = set(new.group(1).split(", ")) if new else set()
    for name in MEASUREMENTS:
        assert name in lacking or re.search(rf"^{name} +-?[\d,.]+ +-?[\d,.]+ +([+-]\d+%|-)$", comparison, re.M), name
