"""contribution(): live clocks, stable_until, and definitions not covered by the golden files."""
from __future__ import annotations

from datetime import date

from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory
from casewatch.domain.indicators import INDICATORS, contribution

CAL = WorkingDayCalendar()
LA, TEAM = "E06000004", "cp_1"
ENV = {"la_code": LA, "team": TEAM, "child_ref": "c"}


def ev(event_id, event_type, **fields):
    return {**ENV, "event_id": event_id, "event_type": event_type, **fields}


def stocks(c):
    return {(m, tuple(kv for kv in labels if kv[0] not in ("la", "team"))): v for (m, labels), v in c.stocks.items()}


S47 = [ev("s", "s47.started", start_date="2026-03-10", s47_ref="S")]  # ICPC due Tue 31 Mar 2026
ICPC = (("process", "icpc"),)


def test_icpc_clock_not_yet_due_soon():
    c = contribution(ChildHistory(S47), date(2026, 3, 26), CAL)  # 26, 27, 30 Mar: 3 wd before due
    assert stocks(c) == {("casewatch_clocks_open", ICPC): 1.0, ("casewatch_clocks_max_overdue_workdays", ICPC): 0.0}
    assert c.stable_until == date(2026, 3, 27)


def test_icpc_clock_due_soon():
    c = contribution(ChildHistory(S47), date(2026, 3, 30), CAL)
    assert stocks(c)[("casewatch_clocks_due_soon", ICPC)] == 1.0
    assert ("casewatch_clocks_overdue", ICPC) not in stocks(c)
    assert c.stable_until == date(2026, 4, 1)


def test_icpc_clock_overdue_by_two_working_days():
    c = contribution(ChildHistory(S47), date(2026, 4, 2), CAL)
    s = stocks(c)
    assert s[("casewatch_clocks_overdue", ICPC)] == 1.0
    assert s[("casewatch_clocks_max_overdue_workdays", ICPC)] == 2.0  # 31 Mar, 1 Apr
    assert ("casewatch_clocks_due_soon", ICPC) not in s
    assert c.stable_until == date(2026, 4, 3)


def test_short_breaks_are_never_lac():
    c = contribution(ChildHistory([ev("l", "lac.started", decom="2026-03-02", legal_status="V3", placement="U4")]),
                     date(2026, 3, 20), CAL)
    assert c.flows == {}
    assert c.stocks == {}


def test_future_dated_event_counts_from_its_date():
    events = [ev("p", "cp_plan.started", start_date="2026-03-02", plan_ref="P", initial_category="NEG"),
              ev("e", "cp_plan.ended", end_date="2026-03-25", plan_ref="P", end_route="cin_plan")]
    c = contribution(ChildHistory(events), date(2026, 3, 20), CAL)
    assert stocks(c)[("casewatch_cp_plans_open", (("category", "NEG"),))] == 1.0
    # the plan has had no activity for 14 working days (2-19 Mar) on 20 Mar: a drifting CP case whose
    # longest drift grows tomorrow; a day before it drifted, the next change was the drift itself
    assert c.stable_until == date(2026, 3, 21)
    early = contribution(ChildHistory(events), date(2026, 3, 10), CAL)  # 6 wd quiet; the 10th is 13 Mar
    assert early.stable_until == date(2026, 3, 14)
    after = contribution(ChildHistory(events), date(2026, 3, 25), CAL)
    assert after.stocks == {}
    assert after.flows == c.flows  # flows do not depend on as_of


def test_open_plan_reaches_two_years():
    events = [ev("p", "cp_plan.started", start_date="2024-02-29", plan_ref="P", initial_category="NEG")]
    for i, d in enumerate(["2024-05-20", "2024-11-15", "2025-05-10", "2025-11-05"]):
        events.append(ev(f"r{i}", "cp_review.held", date=d, plan_ref="P"))
    c = contribution(ChildHistory(events), date(2026, 2, 27), CAL)
    assert ("casewatch_cp_plans_open_2y_plus", ()) not in stocks(c)
    assert c.stable_until == date(2026, 2, 28)  # 29 Feb 2024 + 2 years, clamped
    c2 = contribution(ChildHistory(events), date(2026, 2, 28), CAL)
    assert stocks(c2)[("casewatch_cp_plans_open_2y_plus", ())] == 1.0


