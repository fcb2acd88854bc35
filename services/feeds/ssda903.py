"""SSDA903 returns -> casewatch events (docs/feeds.md "SSDA903").

A *return* is one collection year of the 903 tables: ``header``, ``episodes``, ``reviews``, ``oc3``
(any file whose name contains or ends in those words, any case). ``find_returns`` finds every
return a folder holds (sub-folders, or the collection year in the file names, or a ``YEAR``
column) and refuses, naming them, files it cannot tell apart. A single return's year is, in order:
a ``YEAR`` column (year end, as in liia-tools' multi-year files), ``--year``, or the 31 March on or
after the latest episode start in the return.

Several returns are merged into one history per child with ``episode_stitching`` and then mapped:

* first episode of a period -> ``lac.started`` (decom, legal_status, placement, provider, need, the
  episode's own RNE; ``began_before_data`` when it is the child's first known episode and not RNE S)
* a later episode with RNE P/T/B/U -> ``placement.changed``; with RNE L, or a legal status that
  differs from the episode before -> ``lac.legal_status_changed`` (rne L; see docs/feeds.md for
  why the legal half of a B/U episode is sent as L)
* an episode end with a leaving-care reason (not X1) -> ``lac.ended`` (no ``reason_ceased`` when the
  returns give none; ``end_date_estimated`` when they give no date)
* a review -> ``lac_review.held`` (participation); OC3 -> ``care_leaver.status``.

Identifying columns (UPN, postcodes, URN, mother's DOB, ethnicity) are never emitted, nor the day of the
child's DOB: only its month, as ``birth_month`` on ``lac.started`` (O11 needs the age). Rows are
read as they stream; episodes are held in memory grouped by child, which stitching needs (903
returns are small: one row per episode of the year).
"""
from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterable, Iterator

from schemas.code_lists import codes as code_list

from services.feeds.envelope import DeadLetter, FeedContext, collection_year_label, parse_date
from services.feeds.exceptions import ReturnsError
from services.feeds.episode_stitching import (
    CONTINUOUS, STARTED, Episode, latest_returns, stitch_child, year_end,
)

SOURCE = "import:ssda903"
TABLES = ("header", "episodes", "reviews", "oc3")
SHORT_BREAKS = frozenset({"V3", "V4"})
PLACEMENT_RNE = frozenset({"P", "T", "B", "U"})
NEED_CODES = frozenset({"N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"})


@dataclass
class Return:
    """One SSDA903 return: its table files and its year end (None: a YEAR column, else inferred
    from the episodes)."""
    files: dict[str, Path]
    year: int | None = None
    name: str = ""

    @property
    def label(self) -> str:
        return collection_year_label(self.year) if self.year else "year from the episodes"


# ``2017-18``, ``2017_18``, ``201718`` -> 2018; a lone ``2018`` is the year END (as liia-tools'
# YEAR column): 2018 = the return for 1 April 2017 - 31 March 2018.
_YEAR_PAIR = re.compile(r"(?<!\d)(20\d\d)[-_ ]?(\d\d)(?!\d)")
_YEAR_ONE = re.compile(r"(?<!\d)(20\d\d)(?!\d)")


def year_in_name(name: str) -> int | None:
    """The collection year END a file or folder name carries, or None when it carries none or is
    ambiguous (two different years, or a pair that is not one collection year such as 2017-19)."""
    pairs = [(int(m.group(1)), int(m.group(2))) for m in _YEAR_PAIR.finditer(name)]
    for first, second in pairs:
        if (first + 1) % 100 == second:
            return first + 1
    if pairs:
        return None
    years = {int(y) for y in _YEAR_ONE.findall(name)}
    return years.pop() if len(years) == 1 else None


def _table_of(path: Path) -> str | None:
    stem = path.stem.lower()
    words = [w for w in re.split(r"[^a-z0-9]+", stem) if w]
    for table in TABLES:
        if table in words or stem == table or stem.endswith(table):
            return table
    return None


def _year_column(path: Path) -> set[int]:
    """The YEAR values of an episodes or header file (empty: no YEAR column)."""
    years: set[int] = set()
    for row in _rows(path):
        if "YEAR" not in row:
            return set()
        if row["YEAR"].isdigit():
            years.add(int(row["YEAR"]))
    return years


