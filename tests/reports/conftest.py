"""A real Prometheus holding known figures for the packs' tests.

Two synthetic authorities' events (the simulator, Stockton profile, small populations) are turned
into TSDB blocks for the days the packs read (quarter and month ends, the workload day and the same
day a year earlier) by the backfill's own path (`casewatch.adapters.prometheus.backfill.backfill_data_dir`:
the engine's domain code per day, the recording rules evaluated over it), one day at a time, and a
real Prometheus 2.42 (Debian) is started on them. Every query a pack makes goes to it over HTTP.
"""
from __future__ import annotations

import shutil
from datetime import date
from types import SimpleNamespace

import pytest

from casewatch.simulation.authority import authority_events
from casewatch.adapters.prometheus.backfill import TemporaryPrometheus, backfill_data_dir

LAS = ["E06000004", "E06000001"]
PERIOD = "2026-Q2"                       # July to September 2026
QUARTER_ENDS = [date(2024, 12, 31), date(2025, 3, 31), date(2025, 6, 30), date(2025, 9, 30),
                date(2025, 12, 31), date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30)]
MONTH_ENDS = [date(2025, 7, 31), date(2025, 8, 31), date(2026, 5, 31), date(2026, 7, 31), date(2026, 8, 31)]
AS_OF = date(2026, 9, 30)
DAYS = sorted(set(QUARTER_ENDS + MONTH_ENDS))


def _settings():
    from casewatch.config import Settings
    return Settings(la_codes=",".join(LAS))


@pytest.fixture(scope="session")
def pack_events() -> list[dict]:
    return list(authority_events(LAS, 3000, 16, date(2024, 1, 1), AS_OF, profile="stockton"))


@pytest.fixture(scope="session")
def pack_prometheus(pack_events, tmp_path_factory):
    for tool in ("/usr/bin/prometheus", "/usr/bin/promtool"):
        assert shutil.which(tool), f"{tool} is needed (Debian prometheus)"
    data_dir = tmp_path_factory.mktemp("pack-prometheus") / "data"
    settings = _settings()
    labels = {"job": "casewatch-engine", "instance": "127.0.0.1:39999"}
    for day in DAYS:
        backfill_data_dir(pack_events, data_dir, day, day, settings, labels=labels)
    with TemporaryPrometheus(data_dir, lookback="5m") as prom:
        yield SimpleNamespace(url=prom.base, events=pack_events, data_dir=data_dir)