def test_care_leaver_latest_status():
    events = [ev("a", "care_leaver.status", date="2025-06-01", age_band="19-21", in_touch="YES", activity="G5",
                 accommodation="U2"),
              ev("b", "care_leaver.status", date="2026-01-10", age_band="19-21", in_touch="YES", activity="F1",
                 accommodation="U1")]
    s = stocks(contribution(ChildHistory(events), date(2026, 3, 1), CAL))
    band = (("age_band", "19-21"),)
    assert s == {("casewatch_care_leavers", band): 1.0, ("casewatch_care_leavers_eet", band): 1.0,
                 ("casewatch_care_leavers_suitable_accommodation", band): 1.0}


def test_snapshot_team_is_the_latest_event_team():
    events = [ev("p", "cp_plan.started", start_date="2026-03-02", plan_ref="P", initial_category="NEG"),
              {**ev("a", "case.allocated", allocation_date="2026-03-05", case_type="cp"), "team": "cp_2"}]
    c = contribution(ChildHistory(events), date(2026, 3, 20), CAL)
    assert {dict(labels)["team"] for _, labels in c.stocks} == {"cp_2"}
    assert {dict(labels)["team"] for _, labels, _ in c.flows} == {"cp_1"}


def test_indicator_catalogue():
    by_id = {i.id: i for i in INDICATORS}
    assert len(by_id) == len(INDICATORS)
    assert by_id["P2"].national_reference == 0.857
    assert by_id["P8"].national_reference == 0.814
    assert by_id["I7"].national_reference == 0.226
    assert by_id["O6"].national_reference == 0.245
    assert by_id["O7"].national_reference == 0.044
    assert all(m.startswith("casewatch_") for i in INDICATORS for m in i.metrics)


def test_an_end_without_a_reason_is_its_own_outcome_group_never_other():
    # T11 groups: adopted = E11, E12; returned home = E4A, E4B; E8 "other" is other; an end whose
    # reason was not recorded is "not_recorded" (docs/metrics.md outcome_group)
    from casewatch.domain.groups import outcome_group
    assert [outcome_group(r) for r in (None, "", "E8", "E13", "E11", "E4B")] == [
        "not_recorded", "not_recorded", "other", "other", "adopted", "returned_home"]
    events = [ev("s", "lac.started", decom="2025-06-02", rne="S", legal_status="C2", placement="U4"),
              ev("e", "lac.ended", dec="2025-09-01")]
    flows = contribution(ChildHistory(events), date(2026, 3, 31), CAL).flows
    by_outcome = {dict(labels)["outcome_group"]: v for (m, labels, _d), v in flows.items()
                  if m == "casewatch_lac_ceased_by_outcome"}
    assert by_outcome == {"not_recorded": 1.0}
    assert sum(v for (m, _l, _d), v in flows.items() if m == "casewatch_lac_ceased") == 1.0


def test_a_period_that_began_before_the_data_is_looked_after_but_not_a_start():
    events = [ev("s", "lac.started", decom="2025-06-02", rne="P", began_before_data=True, legal_status="C2",
                 placement="U4")]
    c = contribution(ChildHistory(events), date(2025, 6, 3), CAL)
    assert not any(m == "casewatch_lac_started" for (m, _l, _d) in c.flows)
    s = stocks(c)
    assert s[("casewatch_lac_open", (("legal_status_group", "care_order"),))] == 1.0
    # no first-review clock (DECOM + 20 wd); the placement that begins on DECOM has its visit clock
    assert ("casewatch_clocks_open", (("process", "lac_review_first"),)) not in s
    assert s[("casewatch_clocks_open", (("process", "statutory_visit"),))] == 1.0