def find_returns(path: Path, year: int | None = None) -> tuple[list[Return], list[Path]]:
    """Every return a path holds, oldest first, and the CSV files that are no 903 table we read.

    A file is one episodes CSV (one return). A directory holds one return (its table files) or
    several: sub-directories, or files whose names carry the collection year (``episodes_2018.csv``,
    ``2017-18_header.csv``), or files whose YEAR column names a single year. Files that cannot be
    told apart (two episodes tables of one year, tables with no year beside tables with one)
    raise :class:`ReturnsError` naming them: never a silent subset.
    """
    path = Path(path)
    if path.is_file():
        return [Return({"episodes": path}, year, path.name)], []
    if not path.is_dir():
        raise FileNotFoundError(f"{path.name}: no such file or directory")
    csvs = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() == ".csv")
    subdirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    tables = [(f, _table_of(f)) for f in csvs]
    others = [f for f, t in tables if t is None]
    tables = [(f, t) for f, t in tables if t is not None]
    returns: list[Return] = []
    if subdirs and not tables:
        for d in subdirs:
            try:
                found, skipped = find_returns(d)
            except FileNotFoundError:
                continue
            for r in found:
                r.year = r.year or year_in_name(d.name)
                r.name = f"{d.name}/"
            returns.extend(found)
            others.extend(skipped)
        if not returns:
            raise FileNotFoundError(f"{path.name}: no episodes table in the folder or its sub-folders")
        if year is not None and len(returns) > 1:
            raise ReturnsError("--year only with a single return; the folder holds "
                               + ", ".join(r.name for r in returns))
        if len(returns) == 1 and year is not None:
            returns[0].year = year
        return _check_distinct(returns), others
    by_year: dict[int | None, dict[str, list[Path]]] = {}
    for f, table in tables:
        y = year_in_name(f.name)
        if y is None and table in ("episodes", "header"):
            in_column = _year_column(f)
            y = in_column.pop() if len(in_column) == 1 else None
        by_year.setdefault(y, {}).setdefault(table, []).append(f)
    if None in by_year and len(by_year) > 1:
        names = sorted(f.name for fs in by_year[None].values() for f in fs)
        raise ReturnsError("cannot tell which return " + ", ".join(names) + " belong(s) to: put the collection "
                           "year in the file name (e.g. episodes_2017-18.csv) or one return per sub-folder")
    for y, files in sorted(by_year.items(), key=lambda kv: kv[0] or 0):
        for table, fs in files.items():
            if len(fs) > 1:
                raise ReturnsError(f"{len(fs)} {table} tables for one return (" + ", ".join(f.name for f in fs)
                                   + "): keep one per return, or put each year's files in its own sub-folder")
        if "episodes" not in files:
            names = ", ".join(sorted(f.name for fs in files.values() for f in fs))
            raise FileNotFoundError(f"no episodes table for the return of {names}")
        returns.append(Return({t: fs[0] for t, fs in files.items()}, y, path.name))
    if not returns:
        raise FileNotFoundError(f"{path.name}: no episodes table in the return")
    if year is not None:
        if len(returns) > 1:
            raise ReturnsError("--year only with a single return; the folder holds "
                               + ", ".join(r.label for r in returns))
        returns[0].year = year
    return _check_distinct(returns), others


def _check_distinct(returns: list[Return]) -> list[Return]:
    years = [r.year for r in returns if r.year is not None]
    if len(set(years)) != len(years):
        dup = sorted({collection_year_label(y) for y in years if years.count(y) > 1})
        raise ReturnsError("two returns for " + ", ".join(dup) + " (" + ", ".join(r.name for r in returns
                                                                              if r.year and years.count(r.year) > 1)
                           + "): import one of them")
    if len(returns) > 1 and any(r.year is None for r in returns):
        raise ReturnsError("cannot tell the collection year of " + ", ".join(r.name for r in returns if r.year is None)
                           + ": put the year in the folder or file name (e.g. 2017-18/)")
    return sorted(returns, key=lambda r: r.year or 0)


def find_return(path: Path, year: int | None = None) -> Return:
    """The single return a path holds (a folder of several returns raises ReturnsError)."""
    returns, _ = find_returns(path, year)
    if len(returns) > 1:
        raise ReturnsError(f"{Path(path).name} holds {len(returns)} returns")
    return returns[0]


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            yield {(k or "").strip().upper(): (v or "").strip() for k, v in row.items()}


