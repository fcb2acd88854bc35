"""O10 / O10b ("LAC with 3+ placements") against a plain calculation written from the definition,
on generated looked-after histories, and the day its figure changes with no new event.

Definition (docs/definitions.md O10): "looked-after children at the snapshot who had 3 or more
placements during the previous 12 months / looked-after children. The placements counted are the
one the child was already in on the first day of the 12 months (if looked after then) plus every
placement that began inside them: the first placement of a period and each change of placement
(reason P, B, T or U). A change of legal status only (reason L) is not a placement." O10b: the same
over 24 months. O4: short breaks (V3/V4) are never looked after.
"""
from __future__ import annotations

from datetime import date, timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings, strategies as st

from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory
from casewatch.domain.indicators import contribution
from tests.support.generated_histories import lac_event

CAL = WorkingDayCalendar()
SHORT_BREAKS = {"V3", "V4"}
MOVES = {"P", "B", "T", "U"}
ORDER = {"lac.started": 0, "lac.legal_status_changed": 1, "placement.changed": 2, "lac.ended": 3}
MAIN = {"lac.started": "decom", "lac.legal_status_changed": "date", "placement.changed": "date", "lac.ended": "dec"}


def plain_placements(events: list[dict], as_of: date, months: int) -> tuple[bool, int]:
    """(looked after at as_of, placements during the look-back), by the definition's words.

    The look-back is (as_of - months, as_of]; its first day F = as_of - months + 1 day (with
    dateutil's month arithmetic: 29 Feb less 12 months is 28 Feb). "The one the child was already
    in on the first day (if looked after then)": the child is looked after at the end of F. "Every
    placement that began inside": dated after F up to as_of, a period's first placement (a start;
    an RNE L episode of a period that began before the data is not a new placement) or a change
    with RNE P/B/T/U, while looked after (not short breaks)."""
    first = as_of - relativedelta(months=months) + timedelta(days=1)
    in_period, status = False, None
    looked_after_on_first = False
    began_inside = 0
    for ev in sorted(events, key=lambda e: (e[MAIN[e["event_type"]]], ORDER[e["event_type"]])):
        day = date.fromisoformat(ev[MAIN[ev["event_type"]]])
        if day > as_of:
            break
        t = ev["event_type"]
        new_placement = False
        if t == "lac.started":
            if in_period:
                status = ev.get("legal_status") or status
            else:
                in_period, status = True, ev.get("legal_status")
                new_placement = not (ev.get("began_before_data") and ev.get("rne") == "L")
        elif t == "lac.legal_status_changed" and in_period:
            status = ev["legal_status"]
            new_placement = ev["rne"] in MOVES
        elif t == "placement.changed" and in_period:
            new_placement = ev["rne"] in MOVES
        elif t == "lac.ended" and ev.get("reason_ceased") != "X1":
            in_period = False
        now = in_period and status not in SHORT_BREAKS
        if day > first and now and new_placement:
            began_inside += 1
        if day <= first:
            looked_after_on_first = now
    looked_after = in_period and status not in SHORT_BREAKS
    return looked_after, int(looked_after_on_first) + began_inside


@st.composite
def lac_history(draw):
    """One child's looked-after events, at most one a day (so the same-day order is not in
    question), starting with a period start, then mostly moves a few weeks to months apart, and a
    snapshot day from the first event to a year after the last."""
    gaps = draw(st.lists(st.integers(1, 150), min_size=2, max_size=12))
    day = date(2023, 6, 1) + timedelta(days=draw(st.integers(0, 60)))
    start = draw(lac_event("c", day).filter(lambda e: e["event_type"] == "lac.started"))
    events = [start]
    for gap in gaps:
        day += timedelta(days=gap)
        events.append(draw(lac_event("c", day)))
    for i, ev in enumerate(events):
        ev["event_id"] = f"c-{i}"
    as_of = date.fromisoformat(start["decom"]) + timedelta(days=draw(st.integers(0, (day - date.fromisoformat(start["decom"])).days + 365)))
    return events, as_of


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lac_history())
def test_o10_and_o10b_equal_the_plain_count_from_the_definition(case):
    events, as_of = case
    c = contribution(ChildHistory(events), as_of, CAL)
    stocks = {metric for (metric, _labels) in c.stocks}
    for months, metric in ((12, "casewatch_lac_3plus_placements_12m"), (24, "casewatch_lac_3plus_placements_24m")):
        looked_after, placements = plain_placements(events, as_of, months)
        assert looked_after == ("casewatch_lac_open" in stocks)
        assert (metric in stocks) == (looked_after and placements >= 3), (months, placements)


ENV = {"la_code": "E06000004", "team": "lac_1", "child_ref": "c", "schema_version": 1}


def test_the_day_the_placement_held_on_the_first_day_leaves_the_look_back():
    """Looked after since before the data (first known episode 4 Mar 2024, RNE L), moves by B on
    5 May 2025 and by U on 1 Sep 2025 (legal status and placement changes; no clock opens).
    At 31 Mar 2026 (look-back from 1 Apr 2025): the placement held on 1 Apr 2025 + 2 = 3 -> counted.
    That placement ended on 5 May 2025; it is no longer in the look-back once the first day is
    5 May 2025, i.e. on 4 May 2026 (look-back 5 May 2025..4 May 2026): then the placement held on
    the first day is the one begun that day, + 1 Sep 2025 = 2 -> not counted. On 3 May 2026 (first
    day 4 May 2025) it is still 3."""
    events = [
        {**ENV, "event_id": "s", "event_type": "lac.started", "decom": "2024-03-04", "rne": "L",
         "began_before_data": True, "legal_status": "C1", "placement": "U4"},
        {**ENV, "event_id": "b", "event_type": "lac.legal_status_changed", "date": "2025-05-05", "rne": "B",
         "legal_status": "C2"},
        {**ENV, "event_id": "u", "event_type": "lac.legal_status_changed", "date": "2025-09-01", "rne": "U",
         "legal_status": "C2"},
    ]
    history = ChildHistory(events)
    counted = lambda day: ("casewatch_lac_3plus_placements_12m" in {m for m, _ in contribution(history, day, CAL).stocks})  # noqa: E731
    assert counted(date(2026, 3, 31)) and counted(date(2026, 5, 3)) and not counted(date(2026, 5, 4))
    # the looked-after case has had no recorded activity since 1 Sep 2025: a drifting case (its longest
    # drift grows each working day) makes the next day the next change, before the 4 May 2026 one
    assert contribution(history, date(2026, 3, 31), CAL).stable_until == date(2026, 4, 1)
    from casewatch.domain.indicators import _placement_count_changes  # the O10 change on its own
    assert _placement_count_changes([[date(2024, 3, 4), date(2025, 5, 5), False], [date(2025, 5, 5), date(2025, 9, 1), True],
                                     [date(2025, 9, 1), None, True]], date(2026, 3, 31), 12) == date(2026, 5, 4)
    # not looked after on the 24-month first day (1 Apr 2024)? It was (since before the data):
    # held + 2 = 3 -> counted in the 24 months too, until 4 May 2027.
    assert "casewatch_lac_3plus_placements_24m" in {m for m, _ in contribution(history, date(2026, 3, 31), CAL).stocks}
