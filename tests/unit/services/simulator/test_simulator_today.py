"""The simulator's commands take "today" from the deployment (casewatch.bootstrap.today_for):
with CASEWATCH_FIXED_TODAY set, `simulate --until today` ends its history on that day and
`backfill-prometheus` backfills the two years to the day before it. Expected dates by hand."""
from __future__ import annotations

import json
import os
from datetime import date

import pytest

from casewatch.adapters.prometheus import backfill
from casewatch.cli import main
from casewatch.config import get_settings


@pytest.fixture
def fixed_today(tmp_path, monkeypatch):
    """The settings read afresh from an environment whose today is fixed at Tue 1 July 2025."""
    monkeypatch.chdir(tmp_path)  # no .env
    for name in [n for n in list(os.environ) if n.startswith("CASEWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASEWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CASEWATCH_FIXED_TODAY", "2025-07-01")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_simulate_until_today_ends_the_history_on_the_fixed_day(fixed_today):
    out = fixed_today / "events.jsonl"
    code = main(["simulate", "--until", "today", "--history-years", "0.1", "--population", "400",
                 "--out", str(out)])
    assert code == 0
    days = sorted(json.loads(line)["effective_date"][:10] for line in out.read_text().splitlines())
    assert days, "the simulator wrote no events"
    # the history's last day is the fixed Tue 1 July 2025 (the wall clock's is over a year later);
    assert "2025-06-20" <= days[-1] <= "2025-07-01"


def test_backfill_prometheus_defaults_to_the_two_years_before_the_fixed_day(fixed_today, monkeypatch):
    asked = []

    class Summary:
        def render(self):
            return "summary"

    def record(events, data_dir, first, last, settings, **kwargs):
        asked.append((first, last))
        return Summary()

    monkeypatch.setattr(backfill, "backfill_data_dir", record)
    events = fixed_today / "events.jsonl"
    events.write_text("", encoding="utf-8")
    assert main(["backfill-prometheus", "--events", str(events), "--out", str(fixed_today / "blocks")]) == 0
    # yesterday = Mon 30 June 2025; 730 days before it: 365 days back is 30 June 2024, 365 more
    # (the year holds 29 February 2024) is Sat 1 July 2023
    assert asked == [(date(2023, 7, 1), date(2025, 6, 30))]
    asked.clear()
    assert main(["backfill-prometheus", "--events", str(events), "--out", str(fixed_today / "blocks"),
                 "--from-date", "2025-06-01", "--to-date", "today"]) == 0
    assert asked == [(date(2025, 6, 1), date(2025, 7, 1))]
