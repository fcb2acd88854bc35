"""Golden scenarios: hand-worked expected figures (tests/golden/*.yaml) against the domain core.

Each file lists events in the wire format (envelope fields shared through ``defaults``), an
``as_of`` date, the expected cross-event rejections, and the expected value of every series. The
comparison is exact over all series: a non-zero series the file does not list fails the test, and
a listed series must have the listed value. Flow series list ``windows: [28d, 12m, fytd]``.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from casewatch.domain.aggregate import WINDOWS, Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, compact
from casewatch.domain.indicators import contribution

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SCENARIOS = sorted(GOLDEN.glob("*.yaml"))
CALENDAR = WorkingDayCalendar()


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    defaults = data.get("defaults", {})
    data["events"] = [{**defaults, **event} for event in data["events"]]
    return data


def key_of(event: dict) -> str:
    return event.get("child_ref") or f"wf:{event['la_code']}:{event['team']}"


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


def expected_series(data: dict) -> dict:
    la = data.get("defaults", {}).get("la_code")
    team = data.get("defaults", {}).get("team")
    out = {}
    for item in data["expect"]:
        labels = {"la": la, "team": team, **(item.get("labels") or {})}
        labels = {k: str(v) for k, v in labels.items() if v is not None}
        if "windows" in item:
            for window, value in zip(WINDOWS, item["windows"]):
                out[(item["metric"], tuple(sorted({**labels, "window": window}.items())))] = float(value)
        else:
            out[(item["metric"], tuple(sorted(labels.items())))] = float(item["value"])
    return out


def compare(actual: dict, expected: dict) -> list[str]:
    problems = []
    for key in sorted(set(actual) | set(expected)):
        got, want = actual.get(key, 0.0), expected.get(key, 0.0)
        if key in expected and key not in actual and want == 0.0 and not key[0].endswith("max_overdue_working_days"):
            continue
        if abs(got - want) > 1e-9:
            problems.append(f"{key[0]} {dict(key[1])}: got {got}, expected {want}")
    return problems


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_scenario(path: Path) -> None:
    data = load(path)
    actual, rejections = run(data["events"], data["as_of"])
    assert compare(actual, expected_series(data)) == []
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
