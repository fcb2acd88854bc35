"""SSDA903 episode stitching: several annual returns -> one consistent episode history per child.

The rules are written down, with the reasons and worked examples, in docs/feeds.md ("SSDA903
episode stitching"); the rule names below are the ones used there and in the import summary.
They were drafted after reading the rule descriptions of Social Finance's liia-tools episode fixes
(their RULE_1 ... RULE_5), then written in our own words and extended to the contradictions seen
inside a single return.

Pure Python, no pandas: the input is a child's rows from every return, the output the stitched
episodes in start order, each with the names of the rules that changed it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Iterable

# A leaving-care end whose reason the returns do not give is sent with no reason at all
# (``reason_ceased`` absent = "not recorded", its own outcome group); stitching never invents E8.
REASON_NOT_RECORDED = None
CONTINUOUS = "X1"
STARTED = "S"

# Rule names (docs/feeds.md).
SAME_EPISODE_IN_LATER_RETURN = "same_episode_in_later_return"   # step 0
DUPLICATE_ROW_IN_RETURN = "duplicate_row_in_return"             # step 0
STALE_DUPLICATE = "stale_open_duplicate"                        # S1 (liia RULE_3)
STALE_REPLACED = "stale_open_replaced"                          # S2 (liia RULE_3A)
STALE_LEFT_CARE = "stale_open_left_care"                        # S3 (liia RULE_2)
OPEN_THEN_NEW_PERIOD = "open_then_new_period"                   # S4 (liia RULE_1A)
OPEN_THEN_CARRIED_ON = "open_then_carried_on"                   # S5 (liia RULE_1)
X1_THEN_NEW_PERIOD = "x1_then_new_period"                       # S6
X1_GAP_OR_OVERLAP = "x1_gap_or_overlap"                         # S7 (liia RULE_4, RULE_5)
OVERLAPS_NEW_PERIOD = "overlaps_new_period"                     # S8
OVERLAPS_CONTINUATION = "overlaps_continuation"                 # S9
NEW_PERIOD_WITHOUT_S = "new_period_without_s"                   # S10
X1_CONTINUES_AFTER_RETURN = "x1_continues_after_return"         # S11
X1_NOTHING_FOLLOWS = "x1_nothing_follows"                       # S12
OPEN_END_FROM_DUPLICATE = "open_end_from_duplicate"             # S1 (the kept episode's side)


@dataclass
class Episode:
    """One SSDA903 episode row, as far as casewatch needs it. ``pl_post`` and ``urn`` are held in
    memory only to recognise a duplicate row; they are never emitted."""
    child: str
    decom: date
    rne: str
    ls: str
    place: str
    dec: date | None = None
    rec: str | None = None
    cin: str | None = None
    provider: str | None = None
    reason_place_change: str | None = None
    pl_post: str | None = None
    urn: str | None = None
    year: int = 0                # the return's year end (31 March of this year)
    la: str = ""                 # the authority that sent the return (only to find its latest return)
    end_estimated: bool = False  # set by stitching: ``dec`` is not a date any return recorded
    starts_period: bool = False  # set by stitching
    rules: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.dec is None

    def same_content(self, other: "Episode") -> bool:
        return (self.rne, self.ls, self.place, self.provider, self.pl_post, self.urn) == \
               (other.rne, other.ls, other.place, other.provider, other.pl_post, other.urn)


def year_end(year: int) -> date:
    return date(year, 3, 31)


def stitch_child(rows: Iterable[Episode], latest_return: dict[str, int],
                 dropped: list[Episode] | None = None) -> list[Episode]:
    """The stitched episodes of one child. ``latest_return``: LA -> the latest return year loaded
    for that LA (an open episode in an older return is "stale"). Rows dropped by a rule are
    appended to ``dropped`` (with the rule's name) when it is given."""
    # Step 0: one episode per start date; the latest return's version wins (it knows the most).
    by_start: dict[date, Episode] = {}
    for row in rows:
        row = replace(row, rules=list(row.rules))
        if row.dec is None:
            row.rec = None  # "open" is decided by a blank DEC, whatever REC says
        held = by_start.get(row.decom)
        if held is None:
            by_start[row.decom] = row
        elif row.year > held.year:
            row.rules.append(SAME_EPISODE_IN_LATER_RETURN)
            by_start[row.decom] = row
        elif row.year == held.year:
            row.rules.append(DUPLICATE_ROW_IN_RETURN)
            by_start[row.decom] = row  # the later row of the file wins
        else:
            held.rules.append(SAME_EPISODE_IN_LATER_RETURN)
    eps = [by_start[d] for d in sorted(by_start)]

    # Step 1: open episodes left in an older return. S1 compares with the episode kept just
    # before (then the one just after); S2 with the episode just before in the merged order.
    def stale(e: Episode) -> bool:
        return e.is_open and e.year < latest_return.get(e.la, e.year)

    kept: list[Episode] = []
    for i, e in enumerate(eps):
        if not stale(e):
            kept.append(e)
            continue
        prev = kept[-1] if kept else None
        nxt = eps[i + 1] if i + 1 < len(eps) else None
        if prev is not None and e.same_content(prev):
            e.rules.append(STALE_DUPLICATE)
            if prev.rec == CONTINUOUS:
                # The kept episode handed over (X1) to this very row, which was still open at its
                # return's 31 March: the kept episode carries that open end.
                prev.dec, prev.rec = None, None
                prev.year = max(prev.year, e.year)
                prev.rules.append(OPEN_END_FROM_DUPLICATE)
        elif nxt is not None and e.same_content(nxt):
            e.rules.append(STALE_DUPLICATE)
        elif i > 0 and eps[i - 1].year > e.year:
            e.rules.append(STALE_REPLACED)
        else:
            kept.append(e)
            continue
        if dropped is not None:
            dropped.append(e)
    eps = kept

    # Step 2: make each pair of neighbours consistent; the later episode's RNE decides whether
    # care carried on (anything but S) or a new period began (S).
    for i, e in enumerate(eps):
        nxt = eps[i + 1] if i + 1 < len(eps) else None
        if nxt is None:
            if e.dec is not None and e.rec == CONTINUOUS:
                if e.dec > year_end(e.year):
                    e.dec, e.rec = None, None          # continues in the next return
                    e.rules.append(X1_CONTINUES_AFTER_RETURN)
                else:
                    e.rec = REASON_NOT_RECORDED        # the recorded DEC is kept
                    e.rules.append(X1_NOTHING_FOLLOWS)
            if stale(e):
                # S3: looked after at its return's 31 March (the return says so); no later return
                # lists the child, so the period ended after that day on a date nobody recorded.
                e.dec, e.rec, e.end_estimated = year_end(e.year) + timedelta(days=1), REASON_NOT_RECORDED, True
                e.rules.append(STALE_LEFT_CARE)
            continue
        new_period = nxt.rne == STARTED
        day_before = nxt.decom - timedelta(days=1)
        if e.dec is None:
            if new_period:
                end = day_before
                if stale(e):
                    end = min(end, year_end(e.year) + timedelta(days=1))
                e.dec, e.rec, e.end_estimated = end, REASON_NOT_RECORDED, True
                e.rules.append(OPEN_THEN_NEW_PERIOD)
            else:
                e.dec, e.rec = nxt.decom, CONTINUOUS
                e.rules.append(OPEN_THEN_CARRIED_ON)
        elif e.rec == CONTINUOUS:
            if new_period:
                if day_before < e.dec:
                    e.dec, e.end_estimated = day_before, True
                e.rec = REASON_NOT_RECORDED
                e.rules.append(X1_THEN_NEW_PERIOD)
            elif e.dec != nxt.decom:
                e.dec = nxt.decom
                e.rules.append(X1_GAP_OR_OVERLAP)
        else:  # the return says the child left care
            if new_period:
                if e.dec >= nxt.decom:
                    e.dec, e.end_estimated = day_before, True
                    e.rules.append(OVERLAPS_NEW_PERIOD)
            elif e.dec >= nxt.decom:
                e.dec, e.rec = nxt.decom, CONTINUOUS
                e.rules.append(OVERLAPS_CONTINUATION)
            else:
                nxt.rules.append(NEW_PERIOD_WITHOUT_S)

    # Periods: the first episode, and every episode after a leaving-care end (any end but X1).
    previous: Episode | None = None
    for e in eps:
        e.starts_period = previous is None or previous.rec != CONTINUOUS
        previous = e
    return eps


def latest_returns(rows: Iterable[Episode]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for row in rows:
        if row.year > latest.get(row.la, 0):
            latest[row.la] = row.year
    return latest
