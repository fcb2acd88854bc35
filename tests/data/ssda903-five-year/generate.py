"""Writes the synthetic five-year SSDA903 set (2017-18 to 2021-22) of one made-up authority.

Deterministic (fixed seed); run it again to rewrite the CSVs byte for byte:

    .venv/bin/python tests/data/ssda903-five-year/generate.py

Every child is invented. The generator draws one *true* care history per child and writes, for
each collection year, the return an authority would send: every episode open at some time in
the year (DECOM <= 31 March, DEC blank or on/after 1 April of the year before), DEC and REC left
blank when the episode was still open at the year end. On top of the ordinary histories it plants
the situations the statutory checks must survive (README.md beside the files lists them):

* placements held across 1 April (most children in care), moves on 1 April itself;
* legal-status-only episodes (RNE L), which are not placements;
* children whose first known episode has RNE P or L (their period began before the data), some
  of them dated inside the first year;
* children open at their return's 31 March and listed in no later return ("lost");
* a duplicate open row (same content as the episode before it, which ends X1 on its start);
* interleaved chains: a later return that rewrote an older return's history (the older open row
  sits between the later return's episodes), and every file's rows in shuffled order;
* short breaks (V3 series, V4 agreements), which are never looked after.
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
YEARS = (2018, 2019, 2020, 2021, 2022)  # year ends: 2018 = 1 April 2017 - 31 March 2018
COLUMNS = ["CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
           "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"]
PLACES = ["U1", "U3", "U4", "U6", "K2", "R1", "P1", "A3"]
PROVIDERS = ["PR1", "PR2", "PR4", "PR5"]
LEGAL = ["C1", "C2", "V2", "E1"]
LEAVING = ["E11", "E12", "E2", "E3", "E4A", "E4B", "E13", "E41", "E45", "E46", "E47", "E48", "E5", "E6", "E17", "E8"]
MOVES = ["P", "P", "P", "T", "B", "U"]
REASONS = ["CARPL", "CREQB", "CREQO", "CHILD", "PLACE", "OTHER"]


@dataclass
class Ep:
    decom: date
    rne: str
    ls: str
    place: str
    provider: str
    dec: date | None = None
    rec: str | None = None
    reason: str = ""
    pl_post: str = ""
    urn: str = ""
    cin: str = "N1"


@dataclass
class Child:
    ref: str
    eps: list[Ep]
    last_return: int = 2022                      # listed in no return after this year
    extra: dict[int, list[Ep]] = field(default_factory=dict)   # rows only one return holds
    replace: dict[int, list[Ep]] = field(default_factory=dict)  # a return's whole own version


def d(text: str) -> date:
    return date.fromisoformat(text)


def year_start(y: int) -> date:
    return date(y - 1, 4, 1)


def year_end(y: int) -> date:
    return date(y, 3, 31)


def ordinary(rng: random.Random, ref: str, start: date, horizon: date) -> Child:
    """One or two periods of care from ``start``: moves every 1-14 months, some L changes, a
    leaving reason at the end unless the period outlives the horizon."""
    eps: list[Ep] = []
    when = start
    ls = rng.choice(LEGAL)
    eps.append(Ep(when, "S", ls, rng.choice(PLACES), rng.choice(PROVIDERS), cin=rng.choice(["N1", "N2", "N4", "N5"])))
    periods = 1
    while True:
        gap = rng.randint(20, 420)
        when = when + timedelta(days=gap)
        if when > horizon:
            break
        roll = rng.random()
        prev = eps[-1]
        if roll < 0.18:                               # leaves care
            prev.dec, prev.rec = when, rng.choice(LEAVING)
            if periods == 1 and rng.random() < 0.3:   # comes back later: a new period, RNE S
                when = when + timedelta(days=rng.randint(30, 300))
                if when > horizon:
                    break
                periods += 1
                eps.append(Ep(when, "S", rng.choice(LEGAL), rng.choice(PLACES), rng.choice(PROVIDERS)))
                continue
            break
        prev.dec, prev.rec = when, "X1"
        if roll < 0.30:                               # legal status only
            new_ls = rng.choice([x for x in LEGAL if x != prev.ls])
            eps.append(Ep(when, "L", new_ls, prev.place, prev.provider))
        else:
            rne = rng.choice(MOVES)
            new_ls = rng.choice([x for x in LEGAL if x != prev.ls]) if rne in ("B", "U") else prev.ls
            carer_change = rne in ("P", "B")
            place = rng.choice(PLACES) if carer_change or rng.random() < 0.5 else prev.place
            eps.append(Ep(when, rne, new_ls, place, rng.choice(PROVIDERS), reason=rng.choice(REASONS)))
    return Child(ref, eps)


def build() -> list[Child]:
    rng = random.Random(20180331)
    children: list[Child] = []
    horizon = d("2022-03-31")
    n = 0

    def ref() -> str:
        nonlocal n
        n += 1
        return f"C{n:04d}"

    # Ordinary histories: in care since well before the data (first known episode often P/L) or
    # starting inside the five years.
    for _ in range(260):
        start = d("2012-01-01") + timedelta(days=rng.randint(0, 3650))
        children.append(ordinary(rng, ref(), start, horizon))
    # Frequent movers, in care since before 1 April 2017: placement held across 1 April plus moves.
    for _ in range(40):
        c = ordinary(rng, ref(), d("2015-01-01") + timedelta(days=rng.randint(0, 700)), d("2015-01-01"))
        when = c.eps[-1].decom
        c.eps[-1].dec = None
        c.eps[-1].rec = None
        while True:
            when = when + timedelta(days=rng.randint(60, 200))
            if when > horizon:
                break
            prev = c.eps[-1]
            prev.dec, prev.rec = when, "X1"
            rne = "L" if rng.random() < 0.25 else rng.choice(["P", "T"])
            ls = rng.choice([x for x in LEGAL if x != prev.ls]) if rne == "L" else prev.ls
            c.eps.append(Ep(when, rne, ls, prev.place if rne == "L" else rng.choice(PLACES), prev.provider,
                            reason="" if rne == "L" else "CARPL"))
        children.append(c)
    # Moves on 1 April (the first day of a 12-month look-back), after a placement held from before.
    for y in YEARS[1:]:
        for k in range(3):
            start = year_start(y - 1) - timedelta(days=100 + 40 * k)
            eps = [Ep(start, "S", "C2", "U4", "PR1"),
                   Ep(year_start(y), "P", "C2", "U6", "PR4", reason="CARPL")]
            eps[0].dec, eps[0].rec = year_start(y), "X1"
            if k >= 1:
                eps[1].dec, eps[1].rec = year_start(y) + timedelta(days=90), "X1"
                eps.append(Ep(year_start(y) + timedelta(days=90), "T", "C2", "K2", "PR4", reason="CREQB"))
            if k == 2:
                eps[2].dec, eps[2].rec = year_start(y) + timedelta(days=200), "X1"
                eps.append(Ep(year_start(y) + timedelta(days=200), "L", "E1", "K2", "PR4"))
            children.append(Child(ref(), eps))
    # L-only changes inside a year: in care since before, two L episodes, no move.
    for y in YEARS:
        eps = [Ep(d(f"{y - 3}-06-01"), "S", "V2", "U1", "PR1")]
        eps[0].dec, eps[0].rec = year_start(y) + timedelta(days=30), "X1"
        eps.append(Ep(year_start(y) + timedelta(days=30), "L", "C1", "U1", "PR1"))
        eps[1].dec, eps[1].rec = year_start(y) + timedelta(days=120), "X1"
        eps.append(Ep(year_start(y) + timedelta(days=120), "L", "C2", "U1", "PR1"))
        children.append(Child(ref(), eps))
    # Lost: open at their return's 31 March, listed in no later return.
    for y in YEARS[:-1]:
        for k in range(4):
            c = ordinary(rng, ref(), year_start(y) - timedelta(days=300 + 50 * k), year_end(y) - timedelta(days=10))
            last = c.eps[-1]
            if last.dec is not None and last.rec != "X1":  # make sure it is open at the year end
                last.dec, last.rec = None, None
            if last.dec is not None:
                last.dec, last.rec = None, None
            c.last_return = y
            children.append(c)
    # Duplicate open row: an L episode ending X1 on the start of an open row with the same content,
    # both in one return; the child is in no later return.
    for y in YEARS[1:-1]:
        c = Child(ref(), [Ep(d(f"{y - 2}-05-01"), "S", "V2", "U4", "PR1", pl_post="ZZ9 9ZZ", urn="SC000001")])
        c.eps[0].dec, c.eps[0].rec = year_start(y) + timedelta(days=60), "X1"
        c.eps.append(Ep(year_start(y) + timedelta(days=60), "L", "C1", "U4", "PR1", pl_post="ZZ9 9ZZ", urn="SC000001"))
        c.eps[1].dec, c.eps[1].rec = year_start(y) + timedelta(days=150), "X1"
        c.eps.append(Ep(year_start(y) + timedelta(days=150), "L", "C1", "U4", "PR1", pl_post="ZZ9 9ZZ",
                        urn="SC000001"))
        c.last_return = y
        children.append(c)
    # Interleaved chains: return y holds S, L (ends X1), L (open); return y+1 rewrote the history:
    # the first L episode goes on to a special guardianship order in y+1, the open row is gone.
    for y in YEARS[:-1]:
        s = Ep(year_start(y) + timedelta(days=40), "S", "V2", "U3", "PR1")
        l1 = Ep(year_start(y) + timedelta(days=100), "L", "C1", "U3", "PR1")
        s.dec, s.rec = l1.decom, "X1"
        l1.dec, l1.rec = year_start(y + 1) + timedelta(days=45), "E45"
        c = Child(ref(), [s, l1])
        old_l1 = Ep(l1.decom, "L", "C1", "U3", "PR1", dec=year_start(y) + timedelta(days=200), rec="X1")
        open_row = Ep(old_l1.dec, "L", "C2", "U3", "PR1")
        c.replace[y] = [s, old_l1, open_row]
        children.append(c)
    # Short breaks: a V3 series of short episodes, and a V4 agreement open for years.
    for _ in range(6):
        c = Child(ref(), [])
        when = d("2016-05-01") + timedelta(days=rng.randint(0, 200))
        while when < horizon:
            c.eps.append(Ep(when, "S", "V3", "R1", "PR1", dec=when + timedelta(days=rng.randint(1, 4)), rec="E13"))
            when += timedelta(days=rng.randint(40, 160))
        children.append(c)
        children.append(Child(ref(), [Ep(d("2016-09-01") + timedelta(days=rng.randint(0, 900)), "S", "V4", "R1", "PR1")]))
    # First known episode inside the first year with RNE P or L: the episode before it is in no
    # return, so the period began before the data (looked after, never a start).
    for k in range(4):
        children.append(Child(ref(), [Ep(d("2017-05-01") + timedelta(days=50 * k), "P" if k % 2 == 0 else "L", "C2",
                                         "U4", "PR1")]))
    return children


def rows_for(c: Child, y: int) -> list[Ep]:
    if y > c.last_return:
        return []
    eps = c.replace.get(y, c.eps)
    out = []
    for e in eps:
        if e.decom <= year_end(y) and (e.dec is None or e.dec >= year_start(y)):
            out.append(e)
    return out


def write() -> dict[int, int]:
    children = build()
    rng = random.Random(7)
    counts = {}
    for y in YEARS:
        label = f"{y - 1}-{y % 100:02d}"
        rows = []
        for c in children:
            for e in rows_for(c, y):
                open_at_end = e.dec is None or e.dec > year_end(y)
                rows.append({
                    "CHILD": c.ref, "DECOM": e.decom.strftime("%d/%m/%Y"), "RNE": e.rne, "LS": e.ls, "CIN": e.cin,
                    "PLACE": e.place, "PLACE_PROVIDER": e.provider,
                    "DEC": "" if open_at_end else e.dec.strftime("%d/%m/%Y"),
                    "REC": "" if open_at_end else e.rec,
                    "REASON_PLACE_CHANGE": e.reason, "HOME_POST": "", "PL_POST": e.pl_post, "URN": e.urn,
                })
        rng.shuffle(rows)  # children's chains interleave in the file, as exports often do
        with (HERE / f"SSDA903_{label}_episodes.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, COLUMNS)
            w.writeheader()
            w.writerows(rows)
        listed = sorted({r["CHILD"] for r in rows})
        with (HERE / f"SSDA903_{label}_header.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["CHILD", "SEX", "DOB"])
            for ref in listed:
                w.writerow([ref, "1", "01/01/2010"])
        counts[y] = len(rows)
    return counts


if __name__ == "__main__":
    for year, n in write().items():
        print(year, n, "episode rows")