def _ok(list_name: str, code: str | None, year_label: str) -> bool:
    return bool(code) and code in code_list(list_name, year_label)


@dataclass
class Ssda903Import:
    """Maps returns to events. ``emit``/``dead`` receive events and dead letters as they come."""
    ctx: FeedContext
    emit: Callable[[dict], None]
    dead: Callable[[DeadLetter], None]
    note: Callable[[str, int], None] = lambda name, n=1: None
    read: Callable[[str, int], None] = lambda name, n=1: None
    progress: Callable[[Iterable, str], Iterable] = lambda it, desc: it
    episodes: dict[str, list[Episode]] = field(default_factory=lambda: defaultdict(list))
    reviews: dict[str, list[tuple[date, str | None, int]]] = field(default_factory=lambda: defaultdict(list))
    stitched: dict[str, list[Episode]] = field(default_factory=dict)
    dropped: dict[str, list[Episode]] = field(default_factory=dict)
    loaded: list[tuple[str, list[str], int]] = field(default_factory=list)  # (year label, files, episode rows)

    # -- reading -------------------------------------------------------------------------------
    def load(self, ret: Return) -> None:
        rows = list(self.progress(_rows(ret.files["episodes"]), "903 episodes"))
        year = ret.year or _infer_year(rows)
        if ret.year is None and not any(row.get("YEAR", "").isdigit() for row in rows):
            self.note("collection_year_inferred_from_episodes", 1)
        years = {int(r["YEAR"]) for r in rows if r.get("YEAR", "").isdigit()}
        label = ", ".join(collection_year_label(y) for y in sorted(years)) if years and ret.year is None \
            else collection_year_label(year)
        self.loaded.append((label, [f"{ret.name.rstrip('/')}/{p.name}" if ret.name.endswith("/") else p.name
                                    for p in ret.files.values()], len(rows)))
        for row in rows:
            self.read("episodes", 1)
            row_year = int(row["YEAR"]) if row.get("YEAR", "").isdigit() else year
            ep = self._episode(row, row_year)
            if ep is not None:
                self.episodes[ep.child].append(ep)
        if "reviews" in ret.files:
            for row in self.progress(_rows(ret.files["reviews"]), "903 reviews"):
                self.read("reviews", 1)
                self._review(row, year)
        self.birth_months = getattr(self, "birth_months", {})
        if "header" in ret.files:  # only the month of birth is kept (O11 needs the age); never the day
            for row in _rows(ret.files["header"]):
                self.read("header", 1)
                try:
                    dob = parse_date(row.get("DOB"))
                except ValueError:
                    dob = None
                if dob is not None and row.get("CHILD"):
                    self.birth_months[row["CHILD"]] = dob.strftime("%Y-%m")
        self._oc3_files = getattr(self, "_oc3_files", [])
        if "oc3" in ret.files:
            self._oc3_files.append((ret.files["oc3"], year))

    def _episode(self, row: dict[str, str], year: int) -> Episode | None:
        """One row -> an Episode, or one dead letter listing every problem of the row."""
        child = row.get("CHILD", "")
        label = collection_year_label(year)
        payload = {"child_ref": child} if child else {}
        problems: list[tuple[str, str]] = []
        if not child:
            problems.append(("missing_identifier", "episodes.CHILD"))
        decom = dec = None
        for column in ("DECOM", "DEC"):
            try:
                value = parse_date(row.get(column))
            except ValueError:
                problems.append(("invalid_date", f"episodes.{column}"))
                continue
            if column == "DECOM":
                decom = value
                if value is None:
                    problems.append(("missing_date", "episodes.DECOM"))
            else:
                dec = value
        if decom is not None:
            payload["decom"] = decom.isoformat()
            if decom > year_end(year):
                # A return holds the episodes open at some time in its year: one starting after
                # the year end belongs to no episode of this return (the DfE validator rejects it).
                problems.append(("after_collection_year", "episodes.DECOM"))
            if dec is not None and dec < decom:
                problems.append(("end_before_start", "episodes.DEC"))
        for column, list_name in (("RNE", "reason_new_episode"), ("LS", "legal_status"), ("PLACE", "placement")):
            if not _ok(list_name, row.get(column), label):
                problems.append(("unknown_code" if row.get(column) else "missing_code", f"episodes.{column}"))
        rec = row.get("REC") or None
        if dec is not None and not _ok("reason_ceased", rec, label):
            problems.append(("unknown_code" if rec else "missing_code", "episodes.REC"))
        if problems:
            (reason, loc), *rest = problems
            self.dead(DeadLetter(reason, loc, payload, msg=_MESSAGES.get(reason, ""), also=rest))
            return None
        provider = row.get("PLACE_PROVIDER") or None
        if provider is not None and not _ok("place_provider", provider, label):
            provider = None
            self.note("place_provider_not_in_list", 1)
        reason = row.get("REASON_PLACE_CHANGE") or None
        if reason is not None and not _ok("reason_place_change", reason, label):
            reason = None
            self.note("reason_place_change_not_in_list", 1)
        return Episode(child=child, decom=decom, rne=row["RNE"], ls=row["LS"], place=row["PLACE"],
                       dec=dec, rec=rec if dec is not None else None,  # open: REC is ignored
                       cin=row.get("CIN") if row.get("CIN") in NEED_CODES else None,
                       provider=provider, reason_place_change=reason,
                       pl_post=row.get("PL_POST") or None, urn=row.get("URN") or None,
                       year=year, la=row.get("LA", ""))

    def _review(self, row: dict[str, str], year: int) -> None:
        child = row.get("CHILD", "")
        if not child:
            self.dead(DeadLetter("missing_identifier", "reviews.CHILD", {}))
            return
        payload = {"child_ref": child}
        try:
            when = parse_date(row.get("REVIEW"))
        except ValueError:
            self.dead(DeadLetter("invalid_date", "reviews.REVIEW", payload))
            return
        if when is None:
            self.dead(DeadLetter("missing_date", "reviews.REVIEW", payload))
            return
        payload["date"] = when.isoformat()
        if when > year_end(year):
            self.dead(DeadLetter("review_after_collection_year", "reviews.REVIEW", payload))
            return
        code = row.get("REVIEW_CODE") or None
        if code is not None and not _ok("participation", code, collection_year_label(year)):
            self.dead(DeadLetter("unknown_code", "reviews.REVIEW_CODE", payload))
            return
        self.reviews[child].append((when, code, year))

    # -- mapping -------------------------------------------------------------------------------
    def run(self) -> None:
        latest = latest_returns(e for eps in self.episodes.values() for e in eps)
        for child in self.progress(sorted(self.episodes), "903 children"):
            dropped: list[Episode] = []
            eps = stitch_child(self.episodes[child], latest, dropped)
            self.stitched[child] = eps
            self.dropped[child] = dropped
            for e in eps + dropped:
                for rule in e.rules:
                    self.note(rule, 1)
            self._episode_events(child, eps)
        for child in sorted(self.reviews):
            self._review_events(child, self.stitched.get(child, []))
        for path, year in getattr(self, "_oc3_files", []):
            for row in self.progress(_rows(path), "903 OC3"):
                self.read("oc3", 1)
                self._care_leaver(row, year)

    def _episode_events(self, child: str, eps: list[Episode]) -> None:
        ctx = self.ctx
        prev: Episode | None = None
        for e in eps:
            key = e.decom.isoformat()
            if e.starts_period:
                # The episode's own RNE. The child's first known episode with another RNE than S
                # began a period before the returns: looked after, but not a start in any window.
                # A later period without an S row follows a leaving-care end (rule S10): a start.
                before_data = prev is None and e.rne != STARTED
                if before_data:
                    self.note("period_began_before_the_returns", 1)
                self.emit(ctx.event("lac.started", child, (key,), decom=e.decom, rne=e.rne, legal_status=e.ls,
                                    placement=e.place, provider=e.provider, need=e.cin,
                                    began_before_data=True if before_data else None,
                                    birth_month=getattr(self, "birth_months", {}).get(child)))
            else:
                legal_changed = prev is not None and e.ls != prev.ls
                if e.rne in PLACEMENT_RNE:
                    if legal_changed or e.rne in ("B", "U"):
                        self.emit(ctx.event("lac.legal_status_changed", child, (key,), date=e.decom, rne="L",
                                            legal_status=e.ls))
                    self.emit(ctx.event("placement.changed", child, (key,), date=e.decom, rne=e.rne,
                                        placement=e.place, provider=e.provider,
                                        reason_place_change=e.reason_place_change))
                else:
                    self.emit(ctx.event("lac.legal_status_changed", child, (key,), date=e.decom, rne="L",
                                        legal_status=e.ls))
            if e.dec is not None and e.rec != CONTINUOUS:
                # reason_ceased absent = not recorded (stitching found an end the returns do not give)
                self.emit(ctx.event("lac.ended", child, (key,), dec=e.dec, reason_ceased=e.rec,
                                    end_date_estimated=True if e.end_estimated else None))
                if e.rec is None:
                    self.note("ended_reason_not_recorded", 1)
            prev = e

    def _review_events(self, child: str, eps: list[Episode]) -> None:
        periods = _periods(eps)
        seen: set[date] = set()
        for when, code, _year in sorted(self.reviews[child], key=lambda r: r[0]):
            payload = {"child_ref": child, "date": when.isoformat()}
            if not eps:
                self.dead(DeadLetter("no_episode_for_child", "reviews.CHILD", payload))
                continue
            episode = next((p_eps for start, end, p_eps in periods
                            if start <= when and (end is None or when <= end)), None)
            if episode is None:
                self.dead(DeadLetter("review_outside_period_of_care", "reviews.REVIEW", payload))
                continue
            current = [e for e in episode if e.decom <= when][-1]
            if current.ls in SHORT_BREAKS:
                self.note("review_during_short_breaks_not_sent", 1)
                continue
            if when in seen:
                self.note("review_repeated_same_day", 1)
                continue
            seen.add(when)
            self.emit(self.ctx.event("lac_review.held", child, (when.isoformat(),), date=when, participation=code))

    def _care_leaver(self, row: dict[str, str], year: int) -> None:
        child = row.get("CHILD", "")
        payload = {"child_ref": child} if child else {}
        if not child:
            self.dead(DeadLetter("missing_identifier", "oc3.CHILD", payload))
            return
        try:
            dob = parse_date(row.get("DOB"))
        except ValueError:
            self.dead(DeadLetter("invalid_date", "oc3.DOB", payload))
            return
        if dob is None:
            self.dead(DeadLetter("missing_date", "oc3.DOB", payload))
            return
        # The age the young person turns within the collection year (1 April to 31 March).
        age = (year - 1) - dob.year if (dob.month, dob.day) >= (4, 1) else year - dob.year
        band = "17-18" if age in (17, 18) else "19-21" if 19 <= age <= 21 else None
        if band is None:
            self.dead(DeadLetter("not_in_care_leaver_age_band", "oc3.DOB", payload))
            return
        label = collection_year_label(year)
        fields = {}
        for column, list_name, required in (("IN_TOUCH", "in_touch", True), ("ACTIV", "activity", False),
                                            ("ACCOM", "accommodation", False)):
            value = row.get(column) or None
            if value is None:
                if required:
                    self.dead(DeadLetter("missing_code", f"oc3.{column}", payload))
                    return
                continue
            if not _ok(list_name, value, label):
                self.dead(DeadLetter("unknown_code", f"oc3.{column}", payload))
                return
            fields[list_name] = value
        # Dated at the end of the collection year: the OC3 status is "as at" the return, and a
        # birthday date would disclose the date of birth.
        self.emit(self.ctx.event("care_leaver.status", child, (year,), date=year_end(year), age_band=band, **fields))


def _periods(eps: list[Episode]) -> list[tuple[date, date | None, list[Episode]]]:
    """Periods of care: (start, end or None while open, episodes), end inclusive."""
    out: list[tuple[date, date | None, list[Episode]]] = []
    for e in eps:
        if e.starts_period or not out:
            out.append((e.decom, None, [e]))
        else:
            out[-1][2].append(e)
        if e.dec is not None and e.rec != CONTINUOUS:
            start, _, members = out[-1]
            out[-1] = (start, e.dec, members)
    return out


_MESSAGES = {"after_collection_year": "the episode starts after the end of the return's collection year"}


def _infer_year(rows: list[dict[str, str]]) -> int:
    latest: date | None = None
    for row in rows:
        try:
            d = parse_date(row.get("DECOM"))
        except ValueError:
            continue
        if d is not None and (latest is None or d > latest):
            latest = d
    if latest is None:
        raise ValueError("cannot tell the return's year: no episode start dates; pass --year")
    return latest.year if latest <= date(latest.year, 3, 31) else latest.year + 1
