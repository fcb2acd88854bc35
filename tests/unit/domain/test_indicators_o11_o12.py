"""O11 from an SSDA903 return: the header's DOB reaches the events only as a month of birth, and the
figure read through the domain matches a count worked by hand from the DfE definition.

DfE (Children looked after, long-term stability): "children under 16 who have been looked after
continuously for at least 2.5 years, and who have been in the same placement for at least 2 years /
children under 16 looked after continuously for at least 2.5 years" (69% for England, 2025).
"""
from __future__ import annotations

from datetime import date

from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory, compact
from casewatch.domain.indicators import contribution
from services.feeds.envelope import FeedContext
from services.feeds.ssda903 import Ssda903Import, find_returns

EPISODES = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN"


def _import(folder):
    events, dead = [], []
    run = Ssda903Import(FeedContext("E06000004", "import:ssda903"), events.append, dead.append,
                        note=lambda name, n=1: None)
    returns, _ = find_returns(folder)
    for ret in returns:
        run.load(ret)
    run.run()
    return events, dead


def test_ssda903_header_dob_feeds_o11_as_a_month_only(tmp_path):
    # a: born 20 Jan 2012, looked after since 15 Jun 2023, never moved: on 31 Mar 2026 aged 14,
    #    2 years 9 months in care, 2 years 9 months in the placement -> numerator and denominator.
    # b: born 10 May 2009 (16 on 31 Mar 2026): not under 16 -> neither.
    # c: no DOB in the header -> age unknown -> neither.
    # d: born 29 Feb 2016, looked after since 2 Jan 2024 (2.5 years on 2 Jul 2026) -> neither.
    # So O11 = 1 / 1 by hand.
    (tmp_path / "SSDA903_2025-26_episodes.csv").write_text("\n".join([
        EPISODES,
        "a,15/06/2023,S,C2,N1,U4,PR1,,,,,,",
        "b,01/02/2020,S,C2,N1,U4,PR1,,,,,,",
        "c,01/02/2020,S,C2,N1,U4,PR1,,,,,,",
        "d,02/01/2024,S,C2,N1,U4,PR1,,,,,,",
    ]) + "\n")
    (tmp_path / "SSDA903_2025-26_header.csv").write_text(
        "CHILD,SEX,DOB\na,1,20/01/2012\nb,2,10/05/2009\nc,1,\nd,2,29/02/2016\n")
    events, dead = _import(tmp_path)
    assert dead == []
    starts = [e for e in events if e["event_type"] == "lac.started"]
    assert sorted(e.get("birth_month") or "-" for e in starts) == ["-", "2009-05", "2012-01", "2016-02"]
    text = repr(events)
    for day in ("2012-01-20", "20/01/2012", "2009-05-10", "2016-02-29"):
        assert day not in text  # never the day of birth

    as_of = date(2026, 3, 31)
    cal = WorkingDayCalendar()
    agg = Aggregate(cal, as_of)
    by_child: dict[str, list] = {}
    for e in events:
        by_child.setdefault(e["child_ref"], []).append(compact(e))
    for evs in by_child.values():
        agg.apply(None, contribution(ChildHistory(evs), as_of, cal))
    got = {m: v for m, _labels, v in agg.samples()
           if m in ("casewatch_lac_long_term_under16", "casewatch_lac_long_term_same_placement_2y")}
    assert got == {"casewatch_lac_long_term_under16": 1.0, "casewatch_lac_long_term_same_placement_2y": 1.0}


def test_dfe_csc_api_date_of_birth_feeds_o11_as_a_month_only():
    """The DfE CSC API's child_details.date_of_birth reaches lac.started only as its month."""
    from services.feeds.dfe_api import snapshot_events
    child = {"la_child_id": "Child12", "child_details": {"date_of_birth": "2012-01-20"},
             "social_care_episodes": [{
                 "social_care_episode_id": "EP1", "referral_date": "2023-06-01", "referral_source": "6",
                 "referral_no_further_action_flag": False,
                 "child_looked_after_placements": [{"child_looked_after_placement_id": "PL1",
                                                    "start_date": "2023-06-15", "start_reason": "S",
                                                    "placement_type": "U4"}]}]}
    planned, dead = snapshot_events(FeedContext("E06000004", "dfe-csc-api"), child)
    assert dead == []
    events = [p.event for p in planned]
    (start,) = [e for e in events if e["event_type"] == "lac.started"]
    assert start["birth_month"] == "2012-01"
    assert "2012-01-20" not in repr(events)
    # By hand (as_of 31 Mar 2026): aged 14, looked after since 15 Jun 2023 (2.5 years on 15 Dec 2025),
    # same placement since then (2 years on 15 Jun 2025): in O11's numerator and denominator.
    as_of = date(2026, 3, 31)
    cal = WorkingDayCalendar()
    c = contribution(ChildHistory([{**e, "event_id": f"e{i}"} for i, e in enumerate(events)]), as_of, cal)
    assert {m for m, _ in c.stocks} >= {"casewatch_lac_long_term_under16", "casewatch_lac_long_term_same_placement_2y"}


def test_dfe_csc_api_care_workers_feed_o12():
    """DfE (Children looked after, social worker changes): "looked-after children with 3 or more
    social workers during the year" / looked-after children (27% for England, 2024). A looked-after
    child whose episode names workers SW1 (from 2024), SW2 (1 Jun 2025) and SW3 (31 Mar 2026): as of
    31 Mar 2026 the look-back is 1 Apr 2025..31 Mar 2026: SW1 held on its first day + SW2 + SW3 = 3."""
    from services.feeds.dfe_api import snapshot_events
    child = {"la_child_id": "Child13", "social_care_episodes": [{
        "social_care_episode_id": "EP1", "referral_date": "2024-01-02", "referral_source": "6",
        "referral_no_further_action_flag": False,
        "care_worker_details": [{"worker_id": "SW3", "start_date": "2026-03-31"},
                                {"worker_id": "SW1", "start_date": "2024-01-02", "end_date": "2025-06-01"},
                                {"worker_id": "SW2", "start_date": "2025-06-01", "end_date": "2026-03-31"}],
        "child_looked_after_placements": [{"child_looked_after_placement_id": "PL1", "start_date": "2024-02-01",
                                           "start_reason": "S", "placement_type": "U4"}]}]}
    planned, dead = snapshot_events(FeedContext("E06000004", "dfe-csc-api"), child)
    assert dead == []
    events = [p.event for p in planned]
    allocated = sorted((e["allocation_date"], e["worker_ref"]) for e in events if e["event_type"] == "case.allocated")
    assert allocated == [("2024-01-02", "SW1"), ("2025-06-01", "SW2"), ("2026-03-31", "SW3")]
    c = contribution(ChildHistory([{**e, "event_id": f"e{i}"} for i, e in enumerate(events)]),
                     date(2026, 3, 31), WorkingDayCalendar())
    assert any(m == "casewatch_lac_3plus_social_workers_12m" for m, _ in c.stocks)
    # on 2 Jun 2026 the first day is 3 Jun 2025: SW2 held then + SW3 = 2 workers (SW1 has left the look-back)
    later = contribution(ChildHistory([{**e, "event_id": f"e{i}"} for i, e in enumerate(events)]),
                         date(2026, 6, 2), WorkingDayCalendar())
    assert not any(m == "casewatch_lac_3plus_social_workers_12m" for m, _ in later.stocks)
