"""Code lists, versioned by collection year, loaded from ``schemas/codes/<collection_year>/*.yaml``.

Each file holds ``lists: {name: {title, codes: {code: meaning}}}``. Every collection year must carry
the same list names (a year may change a list's codes, never drop a list). Loaded once, at import.

Which year's lists validate an event: its ``collection_year``, clamped to the years on file (an
event from before the first year uses the first year's lists, one after the last uses the last's).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from casewatch.domain.exceptions import CasewatchError

CODES_DIR = Path(__file__).resolve().parent / "codes"
COLLECTION_YEAR_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


class CodeListError(CasewatchError, RuntimeError):
    """The code-list files on disk are malformed (a deployment error, not an input error). A
    casewatch error that stays a ``RuntimeError`` for the callers that catch that."""


def _load_year(directory: Path) -> dict[str, dict[str, str]]:
    lists: dict[str, dict[str, str]] = {}
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or str(doc.get("collection_year")) != directory.name:
            raise CodeListError(f"{path}: collection_year must be {directory.name}")
        for name, body in (doc.get("lists") or {}).items():
            codes = body.get("codes") if isinstance(body, dict) else None
            if not isinstance(codes, dict) or not codes:
                raise CodeListError(f"{path}: list {name} has no codes")
            if not all(isinstance(c, str) for c in codes):
                raise CodeListError(f"{path}: list {name} has a code that is not a string (quote it)")
            if name in lists:
                raise CodeListError(f"{path}: list {name} defined twice for {directory.name}")
            lists[name] = {c: str(m or "") for c, m in codes.items()}
    return lists


@lru_cache(maxsize=1)
def all_code_lists() -> dict[str, dict[str, dict[str, str]]]:
    """``{collection_year: {list_name: {code: meaning}}}``, years in order."""
    years = sorted(p for p in CODES_DIR.iterdir() if p.is_dir() and COLLECTION_YEAR_PATTERN.match(p.name))
    if not years:
        raise CodeListError(f"no code lists under {CODES_DIR}")
    loaded = {p.name: _load_year(p) for p in years}
    names = {y: set(lists) for y, lists in loaded.items()}
    first = next(iter(names.values()))
    for year, these in names.items():
        if these != first:
            raise CodeListError(f"code lists of {year} differ in names from the first year: "
                                f"{sorted(these ^ first)}")
    return loaded


def collection_years() -> list[str]:
    return list(all_code_lists())


def latest_year() -> str:
    return collection_years()[-1]


def code_list_year(collection_year: str) -> str:
    """The year whose code lists validate an event of ``collection_year`` (clamped)."""
    years = collection_years()
    if collection_year in all_code_lists():
        return collection_year
    if collection_year < years[0]:
        return years[0]
    if collection_year > years[-1]:
        return years[-1]
    # a gap between years on file: the latest year before it
    return max(y for y in years if y < collection_year)


def codes(list_name: str, collection_year: str) -> dict[str, str]:
    return all_code_lists()[code_list_year(collection_year)][list_name]


def collection_year_of(day) -> str:
    """The collection year (1 April to 31 March) a date falls in, as ``YYYY-YY``."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"
