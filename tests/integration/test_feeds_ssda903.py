"""The 2017-18 SSDA903 sample imported: figures at 31 March 2018 from the events, through the domain
API, equal a separate pandas calculation straight from the CSVs.

The pandas side uses the DfE definitions on the raw rows (LAC = an episode spanning 31 March,
short breaks V3/V4 left out; starts = RNE S episodes in the year; ceased = episodes ending in the
year with a reason other than X1; placements = the one held on 1 April + episodes with RNE
S/P/T/B/U beginning in the year; LAC reviews by the CPPCR timescales). The synthetic sample holds contradictory histories (overlapping episodes, an
RNE S straight after X1 ...) which the importer resolves by the rules of docs/feeds.md; those
children are found here by their own simple test on the raw rows and left out of both sides, and
the comparison covers every other child.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import holidays
import numpy as np
import pandas as pd
import pytest

from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory
from casewatch.domain.indicators import contribution
from services.feeds.envelope import FeedContext
from services.feeds.ssda903 import Ssda903Import, find_return
from tests.statutory import dfe_counting

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "external" / "ssda903-fake-2017-18"
AS_OF = date(2018, 3, 31)
YEAR_START = pd.Timestamp("2017-04-01")
YEAR_END = pd.Timestamp("2018-03-31")
SHORT_BREAKS = {"V3", "V4"}


def _import():
    events, dead = [], []
    run = Ssda903Import(FeedContext("E06000004", "import:ssda903"), events.append, dead.append)
    run.load(find_return(SAMPLE))
    run.run()
    return events, dead


@pytest.fixture(scope="module")
def imported():
    return _import()


# -- the independent calculation -----------------------------------------------------------------
@pytest.fixture(scope="module")
def episodes():
    e = pd.read_csv(SAMPLE / "episodes.csv", dtype=str)
    e["DECOM"] = pd.to_datetime(e["DECOM"], format="%d/%m/%Y")
    e["DEC"] = pd.to_datetime(e["DEC"], format="%d/%m/%Y")
    return e.sort_values(["CHILD", "DECOM"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def clean_children(episodes):
    """Children whose raw rows form a consistent history: each episode either hands over on its
    end day with X1 to a non-S episode, or ends with a leaving reason before an RNE S episode;
    no open episode is followed by another; the last episode is open, ends with a leaving reason,
    or ends X1 after the year end; and a first episode that is not RNE S began before the year."""
    e = episodes
    g = e.groupby("CHILD")
    nxt_decom, nxt_rne = g["DECOM"].shift(-1), g["RNE"].shift(-1)
    has_next = nxt_decom.notna()
    hand_over = (e.REC == "X1") & (e.DEC == nxt_decom) & (nxt_rne != "S")
    leave = (e.REC != "X1") & (e.DEC < nxt_decom) & (nxt_rne == "S")
    pair_ok = ~has_next | (e.DEC.notna() & (hand_over | leave))
    last_ok = has_next | e.DEC.isna() | (e.REC != "X1") | (e.DEC > YEAR_END)
    first = g.cumcount() == 0
    first_ok = ~first | (e.RNE == "S") | (e.DECOM < YEAR_START)
    bad = e.loc[~(pair_ok & last_ok & first_ok), "CHILD"].unique()
    return sorted(set(e.CHILD) - set(bad))


def _pandas_figures(e: pd.DataFrame, reviews: pd.DataFrame) -> dict:
    not_sb = ~e.LS.isin(SHORT_BREAKS)
    spans = (e.DECOM <= YEAR_END) & (e.DEC.isna() | (e.DEC > YEAR_END)) & not_sb
    lac = set(e.loc[spans, "CHILD"])
    started = int(((e.RNE == "S") & e.DECOM.between(YEAR_START, YEAR_END) & not_sb).sum())
    ceased = int((e.DEC.between(YEAR_START, YEAR_END) & (e.REC != "X1") & not_sb).sum())
    # O10: placements during the 12 months = the one held on 1 April 2017 + those beginning inside
    # (the DfE counting, tests/statutory/dfe_counting.py).
    three_plus = dfe_counting.three_plus_placements({2018: e[not_sb].reset_index(drop=True)}, 2018, 12)

    # LAC reviews held in the year, judged by CPPCR reg 33: first within 20 working days of the
    # period's start, the second within 3 months of the first, later ones within 6 months.
    hol = sorted(d for d in holidays.UK(subdiv="ENG", years=range(2010, 2020)) if d.weekday() < 5)
    held = in_time = 0
    for child, eps in e.groupby("CHILD"):
        rv = reviews[(reviews.CHILD == child) & (reviews.REVIEW <= YEAR_END)].REVIEW.drop_duplicates().sort_values()
        periods = []  # [start, end or None, [(decom, ls)]]
        for row in eps.itertuples():
            if not periods or periods[-1][1] is not None:
                periods.append([row.DECOM, None, []])
            periods[-1][2].append((row.DECOM, row.LS))
            if pd.notna(row.DEC) and row.REC != "X1":
                periods[-1][1] = row.DEC
        for start, end, members in periods:
            mine = [r for r in rv if start <= r and (end is None or r <= end)]
            mine = [r for r in mine if [ls for d, ls in members if d <= r][-1] not in SHORT_BREAKS]
            clock = members[0][1] not in SHORT_BREAKS
            # A period whose first known episode is not RNE S began before the data: its first
            # review here is not the period's first, and which one it is is unknown; it cannot be
            # shown to be in time (counted late), and each later one is due 6 months after the one
            # before (the "then no more than 6 months" of reg 33 for third and later reviews).
            before_data = start == eps.DECOM.min() and eps.sort_values("DECOM").RNE.iloc[0] != "S"
            previous = None
            for i, r in enumerate(mine):
                if clock and before_data:
                    ok = i > 0 and r <= previous + pd.DateOffset(months=6)
                elif clock:
                    if i == 0:
                        ok = np.busday_count(start.date(), r.date(), holidays=hol) <= 20
                    else:
                        ok = r <= previous + pd.DateOffset(months=3 if i == 1 else 6)
                else:
                    ok = False  # no clock was started (a period of short breaks): cannot be in time
                if YEAR_START <= r <= YEAR_END:
                    held += 1
                    in_time += int(ok)
                previous = r
    return {"lac": len(lac), "started": started, "ceased": ceased, "three_plus": three_plus,
            "reviews": held, "reviews_in_time": in_time}


def _domain_figures(events: list[dict], children: set[str]) -> dict:
    calendar = WorkingDayCalendar()
    aggregate = Aggregate(calendar, AS_OF)
    by_child = defaultdict(list)
    for ev in events:
        by_child[ev["child_ref"]].append(ev)
    for child in children:
        aggregate.apply(None, contribution(ChildHistory(by_child.get(child, [])), AS_OF, calendar))
    totals: dict[tuple[str, str | None], float] = defaultdict(float)
    for metric, labels, value in aggregate.samples():
        totals[(metric, labels.get("window"))] += value
    return {
        "lac": totals[("casewatch_lac_open", None)],
        "started": totals[("casewatch_lac_started", "12m")],
        "ceased": totals[("casewatch_lac_ceased", "12m")],
        "three_plus": totals[("casewatch_lac_3plus_placements_12m", None)],
        "reviews": totals[("casewatch_lac_reviews_completed", "12m")],
        "reviews_in_time": totals[("casewatch_lac_reviews_completed_in_time", "12m")],
    }


def test_figures_at_31_march_2018_equal_the_independent_calculation(imported, episodes, clean_children):
    events, _ = imported
    assert len(clean_children) > 1800  # the comparison covers most of the 2,123 children
    reviews = pd.read_csv(SAMPLE / "reviews.csv", dtype=str)
    reviews["REVIEW"] = pd.to_datetime(reviews["REVIEW"], format="%d/%m/%Y")
    raw = episodes[episodes.CHILD.isin(clean_children)]
    expected = _pandas_figures(raw, reviews[reviews.CHILD.isin(clean_children)])
    got = _domain_figures(events, set(clean_children))
    assert got == {k: float(v) for k, v in expected.items()}
    assert expected["lac"] > 1000 and expected["started"] > 40 and expected["ceased"] > 40 \
        and expected["three_plus"] > 10 and expected["reviews"] > 1000 and 0 < expected["reviews_in_time"] < expected["reviews"]


def test_every_episode_row_is_accounted_for(imported):
    """5,050 rows, no two with the same child and start: each becomes one period start, one
    placement change or one legal-status change (a placement change may carry a legal-status
    change on the same day), unless it is dead-lettered."""
    events, dead = imported
    moves = {(ev["child_ref"], ev["date"]) for ev in events if ev["event_type"] == "placement.changed"}
    rows = sum(1 for ev in events if ev["event_type"] in ("lac.started", "placement.changed"))
    rows += sum(1 for ev in events if ev["event_type"] == "lac.legal_status_changed"
                and (ev["child_ref"], ev["date"]) not in moves)
    assert rows + sum(1 for d in dead if d.loc.startswith("episodes.")) == 5050


def test_importing_twice_gives_the_same_event_ids(imported):
    first, _ = imported
    second, _ = _import()
    assert [e["event_id"] for e in first] == [e["event_id"] for e in second]
    assert len({e["event_id"] for e in first}) == len(first)


def test_no_identifying_column_reaches_an_event(imported):
    events, dead = imported
    header = pd.read_csv(SAMPLE / "header.csv", dtype=str)
    episodes = pd.read_csv(SAMPLE / "episodes.csv", dtype=str)
    identifying = set(header.UPN.dropna()) | set(episodes.HOME_POST.dropna()) | set(episodes.PL_POST.dropna()) \
        | set(episodes.URN.dropna())
    for ev in events:
        assert not identifying & {str(v) for v in ev.values()}
    for d in dead:
        assert not identifying & {str(v) for v in d.payload.values()}


def test_reviews_outside_the_year_or_any_period_are_dead_letters_with_reasons(imported):
    _, dead = imported
    reasons = {d.reason for d in dead if d.loc.startswith("reviews.")}
    assert reasons == {"review_after_collection_year", "review_outside_period_of_care", "no_episode_for_child"}
    reviews = pd.read_csv(SAMPLE / "reviews.csv", dtype=str)
    after = (pd.to_datetime(reviews.REVIEW, format="%d/%m/%Y") > YEAR_END).sum()
    assert sum(1 for d in dead if d.reason == "review_after_collection_year") == after
