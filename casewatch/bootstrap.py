"""Settings -> the parts every service builds the same way (issue 14's composition root; more
parts join it with the re-layout).

Today: the working-day calendar. Every figure, live (the engine) or backfilled (the simulator's
Prometheus backfill), is counted in the same England working days, with the deployment's
``CASEWATCH_EXTRA_HOLIDAYS`` and ``CASEWATCH_REMOVED_HOLIDAYS`` applied.
"""
from __future__ import annotations

from datetime import date, datetime

from casewatch.config import Settings
from casewatch.domain.calendar import WorkingDayCalendar

__all__ = ["make_calendar", "today_for"]


def _dates(text: str) -> list[date]:
    return [date.fromisoformat(d.strip()) for d in text.split(",") if d.strip()]


def make_calendar(settings: Settings) -> WorkingDayCalendar:
    """The working-day calendar of this deployment: England's bank holidays, plus the configured
    extra holidays, minus the configured removed ones."""
    return WorkingDayCalendar(extra_holidays=_dates(settings.extra_holidays),
                              removed_holidays=_dates(settings.removed_holidays))


def today_for(settings: Settings):
    if settings.fixed_today:
        fixed = date.fromisoformat(settings.fixed_today)
        return lambda: fixed
    from zoneinfo import ZoneInfo
    london = ZoneInfo("Europe/London")
    return lambda: datetime.now(london).date()
