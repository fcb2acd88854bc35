"""Golden scenarios: hand-worked expected figures (tests/golden/*.yaml) against the domain core.

Each file lists events in the wire format (envelope fields shared through ``defaults``), an
``as_of`` date, the expected cross-event rejections, and the expected value of every series. The
comparison is exact over all series: a non-zero series the file does not list fails the test, and
a listed series must be published with the listed value (a listed 0 included). Flow series list
``windows: [28d, 12m, fytd]``. A file may name ``focus: [metric, ...]``: then only those metrics'
series are compared (still exactly, every label set), so a scenario about one figure need not
work out every clock its events open. ``windows`` lists either the three rolling windows
``[28d, 12m, fytd]`` or all five ``[28d, 12m, fytd, month, quarter]``; a three-value list leaves
that series' calendar windows (month and quarter to date) unchecked, and the scenarios about
calendar periods list all five. The cohort figures (P4, O9) list their two matured cohorts
``[cohort_12m, cohort_quarter]``.

Every expectation is worked by hand from the definition quoted in the file, never by running the
code. Every figure of the catalogue and every event type occurs in at least one scenario.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path


import pytest
import yaml

from casewatch.domain.aggregate import COHORT_WINDOWS, WINDOWS, Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, compact
from casewatch.domain.indicators import COHORT_METRICS, FLOW_METRICS, STOCK_METRICS, contribution
from casewatch.domain.events import event_partition_key
from schemas.events import EVENT_TYPES

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SCENARIOS = sorted(GOLDEN.glob("*.yaml"))
CALENDAR = WorkingDayCalendar()


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    defaults = data.get("defaults", {})
    data["events"] = [{**defaults, **event} for event in data["events"]]
    return data


def key_of(event: dict) -> str:
    return event_partition_key(event)


def by_key(events: list[dict]) -> dict[str, list[dict]]:
    keys: dict[str, list[dict]] = {}
    for event in events:
        keys.setdefault(key_of(event), []).append(event)
    return keys


def run(events: list[dict], as_of: date, use_compact: bool = True) -> tuple[dict, list]:
    aggregate = Aggregate(CALENDAR, as_of)
    rejections = []
    for _key, key_events in sorted(by_key(events).items()):
        history = ChildHistory([compact(e) for e in key_events] if use_compact else key_events)
        rejections.extend(history.rejections)
        aggregate.apply(None, contribution(history, as_of, CALENDAR))
    samples = {(metric, tuple(sorted(labels.items()))): value for metric, labels, value in aggregate.samples()}
    return samples, sorted(rejections)


ROLLING = WINDOWS[:3]
CALENDAR_WINDOWS = WINDOWS[3:]
assert ROLLING == ("28d", "12m", "fytd") and CALENDAR_WINDOWS == ("month", "quarter")


def expected_series(data: dict) -> dict:
    la = data.get("defaults", {}).get("la_code")
    team = data.get("defaults", {}).get("team")
    out = {}
    for item in data["expect"]:
        labels = {"la": la, "team": team, **(item.get("labels") or {})}
        labels = {k: str(v) for k, v in labels.items() if v is not None}
        if "windows" in item:
            values = item["windows"]
            if item["metric"] in COHORT_METRICS:
                assert len(values) == 2, f"{item['metric']}: windows lists [cohort_12m, cohort_quarter]"
                names = COHORT_WINDOWS
            else:
                assert len(values) in (3, 5), f"{item['metric']}: windows lists 3 or 5 values"
                names = WINDOWS
            for window, value in zip(names, values):
                out[(item["metric"], tuple(sorted({**labels, "window": window}.items())))] = float(value)
        else:
            out[(item["metric"], tuple(sorted(labels.items())))] = float(item["value"])
    return out


def unchecked_calendar_windows(actual: dict, data: dict) -> dict:
    """``actual`` without the month/quarter series of metrics whose expectations list only the
    three rolling windows (their calendar windows were not worked by hand in that scenario)."""
    rolling_only = {item["metric"] for item in data["expect"] if len(item.get("windows") or ()) == 3}
    return {k: v for k, v in actual.items()
            if not (k[0] in rolling_only and dict(k[1]).get("window") in CALENDAR_WINDOWS)}


def compare(actual: dict, expected: dict) -> list[str]:
    """Every listed series must be published with its listed value (a listed 0 too: a series that
    is missing is not a series at 0), and every published non-zero series must be listed."""
    problems = []
    for key in sorted(set(actual) | set(expected)):
        if key in expected and key not in actual:
            problems.append(f"{key[0]} {dict(key[1])}: missing, expected {expected[key]}")
            continue
        got, want = actual.get(key, 0.0), expected.get(key, 0.0)
        if abs(got - want) > 1e-9:
            problems.append(f"{key[0]} {dict(key[1])}: got {got}, expected {want}")
    return problems


def focused(series: dict, data: dict) -> dict:
    focus = data.get("focus")
    return series if not focus else {k: v for k, v in series.items() if k[0] in focus}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_scenario(path: Path) -> None:
    data = load(path)
    actual, rejections = run(data["events"], data["as_of"])
    expected = expected_series(data)
    if data.get("focus"):
        assert {k[0] for k in expected} <= set(data["focus"]), "an expectation outside the focus"
    assert compare(unchecked_calendar_windows(focused(actual, data), data), expected) == []
    assert rejections == sorted(tuple(r) for r in data.get("rejections", []))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_scenario_same_with_full_events(path: Path) -> None:
    """Compaction keeps everything the figures need: full wire events give the same result."""
    data = load(path)
    assert run(data["events"], data["as_of"], use_compact=False) == run(data["events"], data["as_of"])


def test_every_required_scenario_is_present() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"assessment_45_vs_46_working_days", "icpc_across_easter", "icpc_substitute_boxing_day",
            "rereferral_12_months", "cp_plans_2_years_and_subsequent", "lac_first_review_20_vs_21",
            "three_placement_moves", "unallocated_cp_case", "correction_voids_assessment",
            "amendment_changes_referral_source"} <= names


def test_a_listed_series_that_is_missing_fails_even_when_listed_as_zero() -> None:
    key = ("casewatch_clocks_max_overdue_workdays", (("la", "E06000004"), ("process", "icpc"), ("team", "cp_1")))
    assert compare({}, {key: 0.0}) != []
    assert compare({key: 0.0}, {key: 0.0}) == []
    other = ("casewatch_icpcs", (("la", "E06000004"), ("team", "cp_1"), ("window", "12m")))
    assert compare({other: 0.0}, {other: 0.0, key: 0.0}) != []
    assert compare({other: 1.0}, {}) != []  # a published non-zero series must be listed


def _documented_figures() -> set[str]:
    """The metric names of docs/metrics.md's flow and snapshot tables (``_eet``-style short forms
    extend the full name before them), read by the one reader of those tables."""
    from tests.unit.domain.test_catalogue_agreement import documented_metric_labels
    return set(documented_metric_labels((Path(__file__).resolve().parents[3] / "docs" / "metrics.md").read_text()))


LOADED_SCENARIOS = [load(p) for p in SCENARIOS]


def test_the_documented_figures_are_the_engines_figures() -> None:
    assert _documented_figures() == set(FLOW_METRICS | STOCK_METRICS)


def test_every_figure_has_a_hand_worked_expectation() -> None:
    listed = {item["metric"] for data in LOADED_SCENARIOS for item in data["expect"]}
    assert sorted((FLOW_METRICS | STOCK_METRICS | _documented_figures()) - listed) == []


def test_every_event_type_occurs_in_a_scenario() -> None:
    used = {event["event_type"] for data in LOADED_SCENARIOS for event in data["events"]}
    assert sorted(set(EVENT_TYPES) - used) == []