def test_drift_moves_as_days_pass_and_stable_until_names_the_day():
    """A CP case (limit 10 working days) whose plan started Mon 22 Dec 2025 and nothing since:
    working days in [22 Dec, d) for d = Wed 7 Jan 2026 are 22, 23, 24, 29, 30, 31 Dec, 2, 5, 6 Jan
    = 9 (25, 26 Dec and 1 Jan are bank holidays): not drifting; on Thu 8 Jan it is 10: drifting.
    Without a new event the figure changes on 8 Jan, so the contribution of 7 Jan must say so."""
    from casewatch.domain.calendar import WorkingDayCalendar
    from casewatch.domain.history import ChildHistory
    from casewatch.domain.indicators import contribution
    cal = WorkingDayCalendar()
    history = ChildHistory([{"event_id": "p", "event_type": "cp_plan.started", "la_code": "E06000004",
                             "team": "cp_1", "plan_ref": "P1", "start_date": "2025-12-22",
                             "initial_category": "NEG"}])
    key = ("casewatch_drift_cases", (("case_type", "cp"), ("la", "E06000004"), ("team", "cp_1")))
    longest = ("casewatch_drift_max_workdays", key[1])
    on_7th = contribution(history, date(2026, 1, 7), cal)
    assert key not in on_7th.stocks and on_7th.stocks[longest] == 0.0
    assert on_7th.stable_until is not None and on_7th.stable_until <= date(2026, 1, 8)
    on_8th = contribution(history, date(2026, 1, 8), cal)
    assert on_8th.stocks[key] == 1.0 and on_8th.stocks[longest] == 10.0
    assert on_8th.stable_until == date(2026, 1, 9)  # the longest drift grows every working day
    on_12th = contribution(history, date(2026, 1, 12), cal)  # Mon: + 8, 9 Jan = 12
    assert on_12th.stocks[longest] == 12.0


def test_drift_thresholds_are_configurable_and_a_mistake_is_one_sentence():
    import pytest
    from casewatch.domain.indicators import drift_workdays
    assert drift_workdays("") == {"cin": 20, "cp": 10, "lac": 20}
    assert drift_workdays("cp=5, lac=30") == {"cin": 20, "cp": 5, "lac": 30}
    for bad in ("cp=0", "cp=ten", "care_leaver=5", "cp"):
        with pytest.raises(ValueError, match="write e.g. cin=20,cp=10,lac=20"):
            drift_workdays(bad)


def test_an_episode_closed_on_the_day_the_next_is_referred_leaves_the_child_in_need():
    # CIN census: a child is in need at a date when an episode of need is open then. Episode E1
    # (referred 1 Sep 2025) closes on 2 Feb 2026, the day E2 is referred; E2 is still open on
    # 31 Mar 2026, so the child is in need then (1), its open assessment of E2 runs on (1 clock),
    # while E1's unfinished assessment stopped with E1 (not counted). Worked by hand.
    history = ChildHistory([
        ev("r1", "referral.received", referral_date="2025-09-01", source="6", episode_ref="E1"),
        ev("a1", "assessment.started", start_date="2025-09-03", assessment_ref="A1"),
        ev("r2", "referral.received", referral_date="2026-02-02", source="2A", episode_ref="E2"),
        ev("x1", "cin_episode.closed", closure_date="2026-02-02", reason="RC7", episode_ref="E1"),
        ev("a2", "assessment.started", start_date="2026-02-03", assessment_ref="A2"),
    ])
    s = stocks(contribution(history, date(2026, 3, 31), CAL))
    assert s[("casewatch_cin_open", ())] == 1.0
    assert s[("casewatch_clocks_open", (("process", "assessment"),))] == 1.0
    # The same closure naming E2 (or naming no episode) closes what is open: not in need.
    for ref in ("E2", None):
        closing = [
            ev("r1", "referral.received", referral_date="2025-09-01", source="6", episode_ref="E1"),
            ev("r2", "referral.received", referral_date="2026-02-02", source="2A", episode_ref="E2"),
            ev("x1", "cin_episode.closed", closure_date="2026-02-02", reason="RC7",
               **({"episode_ref": ref} if ref else {}))]
        s = stocks(contribution(ChildHistory(closing), date(2026, 3, 31), CAL))
        assert ("casewatch_cin_open", ()) not in s
