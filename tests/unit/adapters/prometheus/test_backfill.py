"""The Prometheus backfill writes valid OpenMetrics: families contiguous, one sample per series per
day at 00:00 UTC, ``# EOF`` last, and values equal to direct counts from the events file."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest

from casewatch.simulation.authority import authority_events
from casewatch.adapters.prometheus.backfill import write_openmetrics

FIRST, LAST = date(2025, 5, 1), date(2025, 5, 31)
LINE = re.compile(r'^([a-z0-9_]+)\{([^}]*)\} (\S+) (\d+)$')


@pytest.fixture(scope="module")
def backfill(tmp_path_factory):
    events = list(authority_events(["E06000004"], 5000, 21, date(2025, 1, 1), LAST, warmup_years=2))
    out = tmp_path_factory.mktemp("bf") / "history.om"
    n = write_openmetrics(events, out, FIRST, LAST)
    return events, out.read_text().splitlines(), n


def parse(lines):
    series = defaultdict(dict)   # (metric, labels) -> {ts: value}
    for line in lines:
        m = LINE.match(line)
        if m:
            series[(m.group(1), m.group(2))][int(m.group(4))] = float(m.group(3))
    return series


def midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


def test_openmetrics_shape(backfill):
    _, lines, n = backfill
    assert lines[-1] == "# EOF"
    assert lines.count("# EOF") == 1
    families_seen, current = [], None
    for line in lines[:-1]:
        metric = line.split(" ")[2] if line.startswith("# TYPE") else line.split("{")[0]
        if metric != current:
            assert metric not in families_seen, "a metric family is split"
            families_seen.append(metric)
            current = metric
    series = parse(lines)
    days = (LAST - FIRST).days + 1
    assert n == sum(len(v) for v in series.values())
    all_days = [midnight(FIRST + timedelta(days=i)) for i in range(days)]
    full = 0
    for stamps in series.values():
        # a series appears on the day its first figure exists, then has one sample every day
        assert sorted(stamps) == all_days[all_days.index(min(stamps)):]
        full += len(stamps) == days
    assert full > len(series) / 2


def test_referrals_28d_equal_a_direct_count(backfill):
    events, lines, _ = backfill
    series = parse(lines)
    for day in (FIRST, date(2025, 5, 15), LAST):
        exported = sum(v[midnight(day)] for (m, labels), v in series.items()
                       if m == "casewatch_referrals" and 'window="28d"' in labels)
        first = (day - timedelta(days=27)).isoformat()
        direct = sum(1 for e in events if e["event_type"] == "referral.received"
                     and first <= e["referral_date"] <= day.isoformat())
        assert direct > 0
        assert exported == direct


def test_open_cp_plans_equal_a_direct_count(backfill):
    events, lines, _ = backfill
    series = parse(lines)
    day = date(2025, 5, 20)
    exported = sum(v[midnight(day)] for (m, _), v in series.items() if m == "casewatch_cp_plans_open")
    open_plans = set()
    for e in events:
        if e["event_type"] == "cp_plan.started" and e["start_date"] <= day.isoformat():
            open_plans.add(e["plan_ref"])
        if e["event_type"] == "cp_plan.ended" and e["end_date"] <= day.isoformat():
            open_plans.discard(e["plan_ref"])
    assert len(open_plans) > 0
    assert exported == len(open_plans)
