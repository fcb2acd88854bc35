"""The casewatch side of the statutory checks: import returns to events, then read the figures at
a 31 March through the domain's public API (the same calls the engine makes per child:
``ChildHistory`` -> ``contribution`` -> ``Aggregate``). Nothing here computes an expectation."""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory
from casewatch.domain.indicators import contribution
from services.feeds.envelope import FeedContext
from services.feeds.ssda903 import Ssda903Import, find_returns

LA = "E06000004"


def import_ssda903(path: Path) -> tuple[list[dict], list, list[str]]:
    """Every return under ``path`` -> (events, dead letters, notes)."""
    events, dead, notes = [], [], []
    run = Ssda903Import(FeedContext(LA, "import:ssda903"), events.append, dead.append,
                        note=lambda name, n=1: notes.extend([name] * n))
    returns, _ = find_returns(path)
    for ret in returns:
        run.load(ret)
    run.run()
    return events, dead, notes


def by_child(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for ev in events:
        out[ev["child_ref"]].append(ev)
    return out


def lac_figures(children: dict[str, list[dict]], as_of: date) -> dict:
    """LAC at ``as_of``, started / ceased (by outcome group) in the 12 months to ``as_of``, LAC
    with 3+ placements in 12 and in 24 months, as casewatch computes them."""
    calendar = WorkingDayCalendar()
    aggregate = Aggregate(calendar, as_of)
    for evs in children.values():
        aggregate.apply(None, contribution(ChildHistory(evs), as_of, calendar))
    got = {"lac": 0.0, "started": 0.0, "ceased": 0.0, "ceased_by_outcome": {}, "three_plus_12m": 0.0,
           "three_plus_24m": 0.0}
    for metric, labels, value in aggregate.samples():
        window = labels.get("window")
        if metric == "casewatch_lac_open":
            got["lac"] += value
        elif metric == "casewatch_lac_started" and window == "12m":
            got["started"] += value
        elif metric == "casewatch_lac_ceased" and window == "12m":
            got["ceased"] += value
        elif metric == "casewatch_lac_ceased_by_outcome" and window == "12m" and value:
            group = labels["outcome_group"]
            got["ceased_by_outcome"][group] = got["ceased_by_outcome"].get(group, 0.0) + value
        elif metric == "casewatch_lac_3plus_placements_12m":
            got["three_plus_12m"] += value
        elif metric == "casewatch_lac_3plus_placements_24m":
            got["three_plus_24m"] += value
    return got
