"""Dated local changes (dashboards/local_changes.yaml): Grafana annotations and the before/after panels."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import yaml

from casewatch.domain.calendar import add_calendar_months

LOCAL_CHANGES_FILE = Path(__file__).resolve().parent / "local_changes.yaml"
ANNOTATION_TAG = "casewatch-local-change"
_LA = re.compile(r"^[EWSN][0-9]{8}$")
_TITLE = re.compile(r"^[A-Za-z0-9 ,.;:()'&/-]{3,80}$")


class LocalChangesError(ValueError):
    """The local changes file does not have the expected shape (the message says how to fix it)."""


@dataclass(frozen=True)
class LocalChange:
    la: str
    date: date
    title: str


def load_local_changes(path: Path = LOCAL_CHANGES_FILE) -> list[LocalChange]:
    data = yaml.safe_load(path.read_text()) or {}
    out = []
    for n, item in enumerate(data.get("changes") or [], 1):
        if not isinstance(item, dict) or set(item) != {"la", "date", "title"}:
            raise LocalChangesError(f"{path.name} change {n}: write exactly la, date and title")
        la, when, title = str(item["la"]), item["date"], str(item["title"])
        if not _LA.match(la):
            raise LocalChangesError(f"{path.name} change {n}: la must be an ONS code such as E06000004")
        if not isinstance(when, date):
            raise LocalChangesError(f"{path.name} change {n}: date must be YYYY-MM-DD")
        if not _TITLE.match(title):
            raise LocalChangesError(f"{path.name} change {n}: title must be 3-80 plain characters (letters, "
                                    "digits, spaces and simple punctuation), with no names")
        out.append(LocalChange(la, when, title))
    return sorted(out, key=lambda c: (c.date, c.la, c.title))


def annotation_time_ms(d: date) -> int:
    """Midday UTC of the change's day (inside that day in Europe/London all year round)."""
    return int(datetime(d.year, d.month, d.day, 12, tzinfo=timezone.utc).timestamp() * 1000)


def month_end_instants(change: LocalChange) -> tuple[list[int], list[int]]:
    """Unix seconds at 22:00 UTC of the last day of each of the three calendar months before the
    month of the change, and of the three months after it (the change's own month is in neither).
    On a month's last day the ``window="month"`` series holds that month's figure; 22:00 UTC is
    still that day in Europe/London (23:00 in summer)."""
    first = change.date.replace(day=1)

    def last_day(month_start: date) -> int:
        d = add_calendar_months(month_start, 1) - timedelta(days=1)
        return int(datetime(d.year, d.month, d.day, 22, tzinfo=timezone.utc).timestamp())

    before = [last_day(add_calendar_months(first, -k)) for k in (3, 2, 1)]
    after = [last_day(add_calendar_months(first, k)) for k in (1, 2, 3)]
    return before, after


def three_months_expr(metric: str, selector: str, instants: list[int]) -> str:
    """The sum by source group of ``metric``'s month figures at the given month ends: the samples of
    each month's last day (the last within 22 hours before the instant: a live scrape that day, or
    the daily sample history loading writes at 00:00 UTC), tagged per month so they add up."""
    parts = [f'label_replace(last_over_time({metric}{{{selector}, window="month"}}[22h] @ {t}), '
             f'"month_end", "{i}", "", "")' for i, t in enumerate(instants)]
    return "sum by (source_group) (" + " or ".join(parts) + ")"
