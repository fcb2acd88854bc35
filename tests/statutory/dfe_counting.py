"""The DfE's counting of children looked after, on raw SSDA903 rows, with plain pandas.

Written from the DfE definitions quoted beside each calculation, NOT from casewatch: this module
imports nothing of casewatch or services. Each function takes the returns as loaded by
``read_returns`` (one DataFrame per collection year, as the authority sent it).
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

SHORT_BREAKS = {"V3", "V4"}
PLACEMENT_RNE = {"S", "P", "T", "B", "U"}

# T11 outcome groups, written out by hand from the DfE code list: adopted = E11, E12; special
# guardianship = E45-E48; child arrangements / residence order = E41; returned home = E4A, E4B;
# any other leaving reason (E8 "other" included) = other. A leaving whose reason no return gives
# is "not recorded".
OUTCOME = {"E11": "adopted", "E12": "adopted", "E45": "sgo", "E46": "sgo", "E47": "sgo", "E48": "sgo",
           "E41": "cao_ro", "E4A": "returned_home", "E4B": "returned_home"}


def read_returns(files: dict[int, Path]) -> dict[int, pd.DataFrame]:
    """{year end: episodes CSV} -> {year end: rows}, dates parsed (dd/mm/yyyy), V3/V4 rows left
    out: "Children looked after ... excludes children looked after under a series of short-term
    placements (legal status V3 or V4)" (DfE, Children looked after in England, methodology)."""
    out = {}
    for year, path in files.items():
        e = pd.read_csv(path, dtype=str, keep_default_na=False)
        e["DECOM"] = pd.to_datetime(e["DECOM"], format="%d/%m/%Y")
        e["DEC"] = pd.to_datetime(e["DEC"].replace("", None), format="%d/%m/%Y")
        out[year] = e[~e.LS.isin(SHORT_BREAKS)].reset_index(drop=True)
    return out


def year_bounds(year: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(date(year - 1, 4, 1)), pd.Timestamp(date(year, 3, 31))


def looked_after_at_31_march(returns: dict[int, pd.DataFrame], year: int) -> set[str]:
    # O4 "Children looked after at 31 March": the year's own return, an episode that began on or
    # before 31 March and had not ceased by then (DEC blank; a DEC after 31 March means the same).
    e = returns[year]
    _, end = year_bounds(year)
    spans = (e.DECOM <= end) & (e.DEC.isna() | (e.DEC > end))
    return set(e.loc[spans, "CHILD"])


def started(returns: dict[int, pd.DataFrame], year: int) -> int:
    # O5 starts: "periods of care beginning in the year (an episode with RNE S)". A period whose
    # beginning lies before the data (first known episode P/B/T/U/L) is not a start.
    e = returns[year]
    first, end = year_bounds(year)
    return int(((e.RNE == "S") & e.DECOM.between(first, end)).sum())


def ceased_by_outcome(returns: dict[int, pd.DataFrame], year: int) -> dict[str, int]:
    # O5 ceased: "periods ending in the year (REC not X1)", by the T11 outcome group of the REC.
    e = returns[year]
    first, end = year_bounds(year)
    ended = e[e.DEC.between(first, end) & (e.REC != "X1")]
    out: dict[str, int] = {}
    for rec in ended.REC:
        group = OUTCOME.get(rec, "other")
        out[group] = out.get(group, 0) + 1
    # The return covers "all children looked after at any time during the year". A child the
    # previous return shows looked after at its 31 March, but whom this year's return does not
    # list at all, stopped being looked after during this year: when and why are not recorded.
    if year - 1 in returns:
        missing = looked_after_at_31_march(returns, year - 1) - set(returns[year].CHILD)
        if missing:
            out["not_recorded"] = out.get("not_recorded", 0) + len(missing)
    return out


def three_plus_placements(returns: dict[int, pd.DataFrame], year: int, months: int) -> int:
    # O10 / O10b: children looked after at 31 March "with 3 or more placements during the previous
    # 12 (24) months". "Placements during the look-back = the placement the child was already in on
    # its first day (if looked after then) + every placement that begins inside it (the first
    # placement of a period, RNE S, and each change of placement, RNE P/B/T/U). An episode that
    # changes only the legal status (RNE L) is not a new placement." A move on the first day
    # counts once (as the placement beginning that day).
    _, end = year_bounds(year)
    first_day = end - pd.DateOffset(months=months) + pd.Timedelta(days=1)
    # The episodes of the look-back: every return of those years, one row per child and start
    # date, the later return's row winning (it knows the end of an episode open a year earlier).
    years = [y for y in range(year - months // 12, year + 1) if y in returns]
    rows = pd.concat([returns[y].assign(_year=y) for y in years])
    rows = rows.sort_values("_year").drop_duplicates(["CHILD", "DECOM"], keep="last")
    count = 0
    for child in looked_after_at_31_march(returns, year):
        mine = rows[rows.CHILD == child]
        begins_inside = mine[mine.RNE.isin(PLACEMENT_RNE) & mine.DECOM.between(first_day, end)]
        held_on_first_day = ((mine.DECOM < first_day)
                             & (mine.DEC.isna() | (mine.DEC > first_day)
                                | ((mine.DEC == first_day) & (mine.REC == "X1")))).any()
        move_on_first_day = (begins_inside.DECOM == first_day).any()
        placements = len(begins_inside) + int(held_on_first_day and not move_on_first_day)
        count += int(placements >= 3)
    return count


def figures(returns: dict[int, pd.DataFrame], year: int) -> dict:
    by_outcome = ceased_by_outcome(returns, year)
    return {"lac": len(looked_after_at_31_march(returns, year)), "started": started(returns, year),
            "ceased": sum(by_outcome.values()), "ceased_by_outcome": by_outcome,
            "three_plus_12m": three_plus_placements(returns, year, 12),
            "three_plus_24m": three_plus_placements(returns, year, 24)}
