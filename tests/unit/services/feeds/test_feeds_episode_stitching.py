"""SSDA903 episode stitching (docs/feeds.md): the liia-tools fix-cases sample, child by child, and
the in-return contradictions. Every expected history below was worked out by hand from the rules
in docs/feeds.md and the rows of the sample file."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.feeds.envelope import FeedContext
from services.feeds.episode_stitching import Episode, latest_returns, stitch_child
from services.feeds.ssda903 import Ssda903Import, find_return

EXTERNAL = Path(__file__).resolve().parents[3] / "data" / "external"
FIX_CASES = EXTERNAL / "ssda903-episode-fix-cases" / "SSDA903_episodes_for_testing_fixes_INPUT.csv"
D = date.fromisoformat


@pytest.fixture(scope="module")
def fix_cases():
    events, dead, notes = [], [], []
    run = Ssda903Import(FeedContext("E06000004", "import:ssda903"), events.append, dead.append,
                        note=lambda name, n=1: notes.append(name))
    run.load(find_return(FIX_CASES))
    run.run()
    return run, events, dead, notes


def _shape(eps):
    return [(e.decom.isoformat(), e.rne, e.dec.isoformat() if e.dec else None, e.rec, e.starts_period)
            for e in eps]


# (DECOM, RNE, DEC, REC, starts a period) after stitching; the rule names that fired; rows dropped.
EXPECTED = {
    # No rule: X1 on 2016-07-26 and the next episode starts that day (RNE T), so one period.
    "NORULE_BAD": ([("2015-06-19", "P", "2016-07-26", "X1", True),
                    ("2016-07-26", "T", "2021-12-12", "E17", False)], [], []),
    # No rule: left care 2022-07-10 (E17), a new period (RNE S) on 2022-10-23, open in Newham's latest return.
    "NORULE_NEW": ([("2022-02-01", "T", "2022-07-10", "E17", True),
                    ("2022-10-23", "S", None, None, True)], [], []),
    # Open in Sutton's latest return (2022): stays open although other LAs sent 2023 returns.
    "NORULE_SUT": ([("2017-12-15", "S", None, None, True)], [], []),
    # S5 (liia RULE_1): open in the 2018 return, the next episode (RNE T) starts 2017-08-20 -> X1 then.
    "RULE1_BAD": ([("2016-01-13", "P", "2017-08-20", "X1", True),
                   ("2017-08-20", "T", "2019-06-21", "X1", False),
                   ("2019-06-21", "P", "2019-07-23", "E6", False)], ["open_then_carried_on"], []),
    # S4 (liia RULE_1A): open in the 2017 return (so looked after at 31 Mar 2017), the next
    # episode starts a new period (S) on 2017-04-20: ends at the earlier of 1 Apr 2017 (the day
    # after its return's 31 March) and 19 Apr 2017, reason not recorded (None), date estimated.
    # The 2017-06-13 end's E8 is the return's own REC, kept.
    "RULE1A_BAD": ([("2016-01-22", "S", "2016-10-24", "X1", True),
                    ("2016-10-24", "P", "2017-04-01", None, False),
                    ("2017-04-20", "S", "2017-06-13", "E8", True)], ["open_then_new_period"], []),
    # S3 (liia RULE_2): open in the 2020 return, B&D's latest return is 2022, nothing follows:
    # looked after at 31 Mar 2020, ended the day after (1 Apr 2020, estimated), reason not recorded.
    "RULE2_BAD": ([("2019-05-10", "S", "2020-04-01", None, True)], ["stale_open_left_care"], []),
    # S1 (liia RULE_3): the open 2016-09-27 row (2017 return) repeats the 2016-09-23 episode's
    # RNE, LS, placement, provider, placement postcode and URN: dropped.
    "RULE3_BAD": ([("2016-09-23", "S", "2017-05-30", "E2", True)], ["stale_open_duplicate"], ["2016-09-27"]),
    # S2 (liia RULE_3A): the open 2018-03-22 row (2018 return) follows an episode from the 2019
    # return, which rewrote the history: dropped.
    "RULE3A_BAD": ([("2017-11-25", "S", "2018-01-25", "X1", True),
                    ("2018-01-25", "L", "2018-05-16", "E45", False)], ["stale_open_replaced"], ["2018-03-22"]),
    # S2 drops the open 2018-12-24 row (2019 return; the episode before it is from 2020); then S7
    # (liia RULE_4): the first episode's X1 end (12-24) overlaps the next start (12-20): ends 12-20.
    "RULE4_BAD": ([("2018-11-23", "S", "2018-12-20", "X1", True),
                   ("2018-12-20", "P", "2019-08-19", "X1", False),
                   ("2019-08-19", "P", "2019-10-01", "E4A", False)],
                  ["stale_open_replaced", "x1_gap_or_overlap"], ["2018-12-24"]),
    # S7 (liia RULE_5): X1 on 2020-03-29 but the next episode (RNE P) starts 2020-04-02: closed gap.
    "RULE5_BAD": ([("2019-11-06", "P", "2020-04-02", "X1", True),
                   ("2020-04-02", "P", None, None, False)], ["x1_gap_or_overlap"], []),
}


@pytest.mark.parametrize("child", sorted(EXPECTED))
def test_fix_cases_stitch_as_the_rules_say(fix_cases, child):
    run, _, _, _ = fix_cases
    expected_eps, expected_rules, expected_dropped = EXPECTED[child]
    eps = run.stitched[child]
    assert _shape(eps) == expected_eps
    fired = sorted({r for e in eps + run.dropped[child] for r in e.rules})
    assert fired == sorted(expected_rules)
    assert [e.decom.isoformat() for e in run.dropped[child]] == expected_dropped


def test_fix_cases_events_child_by_child(fix_cases):
    _, events, dead, _ = fix_cases
    by_child: dict[str, list[tuple]] = {}
    for ev in events:
        main = ev.get("decom") or ev.get("date") or ev.get("dec")
        by_child.setdefault(ev["child_ref"], []).append((ev["event_type"], main))
    assert dead == []
    assert by_child["RULE4_BAD"] == [("lac.started", "2018-11-23"), ("placement.changed", "2018-12-20"),
                                     ("placement.changed", "2019-08-19"), ("lac.ended", "2019-10-01")]
    assert by_child["RULE1A_BAD"] == [("lac.started", "2016-01-22"), ("placement.changed", "2016-10-24"),
                                      ("lac.ended", "2017-04-01"), ("lac.started", "2017-04-20"),
                                      ("lac.ended", "2017-06-13")]
    assert by_child["RULE3A_BAD"] == [("lac.started", "2017-11-25"), ("lac.legal_status_changed", "2018-01-25"),
                                      ("lac.ended", "2018-05-16")]
    assert by_child["RULE2_BAD"] == [("lac.started", "2019-05-10"), ("lac.ended", "2020-04-01")]
    ended = [ev for ev in events if ev["child_ref"] == "RULE2_BAD" and ev["event_type"] == "lac.ended"]
    assert "reason_ceased" not in ended[0] and ended[0]["end_date_estimated"] is True
    # No stitching rule invents a reason: every lac.ended reason is a REC some return recorded.
    assert {ev.get("reason_ceased") for ev in events if ev["event_type"] == "lac.ended"} <= {None, "E2", "E4A", "E6",
                                                                                           "E8", "E17", "E45"}
    # First known episodes that are not RNE S began before the data; starts carry the real RNE.
    starts = {ev["child_ref"]: ev for ev in events if ev["event_type"] == "lac.started"}
    assert starts["NORULE_BAD"]["rne"] == "P" and starts["NORULE_BAD"]["began_before_data"] is True
    assert starts["RULE4_BAD"]["rne"] == "S" and "began_before_data" not in starts["RULE4_BAD"]
    # RULE1A_BAD's 2016-10-24 episode is the same period (X1 before it): a placement change, not a start.
    assert sum(1 for t, _ in by_child["RULE1A_BAD"] if t == "lac.started") == 2


def _ep(decom, rne, dec=None, rec=None, year=2018, ls="C2", place="U4", **kw):
    return Episode(child="c", decom=D(decom), rne=rne, ls=ls, place=place, dec=D(dec) if dec else None, rec=rec,
                   year=year, la="x", **kw)


def test_same_episode_in_two_returns_is_one_episode_with_the_later_end():
    rows = [_ep("2017-01-10", "S", year=2017), _ep("2017-01-10", "S", "2017-09-01", "E4A", year=2018)]
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2017-01-10", "S", "2017-09-01", "E4A", True)]
    assert eps[0].rules == ["same_episode_in_later_return"]


def test_an_open_episode_in_the_latest_return_stays_open_and_rec_is_ignored():
    rows = [_ep("2017-05-01", "S", None, "E11")]  # REC filled in on an open row: ignored
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2017-05-01", "S", None, None, True)]


def test_x1_dated_1_april_after_the_year_end_is_open_at_31_march():
    rows = [_ep("2017-05-01", "S", "2018-04-01", "X1", year=2018)]
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2017-05-01", "S", None, None, True)]
    assert eps[0].rules == ["x1_continues_after_return"]


def test_leaving_reason_overlapping_a_new_period_ends_the_day_before():
    rows = [_ep("2017-05-01", "S", "2017-09-10", "E13"), _ep("2017-09-01", "S")]
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2017-05-01", "S", "2017-08-31", "E13", True), ("2017-09-01", "S", None, None, True)]


def test_x1_followed_by_a_new_period_ends_the_first_period_with_reason_not_recorded():
    rows = [_ep("2017-05-01", "S", "2017-09-01", "X1"), _ep("2017-09-01", "S")]
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2017-05-01", "S", "2017-08-31", None, True), ("2017-09-01", "S", None, None, True)]
    assert eps[0].end_estimated is True


def test_left_care_then_a_gap_starts_a_new_period_even_without_rne_s():
    rows = [_ep("2017-05-01", "S", "2017-06-01", "E4A"), _ep("2017-08-01", "P")]
    eps = stitch_child(rows, latest_returns(rows))
    assert [e.starts_period for e in eps] == [True, True]
    assert eps[1].rules == ["new_period_without_s"]


def test_open_at_its_31_march_and_in_no_later_return_ends_the_day_after_with_no_reason():
    """S3: the 2019 return says the child is looked after at 31 Mar 2019; the 2020 return (same LA)
    does not list the child: the period ended after 31 Mar 2019 on a date nobody recorded."""
    rows = [_ep("2018-06-01", "S", year=2019), _ep("2019-05-01", "S", "2019-06-01", "E4A", year=2020)]
    rows[1].child = "other"  # another child of the 2020 return makes 2020 the LA's latest return
    eps = stitch_child(rows[:1], latest_returns(rows))
    assert _shape(eps) == [("2018-06-01", "S", "2019-04-01", None, True)]
    assert eps[0].end_estimated is True and eps[0].rules == ["stale_open_left_care"]


def test_a_dropped_duplicate_open_row_carries_its_open_end_to_the_episode_it_duplicates():
    """S1: the 2019 return holds an episode ending X1 on 2018-09-01 and an open row starting that
    day with the same content. The duplicate is dropped; the kept episode is open at 31 Mar 2019
    (not ended on 2018-09-01 by S12), and, with no later return listing the child, S3 ends it on
    1 Apr 2019 with no reason."""
    rows = [_ep("2017-05-01", "S", "2018-06-01", "X1", year=2019),
            _ep("2018-06-01", "L", "2018-09-01", "X1", year=2019, ls="C1"),
            _ep("2018-09-01", "L", year=2019, ls="C1"),
            _ep("2019-05-01", "S", year=2020)]
    rows[3].child = "other"
    dropped: list[Episode] = []
    eps = stitch_child(rows[:3], latest_returns(rows), dropped)
    assert _shape(eps) == [("2017-05-01", "S", "2018-06-01", "X1", True),
                           ("2018-06-01", "L", "2019-04-01", None, False)]
    assert eps[1].rules == ["open_end_from_duplicate", "stale_open_left_care"]
    assert [e.decom for e in dropped] == [D("2018-09-01")] and dropped[0].rules == ["stale_open_duplicate"]


def test_an_open_row_in_the_latest_return_of_its_la_stays_open():
    rows = [_ep("2018-06-01", "P", year=2022)]
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2018-06-01", "P", None, None, True)]


def test_leaving_reason_overlapping_a_continuation_becomes_x1_on_the_next_start():
    """S9: an E4A end on or after the next start while the next episode is not RNE S: care carried on."""
    rows = [_ep("2017-05-01", "S", "2017-09-10", "E4A"), _ep("2017-09-01", "P")]
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2017-05-01", "S", "2017-09-01", "X1", True), ("2017-09-01", "P", None, None, False)]
    assert eps[0].rules == ["overlaps_continuation"]


def test_x1_with_nothing_after_it_inside_its_year_ends_on_its_dec_with_no_reason():
    """S12: the recorded DEC is kept (not estimated); the reason is not recorded (never E8)."""
    rows = [_ep("2017-05-01", "S", "2017-09-01", "X1", year=2018)]
    eps = stitch_child(rows, latest_returns(rows))
    assert _shape(eps) == [("2017-05-01", "S", "2017-09-01", None, True)]
    assert eps[0].end_estimated is False and eps[0].rules == ["x1_nothing_follows"]


def test_a_new_period_without_s_after_a_leaving_is_a_start_with_its_own_rne():
    """S10 at the event level: lac.started carries rne P and no began_before_data (a start);
    the child's first episode, RNE L, began before the data."""
    events = []
    run = Ssda903Import(FeedContext("E06000004", "import:ssda903"), events.append, lambda d: None)
    run.episodes["c"] = [_ep("2016-05-01", "L", "2017-06-01", "E4A"), _ep("2017-08-01", "P")]
    run.run()
    starts = [(e["decom"], e["rne"], e.get("began_before_data")) for e in events if e["event_type"] == "lac.started"]
    assert starts == [("2016-05-01", "L", True), ("2017-08-01", "P", None)]
