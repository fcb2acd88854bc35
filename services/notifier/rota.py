"""The on-call rota: which manager gets a team's alerts at a given moment."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import yaml

from services.notifier.exceptions import RotaError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = ("in_hours", "out_of_hours", "any")


@dataclass(frozen=True)
class OnCall:
    name: str
    email: str
    hours: str        # in_hours | out_of_hours: the state of the clock when chosen
    source: str       # team | out_of_hours | default


@dataclass(frozen=True)
class Shift:
    name: str
    email: str
    days: tuple[str, ...]
    start: time
    end: time
    hours: str

    def covers(self, local: datetime, in_hours: bool) -> bool:
        if self.hours != "any" and (self.hours == "in_hours") != in_hours:
            return False
        t = local.time()
        if self.start < self.end:
            return DAYS[local.weekday()] in self.days and self.start <= t < self.end
        if self.start == self.end:  # whole day
            return DAYS[local.weekday()] in self.days
        # wraps past midnight: the part after midnight belongs to the previous day's shift
        if t >= self.start:
            return DAYS[local.weekday()] in self.days
        if t < self.end:
            return DAYS[(local.weekday() - 1) % 7] in self.days
        return False


def _clock(value: object, field: str) -> time:
    try:
        hh, mm = str(value).split(":")
        h, m = int(hh), int(mm)
        return time(0, 0) if (h, m) == (24, 0) else time(h, m)
    except (ValueError, TypeError):
        raise RotaError(f"rota field {field} must be HH:MM") from None


def _days(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return DAYS
    days = tuple(str(d).lower()[:3] for d in value)  # type: ignore[union-attr]
    if not days or any(d not in DAYS for d in days):
        raise RotaError(f"rota field {field} must list days mon..sun")
    return days


def _shift(raw: object, where: str, default_hours: str) -> Shift:
    if not isinstance(raw, dict) or not raw.get("email") or not raw.get("name"):
        raise RotaError(f"each shift in {where} needs a name and an email")
    hours = raw.get("hours", default_hours)
    if hours not in HOURS:
        raise RotaError(f"rota field {where}.hours must be one of {', '.join(HOURS)}")
    return Shift(str(raw["name"]), str(raw["email"]), _days(raw.get("days"), f"{where}.days"),
                 _clock(raw.get("start", "00:00"), f"{where}.start"), _clock(raw.get("end", "00:00"), f"{where}.end"),
                 hours)


@dataclass(frozen=True)
class Rota:
    timezone: ZoneInfo
    working_days: tuple[str, ...]
    working_start: time
    working_end: time
    default: OnCall
    out_of_hours: tuple[Shift, ...]
    teams: dict[str, tuple[Shift, ...]]

    def in_working_hours(self, local: datetime) -> bool:
        if DAYS[local.weekday()] not in self.working_days:
            return False
        if local.date() in holidays.UK(subdiv="ENG", years=local.year):
            return False
        return self.working_start <= local.time() < self.working_end

    def on_call(self, team: str | None, when: datetime) -> OnCall:
        local = when.astimezone(self.timezone)
        in_hours = self.in_working_hours(local)
        state = "in_hours" if in_hours else "out_of_hours"
        for shift in self.teams.get(team or "", ()):
            if shift.covers(local, in_hours):
                return OnCall(shift.name, shift.email, state, "team")
        if not in_hours:
            for shift in self.out_of_hours:
                if shift.covers(local, in_hours):
                    return OnCall(shift.name, shift.email, state, "out_of_hours")
        return OnCall(self.default.name, self.default.email, state, "default")


def parse_rota(data: object) -> Rota:
    if not isinstance(data, dict):
        raise RotaError("the rota must be a mapping")
    try:
        tz = ZoneInfo(str(data.get("timezone", "Europe/London")))
    except Exception:  # noqa: BLE001 - unknown zone name
        raise RotaError("rota field timezone is not a known time zone") from None
    wh = data.get("working_hours") or {}
    default = data.get("default")
    if not isinstance(default, dict) or not default.get("email") or not default.get("name"):
        raise RotaError("the rota needs a default duty manager with a name and an email")
    teams_raw = data.get("teams") or {}
    if not isinstance(teams_raw, dict):
        raise RotaError("rota field teams must map team codes to shift lists")
    teams = {str(team): tuple(_shift(s, f"teams.{team}", "in_hours") for s in (shifts or []))
             for team, shifts in teams_raw.items()}
    return Rota(
        timezone=tz,
        working_days=_days(wh.get("days", ["mon", "tue", "wed", "thu", "fri"]), "working_hours.days"),
        working_start=_clock(wh.get("start", "09:00"), "working_hours.start"),
        working_end=_clock(wh.get("end", "17:00"), "working_hours.end"),
        default=OnCall(str(default["name"]), str(default["email"]), "any", "default"),
        out_of_hours=tuple(_shift(s, "out_of_hours", "out_of_hours") for s in (data.get("out_of_hours") or [])),
        teams=teams,
    )


def load_rota(path: Path) -> Rota:
    try:
        text = path.read_text()
    except OSError:
        raise RotaError("the rota file cannot be read (check CASEWATCH_ROTA_FILE)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise RotaError("the rota file is not valid YAML") from None
    return parse_rota(data)
