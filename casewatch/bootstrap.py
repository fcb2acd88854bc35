"""The composition root (issue 14): the deployment's settings -> the parts every service builds
the same way.

This is the one module that reads the settings (:func:`casewatch.config.get_settings`: the
``CASEWATCH_*`` environment variables and ``.env``, read once per process). The entry points —
the ``casewatch`` commands and the services' app factories — take their settings, or the wired
parts, from here; library code is handed :class:`~casewatch.config.Settings` (or the part it
needs) and never reads the environment itself. ``tests/unit/test_bootstrap.py`` fails when
another module calls ``get_settings`` or builds a ``Settings`` or ``NotifierSettings``.

* :func:`settings` — the deployment's settings; :func:`notifier_settings` — the notifier's.
* :func:`build` — :class:`Parts`: the settings with the working-day calendar, "today" and the
  event publisher built from them.
* :func:`make_calendar` and :func:`today_for` — the two rules every figure is counted with, live
  (the engine) or backfilled (Prometheus history): England working days with the deployment's
  ``CASEWATCH_EXTRA_HOLIDAYS`` and ``CASEWATCH_REMOVED_HOLIDAYS`` applied, and "today" in London
  unless ``CASEWATCH_FIXED_TODAY`` fixes it.
"""
from __future__ import annotations

from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Callable

from casewatch.config import NotifierSettings, Settings, get_settings

if TYPE_CHECKING:  # imported when first used: every `casewatch` command imports this module
    from casewatch.adapters.kafka.publisher import EventPublisher
    from casewatch.domain.calendar import WorkingDayCalendar

__all__ = ["Parts", "build", "make_calendar", "notifier_settings", "settings", "today_for"]


def settings() -> Settings:
    """The deployment's settings, read once per process from ``CASEWATCH_*`` and ``.env``. An
    invalid value raises pydantic's ``ValidationError``, which ``casewatch`` explains in one
    sentence naming the variable."""
    return get_settings()


def notifier_settings() -> NotifierSettings:
    """The notifier's settings (SMTP, rota, webhook credentials), from the same variables."""
    return NotifierSettings()


def _dates(text: str) -> list[date]:
    return [date.fromisoformat(d.strip()) for d in text.split(",") if d.strip()]


def make_calendar(settings: Settings) -> "WorkingDayCalendar":
    """The working-day calendar of this deployment: England's bank holidays, plus the configured
    extra holidays, minus the configured removed ones."""
    from casewatch.domain.calendar import WorkingDayCalendar
    return WorkingDayCalendar(extra_holidays=_dates(settings.extra_holidays),
                              removed_holidays=_dates(settings.removed_holidays))


def today_for(settings: Settings) -> Callable[[], date]:
    """"Today", the one rule every part of casewatch takes it from: ``CASEWATCH_FIXED_TODAY`` when
    set (replays, tests), else the date in London, asked afresh on each call. Its users: the
    engine's figures, the plausible dates ingest and the loader accept (the publisher), the packs'
    live day (``casewatch report``), and the default days of ``casewatch simulate | replay |
    backfill-prometheus | history load`` and of the stack's demo (their ``--help``, .env.example)."""
    if settings.fixed_today:
        fixed = date.fromisoformat(settings.fixed_today)
        return lambda: fixed
    from zoneinfo import ZoneInfo
    london = ZoneInfo("Europe/London")
    return lambda: datetime.now(london).date()


class Parts:
    """What a service is built from, all made from one :class:`Settings`. The calendar and
    "today" are made when first asked for (the calendar reads 26 years of bank holidays); a
    publisher each time one is asked for, since each names its source system."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def calendar(self) -> "WorkingDayCalendar":
        return make_calendar(self.settings)

    @cached_property
    def today(self) -> Callable[[], date]:
        return today_for(self.settings)

    def publisher(self, source_system: str, *, source: str | None = None, **options) -> "EventPublisher":
        """An event publisher for ``source_system`` (check at the edge, pseudonymise, publish to
        the events topic; rejections to dead letters as ``source``, default the source system).
        ``options``: :class:`~casewatch.adapters.kafka.publisher.EventPublisher`'s (timeouts, a
        producer). Raises ``PseudonymisationKeyError`` when no key is configured."""
        from casewatch.adapters.kafka.publisher import EventPublisher
        return EventPublisher(self.settings, source_system, source=source, **options)


def build(settings: Settings | None = None) -> Parts:
    """The parts of this deployment; ``settings`` default: :func:`settings` (tests pass their own)."""
    return Parts(settings if settings is not None else get_settings())
