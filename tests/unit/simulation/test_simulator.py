"""The synthetic authority follows the national rates (domain.md §2), is reproducible, emits the
wire format of docs/events.md, and its scenario switches do what the demo and alert tests need.

Expected values are the published national figures; the measured values are counted directly from
the events here (working days with numpy.busday_count and the `holidays` package, not the project's
calendar), with tolerances for a seeded two-year run of one 40,000-child authority.
"""
from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import holidays
import numpy as np
import pytest
from dateutil.relativedelta import relativedelta

from casewatch.simulation.authority import Scenario, authority_events

WINDOW_START, WINDOW_END = date(2024, 4, 1), date(2026, 3, 31)
BANK_HOLIDAYS = sorted(holidays.UK(subdiv="ENG", years=range(2015, 2030)).keys())
DOCS = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def wd(start: str, end: str) -> int:
    return int(np.busday_count(start, end, weekmask="1111100", holidays=BANK_HOLIDAYS))


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(authority_events(["E06000004"], 40000, 11, WINDOW_START, WINDOW_END))


def in_window(e: dict) -> bool:
    return WINDOW_START.isoformat() <= e["effective_date"] <= WINDOW_END.isoformat()


def of_type(events, t, window=True):
    return [e for e in events if e["event_type"] == t and (not window or in_window(e))]


def test_referral_volume_follows_the_population(events):
    # 632,830 referrals for ≈12.19m children -> ≈2,076 a year for 40,000 children
    per_year = len(of_type(events, "referral.received")) / 2
    assert 1850 <= per_year <= 2300


def test_re_referral_rate_near_national(events):
    last: dict[str, date] = {}
    n = re_referrals = 0
    for e in of_type(events, "referral.received", window=False):
        d = date.fromisoformat(e["referral_date"])
        if in_window(e):
            n += 1
            prev = last.get(e["child_ref"])
            if prev is not None and prev >= d - relativedelta(months=12):
                re_referrals += 1
        last[e["child_ref"]] = d
    assert abs(re_referrals / n - 0.226) <= 0.03


def test_referral_nfa_and_sources(events):
    refs = of_type(events, "referral.received")
    assert abs(sum(e["referral_nfa"] for e in refs) / len(refs) - 0.065) <= 0.015
    groups = Counter(e["source"] for e in refs)
    assert groups.most_common(1)[0][0] == "6"  # police is the largest source


