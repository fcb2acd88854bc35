"""The simulator's calibration profiles: ``stockton`` (the demo authority E06000004) follows
Stockton-on-Tees's published 2025 figures, ``national`` keeps England's (tests/unit/simulation/test_simulator.py).

Expected values are the published figures themselves, counted here straight from the events:
3,959 referrals a year for 45,120 children under 18, re-referrals 28.8% (a referral of a
child with another referral in the 12 months before it, CIN census definition), vacancy 7.5%
(vacant FTE / (vacant + in-post FTE), the workforce census definition). The populations here are
small (two authorities of 3,000 children), hence the tolerances.
"""
from __future__ import annotations

from datetime import date

import pytest
from dateutil.relativedelta import relativedelta

from casewatch.simulation.authority import authority_events
from casewatch.simulation.rates import profile

WINDOW = ("2025-04-01", "2026-03-31")     # a financial year inside the fixture's history


def _in_window(e: dict) -> bool:
    return WINDOW[0] <= e["effective_date"] <= WINDOW[1]


def test_stockton_profile_follows_stocktons_published_rates(pack_events):
    referrals = [e for e in pack_events if e["event_type"] == "referral.received"]
    per_child_year = sum(_in_window(e) for e in referrals) / (2 * 3000)
    assert abs(per_child_year - 3959 / 45120) <= 0.15 * 3959 / 45120
    last: dict[str, date] = {}
    n = re_referrals = 0
    for e in referrals:
        d = date.fromisoformat(e["referral_date"])
        if _in_window(e):
            n += 1
            prev = last.get(e["child_ref"])
            if prev is not None and prev >= d - relativedelta(months=12):
                re_referrals += 1
        last[e["child_ref"]] = d
    assert abs(re_referrals / n - 0.288) <= 0.05
    snaps = [e for e in pack_events if e["event_type"] == "workforce.snapshot" and _in_window(e)]
    vacancy = sum(e["vacancy_fte"] for e in snaps) / sum(e["vacancy_fte"] + e["inpost_fte"] for e in snaps)
    assert abs(vacancy - 0.075) <= 0.015


def test_profiles_differ_and_stay_deterministic():
    # Stockton's children aged 0-17: 564 looked-after children at 31 March 2025 were 125 per 10,000
    assert profile("stockton").POPULATION == 564 * 10_000 // 125 == 45_120
    assert profile("national").POPULATION == 40000
    assert profile("national").RE_REFERRAL == 0.226            # England 2025, unchanged
    a = list(authority_events(["E06000004"], 800, 5, date(2025, 1, 1), date(2025, 3, 31), profile="stockton"))
    b = list(authority_events(["E06000004"], 800, 5, date(2025, 1, 1), date(2025, 3, 31), profile="stockton"))
    c = list(authority_events(["E06000004"], 800, 5, date(2025, 1, 1), date(2025, 3, 31), profile="national"))
    assert a == b and a != c
    with pytest.raises(ValueError, match="unknown simulator profile"):
        profile("leeds")
