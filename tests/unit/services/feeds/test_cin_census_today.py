"""The CIN census import's "today" is bootstrap's rule (issue 14: one owner of "today").

It picks the code lists' collection year only for a child with no dates in a census whose header
has no end date either; the import used ``date.today()`` (the machine's zone, ignoring
``CASEWATCH_FIXED_TODAY``) before.
"""
from __future__ import annotations

from datetime import date

from casewatch.config import get_settings
from services.feeds.cin_census import CinCensusImport
from services.feeds.envelope import FeedContext


def _import(**kw) -> CinCensusImport:
    return CinCensusImport(lambda h: FeedContext("E06000004", "import:cin-census"), lambda ev: None,
                           lambda d: None, **kw)


def test_the_default_today_is_the_deployments_fixed_day(monkeypatch):
    monkeypatch.setenv("CASEWATCH_FIXED_TODAY", "2021-05-06")
    get_settings.cache_clear()  # the settings are read once per process; this test sets its own
    try:
        assert _import().today() == date(2021, 5, 6)
    finally:
        get_settings.cache_clear()


def test_the_commands_today_is_used_for_a_child_without_dates(tmp_path):
    asked = []

    def today() -> date:
        asked.append(1)
        return date(2024, 6, 1)

    census = tmp_path / "census.xml"
    census.write_text("<Message><Children><Child><ChildIdentifiers><LAchildID>A1</LAchildID>"
                      "</ChildIdentifiers><CINdetails><ReferralSource>1A</ReferralSource></CINdetails>"
                      "</Child></Children></Message>")
    _import(today=today).run(census)
    assert asked, "a child with no dates in a census with no end date takes the code lists of today's year"
