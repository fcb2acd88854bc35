"""The five-year SSDA903 set through the real stack: ``casewatch import ssda903 DIR`` publishes the
five returns to Kafka (pseudonymised at the edge, marked as one import run), a real engine with
"today" = 31 March 2022 reads them, and the figures it exposes on /metrics equal the DfE counting
done with pandas on the raw rows (``dfe_counting``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from casewatch.adapters.kafka.replay_marking import CONTROL_HEADER, CONTROL_KEY, REPLAY_HEADER
from casewatch.adapters.kafka.topics import ensure_topics
from tests.conftest import REPO, TEST_KEY, free_port
from tests.statutory import dfe_counting
from tests.support.engine_runs import scrape, wait_until_caught_up
from tests.support.kafka_topics import read_records

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "ssda903-five-year"
YEARS = (2018, 2019, 2020, 2021, 2022)


@pytest.fixture(scope="module")
def imported(local_stack, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ssda903-engine")
    settings = local_stack.settings_for(fixed_today="2022-03-31", la_codes="E06000004")
    ensure_topics(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWATCH_")}
    env.update(CASEWATCH_KAFKA_BOOTSTRAP=settings.bootstrap, CASEWATCH_EVENTS_TOPIC=settings.events_topic,
               CASEWATCH_DEADLETTER_TOPIC=settings.deadletter_topic, CASEWATCH_PSEUDONYMISATION_KEY=TEST_KEY,
               CASEWATCH_LA_CODES="E06000004", CASEWATCH_FIXED_TODAY="2022-03-31",
               CASEWATCH_STATE_DIR=str(tmp_path / "state"))
    done = subprocess.run([sys.executable, "-m", "casewatch.cli", "import", "ssda903", str(DATA)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    port = free_port()
    url = f"http://{settings.host}:{port}/metrics"
    local_stack.start_engine(settings, name="engine-ssda903", metrics_port=port)
    try:
        series = None
        if done.returncode == 0:
            wait_until_caught_up([url], settings.bootstrap, settings.events_topic, timeout=300)
            series = scrape(url)
        yield {"settings": settings, "done": done, "series": series}
    finally:
        local_stack.stop("engine-ssda903")


def test_the_engine_figures_at_31_march_2022_equal_the_dfe_counting(imported):
    done, series = imported["done"], imported["series"]
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SSDA903 import (5 return(s))" in done.stdout and "failed validation" not in done.stdout
    returns = dfe_counting.read_returns({y: DATA / f"SSDA903_{y - 1}-{y % 100:02d}_episodes.csv" for y in YEARS})
    expected = dfe_counting.figures(returns, 2022)

    def total(metric: str, window: str | None = None, **labels) -> float:
        return sum(v for (name, lab), v in series.items() if name == metric
                   and dict(lab).get("window") == window
                   and all(dict(lab).get(k) == want for k, want in labels.items()))

    assert total("casewatch_lac_open") == expected["lac"]
    assert total("casewatch_lac_started", "12m") == expected["started"]
    assert total("casewatch_lac_ceased", "12m") == expected["ceased"]
    for group, n in expected["ceased_by_outcome"].items():
        assert total("casewatch_lac_ceased_by_outcome", "12m", outcome_group=group) == n, group
    assert total("casewatch_lac_3plus_placements_12m") == expected["three_plus_12m"]
    assert total("casewatch_lac_3plus_placements_24m") == expected["three_plus_24m"]
    assert total("casewatch_events_dead_lettered_total") == 0


def test_the_import_is_one_marked_run_ended_on_every_partition(imported):
    settings = imported["settings"]
    records = read_records(settings.bootstrap, settings.events_topic)
    events = [r for r in records if r.key != CONTROL_KEY]
    controls = [r for r in records if r.key == CONTROL_KEY]
    runs = {dict(r.headers).get(REPLAY_HEADER) for r in events}
    assert len(runs) == 1 and next(iter(runs)).decode("ascii").startswith("import-")
    run = runs.pop()
    assert sorted(r.partition for r in controls) == list(range(settings.partitions))
    for r in controls:
        assert dict(r.headers) == {CONTROL_HEADER: b"replay-end", REPLAY_HEADER: run} and r.value == b""