def test_assessment_durations_match_national_distribution(events):
    referral_date = {e["episode_ref"]: e["referral_date"] for e in of_type(events, "referral.received", False)}
    started = {e["assessment_ref"]: referral_date[e["referral_ref"]]
               for e in of_type(events, "assessment.started", False)}
    durations = sorted(wd(started[e["assessment_ref"]], e["authorisation_date"])
                       for e in of_type(events, "assessment.completed"))
    assert len(durations) > 3000
    assert abs(statistics.median(durations) - 33) <= 3
    assert abs(durations[len(durations) // 4] - 17) <= 3
    assert abs(durations[3 * len(durations) // 4] - 43) <= 3
    assert abs(sum(d <= 45 for d in durations) / len(durations) - 0.857) <= 0.03


def test_s47_icpc_and_plans(events):
    referrals = len(of_type(events, "referral.received"))
    s47_start = {e["s47_ref"]: e["start_date"] for e in of_type(events, "s47.started", False)}
    s47s = of_type(events, "s47.started")
    assert abs(len(s47s) / referrals - 0.364) <= 0.04
    icpcs = of_type(events, "icpc.held")
    days = sorted(wd(s47_start[e["s47_ref"]], e["date"]) for e in icpcs)
    assert abs(statistics.median(days) - 14) <= 2
    assert abs(sum(d <= 15 for d in days) / len(days) - 0.814) <= 0.06
    assert abs(sum(e["resulted_in_cpp"] for e in icpcs) / len(icpcs) - 0.868) <= 0.05
    plans = of_type(events, "cp_plan.started")
    assert abs(sum(e["previous_plans"] >= 1 for e in plans) / len(plans) - 0.245) <= 0.05


def test_plans_lasting_two_years_exist_but_are_few(events):
    start = {e["plan_ref"]: date.fromisoformat(e["start_date"]) for e in of_type(events, "cp_plan.started", False)}
    ended = of_type(events, "cp_plan.ended")
    long = [e for e in ended if date.fromisoformat(e["end_date"]) >= start[e["plan_ref"]] + relativedelta(years=2)]
    assert 1 <= len(long)
    assert len(long) / len(ended) <= 0.10


def stocks_at(events, as_of: str):
    open_cin, cp, lac = set(), set(), set()
    placements = defaultdict(list)
    for e in events:
        if e["effective_date"] > as_of:
            continue
        t, c = e["event_type"], e.get("child_ref")
        if t == "referral.received":
            open_cin.add(c)
        elif t == "cin_episode.closed":
            open_cin.discard(c)
        elif t == "cp_plan.started":
            cp.add(e["plan_ref"])
        elif t == "cp_plan.ended":
            cp.discard(e["plan_ref"])
        elif t == "lac.started":
            lac.add(c)
            placements[c] = [e["decom"]]
        elif t == "lac.ended":
            lac.discard(c)
        elif t == "placement.changed":
            placements[c].append(e["date"])
    return open_cin, cp, lac, placements


def test_caseload_stocks_per_10k(events):
    open_cin, cp, lac, placements = stocks_at(events, WINDOW_END.isoformat())
    assert 280 <= len(open_cin) / 4 <= 380       # ≈330 CIN per 10k
    assert 30 <= len(cp) / 4 <= 55               # 49,420 CPP ≈ 41 per 10k
    assert 45 <= len(lac) / 4 <= 85              # 67 LAC per 10k
    cutoff = (WINDOW_END - relativedelta(months=12)).isoformat()
    three_plus = sum(1 for c in lac if sum(d > cutoff for d in placements[c]) >= 3)
    assert 0.05 <= three_plus / len(lac) <= 0.15  # 10% with 3+ placements in 12 months


def test_care_leavers_eet_and_accommodation(events):
    statuses = [e for e in of_type(events, "care_leaver.status") if e["age_band"] == "19-21"]
    assert len(statuses) >= 50
    in_touch = [e for e in statuses if e["in_touch"] == "YES"]
    # EET and suitability are drawn among those in touch; the national share counts all of them
    eet = sum(e["activity"][0] in "FP" for e in in_touch) / len(in_touch)
    suitable = sum(e["accommodation"].endswith("1") for e in in_touch) / len(in_touch)
    assert abs(eet - 0.54) <= 0.12
    assert abs(suitable - 0.89) <= 0.08


def test_workforce_rates(events):
    snaps = of_type(events, "workforce.snapshot")
    assert {e["team"] for e in snaps} >= {"assessment_1", "cp_1", "lac_1", "cin_1"}
    vacancy = sum(e["vacancy_fte"] for e in snaps) / sum(e["vacancy_fte"] + e["inpost_fte"] for e in snaps)
    agency = sum(e["agency_fte"] for e in snaps) / sum(e["agency_fte"] + e["inpost_fte"] for e in snaps)
    assert abs(vacancy - 0.142) <= 0.01
    assert abs(agency - 0.13) <= 0.01


def test_some_cases_go_unallocated_and_are_reallocated(events):
    spells = of_type(events, "case.unallocated")
    assert len(spells) > 0
    assert {e["case_type"] for e in spells} >= {"cin"}


def test_events_are_in_event_time_order_with_raw_looking_ids(events):
    dates = [e["effective_date"] for e in events]
    assert dates == sorted(dates)
    assert all(re.fullmatch(r"LCS-\d{6}", e["child_ref"]) for e in events if "child_ref" in e)
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)


def _catalogue() -> dict[str, list[str]]:
    """event_type -> required own fields, read from the contract table in docs/events.md."""
    required = {}
    for line in DOCS.read_text().splitlines():
        m = re.match(r"\| `([a-z0-9_]+\.[a-z0-9_]+)` \| (.*) \|$", line)
        if m:
            required[m.group(1)] = re.findall(r"\*\*`([a-z_]+)`\*\*", m.group(2))
    return required


def test_every_event_carries_the_contract_fields(events):
    catalogue = _catalogue()
    assert len(catalogue) >= 25
    seen = set()
    for e in events:
        assert e["event_type"] in catalogue
        seen.add(e["event_type"])
        for name in ("event_id", "event_type", "schema_version", "la_code", "team"):
            assert name in e
        assert re.fullmatch(r"E0[6-9]\d{6}|E1\d{7}", e["la_code"])
        assert re.fullmatch(r"[a-z0-9_]{1,32}", e["team"])
        if e["event_type"] != "workforce.snapshot":
            assert "child_ref" in e
        missing = [f for f in catalogue[e["event_type"]] if f not in e]
        assert not missing, (e["event_type"], missing)
    # the generator covers the catalogue except corrections and voids
    assert set(catalogue) - seen == {"event.voided"}


def test_same_seed_same_events_and_other_seed_differs():
    a = list(authority_events(["E06000004"], 3000, 5, date(2025, 1, 1), date(2025, 6, 30), warmup_years=1))
    b = list(authority_events(["E06000004"], 3000, 5, date(2025, 1, 1), date(2025, 6, 30), warmup_years=1))
    c = list(authority_events(["E06000004"], 3000, 6, date(2025, 1, 1), date(2025, 6, 30), warmup_years=1))
    assert a == b
    assert a != c


def test_regional_view_has_each_authority():
    events = list(authority_events(["E06000004", "E06000005"], 3000, 5, date(2025, 1, 1), date(2025, 3, 31),
                                   warmup_years=1))
    assert {e["la_code"] for e in events} == {"E06000004", "E06000005"}
    refs = {e["la_code"]: {x["child_ref"] for x in events if x["la_code"] == e["la_code"] and "child_ref" in x}
            for e in events}
    assert not refs["E06000004"] & refs["E06000005"]


def referrals_per_working_day(events, first: date, last: date) -> float:
    n = sum(1 for e in events if e["event_type"] == "referral.received"
            and first.isoformat() <= e["referral_date"] <= last.isoformat())
    return n / wd(first.isoformat(), (last + timedelta(days=1)).isoformat())


def test_referral_surge_doubles_referrals_from_its_date():
    surge = date(2025, 9, 1)
    events = list(authority_events(["E06000004"], 20000, 3, date(2025, 1, 1), date(2025, 12, 31),
                                   [Scenario("referral_surge", surge)], warmup_years=1))
    before = referrals_per_working_day(events, date(2025, 3, 1), date(2025, 8, 31))
    after = referrals_per_working_day(events, surge, date(2025, 12, 31))
    assert 1.7 <= after / before <= 2.3


def test_staff_shortage_makes_the_team_late():
    shortage = date(2025, 7, 1)
    events = list(authority_events(["E06000004"], 40000, 3, date(2025, 1, 1), date(2025, 12, 31),
                                   [Scenario("staff_shortage", shortage, "cp_1")], warmup_years=1))
    s47_start = {e["s47_ref"]: e["start_date"] for e in events if e["event_type"] == "s47.started"}

    def icpc_in_time(first: str, last: str) -> float:
        held = [e for e in events if e["event_type"] == "icpc.held" and first <= s47_start[e["s47_ref"]] <= last]
        return sum(wd(s47_start[e["s47_ref"]], e["date"]) <= 15 for e in held) / len(held)

    assert icpc_in_time("2025-01-01", "2025-06-10") >= 0.70
    assert icpc_in_time("2025-07-01", "2025-12-01") <= 0.40
    snaps = [e for e in events if e["event_type"] == "workforce.snapshot" and e["team"] == "cp_1"]
    after = [e for e in snaps if e["date"] >= shortage.isoformat()]
    assert all(e["vacancy_fte"] / (e["vacancy_fte"] + e["inpost_fte"]) > 0.25 for e in after)


def test_every_event_validates_once_pseudonymised_at_the_edge():
    """The simulator emits raw-looking ids; after the ingest edge's pseudonymiser every event must
    pass the schemas (the same path `--publish` and `casewatch replay` take)."""
    from schemas import ValidationFailure, parse_event
    from casewatch.edge.pseudonymise import Pseudonymiser

    pseudonymiser = Pseudonymiser(b"simulator-test-key-0123456789abcdef")
    failures = Counter()
    for e in authority_events(["E06000004", "E06000005"], 8000, 2, date(2025, 4, 1), date(2026, 3, 31),
                              warmup_years=3):
        try:
            parse_event(pseudonymiser.event(e))
        except ValidationFailure as exc:
            for err in exc.errors:
                failures[(e["event_type"], err["loc"])] += 1
    assert not failures, dict(failures)
