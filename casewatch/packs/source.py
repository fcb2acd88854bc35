"""Where every figure of the packs comes from: Prometheus's HTTP API, read with this deployment's
"today", child populations and drift limits (:class:`PrometheusSource`, built by the ``casewatch
report`` commands from the settings).

A day's figure is the sample stamped at 00:00 UTC of that day (the instant the backfill stamps a
day's figures with, :func:`casewatch.adapters.prometheus.backfill.sample_timestamp`), so an instant query at
that instant reads the value "at the end of" the day. Every query a pack makes is recorded in
:attr:`PrometheusSource.log` (expression, instant, result) so a test can repeat it.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable, Mapping

from casewatch.adapters.prometheus.backfill import sample_timestamp
from casewatch.config import Settings
from casewatch.packs.exceptions import SourceError  # noqa: F401 - also importable from here


def at(day: date, today: date) -> int:
    """The instant a day's figures are read at: its sample (00:00 UTC) for a day before ``today``;
    now (the live figures, e.g. a quarter to date) for today or a later day."""
    if day >= today:
        import time
        return int(time.time())
    return sample_timestamp(day)


@dataclass
class PrometheusSource:
    """Prometheus at ``base_url``, read as this deployment reads it: ``today`` (its "today",
    :func:`casewatch.bootstrap.today_for`: a fixed ``CASEWATCH_FIXED_TODAY`` or London's date) decides
    which days are read live; ``populations`` (children aged 0-17 per ONS code,
    :func:`casewatch.packs.population.child_populations`) are the rates' denominators;
    ``drift_limits`` (working days per case type, ``CASEWATCH_DRIFT_WORKDAYS``) title the drift measure."""
    base_url: str
    today: Callable[[], date]
    populations: dict[str, int]
    drift_limits: Mapping[str, int]
    timeout: float = 30.0
    log: list[tuple[str, int, float | None]] = field(default_factory=list)

    def at(self, day: date) -> int:
        """The instant ``day``'s figures are read at (:func:`at`, with this deployment's today)."""
        return at(day, self.today())

    def _get(self, path: str, params: dict) -> dict:
        url = f"{self.base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc).get("error", "")
            except ValueError:
                detail = ""
            raise SourceError(f"Prometheus refused a query ({exc.code}: {detail})") from None
        except OSError:
            raise SourceError(f"Prometheus is not answering at {self.base_url}: start the stack "
                              f"(`casewatch stack up`) or pass --prometheus URL") from None
        if body.get("status") != "success":
            raise SourceError(f"Prometheus refused a query: {body.get('error')}")
        return body["data"]

    def vector(self, expr: str, day: date) -> list[tuple[dict, float]]:
        data = self._get("/api/v1/query", {"query": expr, "time": self.at(day)})
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def scalar(self, expr: str, day: date) -> float | None:
        """The value of a query that yields at most one series (None: no data)."""
        found = self.vector(expr, day)
        value = found[0][1] if found else None
        self.log.append((expr, self.at(day), value))
        return value

    def by(self, expr: str, day: date, label: str) -> dict[str, float]:
        found = {m.get(label, ""): v for m, v in self.vector(expr, day)}
        for key, value in found.items():
            self.log.append((f"{expr} [{label}={key}]", self.at(day), value))
        return found

    def days(self, expr: str, days: list[date]) -> dict[date, float | None]:
        """One range query (a step of a day) over ``days``, read at each of them."""
        if not days:
            return {}
        today = self.today()
        live = [d for d in days if d >= today]
        days = [d for d in days if d < today]
        out_live = {d: self.scalar(expr, d) for d in live}
        if not days:
            return out_live
        first, last = min(days), max(days)
        data = self._get("/api/v1/query_range", {"query": expr, "start": self.at(first), "end": self.at(last),
                                                 "step": 86400})
        values: dict[int, float] = {}
        for series in data["result"][:1]:
            values = {int(float(t)): float(v) for t, v in series["values"]}
        out = {d: values.get(self.at(d)) for d in days}
        for d, v in out.items():
            self.log.append((expr, self.at(d), v))
        return {**out, **out_live}

    def has_data(self, la: str, day: date) -> bool:
        """Whether Prometheus holds any casewatch figure of ``la`` on ``day``. The engine publishes
        a stock only while it is non-zero, so on a day with figures an absent series is 0; on a
        day without any, it is missing."""
        key = (la, day)
        cache = self.__dict__.setdefault("_has_data", {})
        if key not in cache:
            data = self._get("/api/v1/query", {"query": f'count({{__name__=~"casewatch_.+", la="{la}"}})',
                                               "time": self.at(day)})
            cache[key] = bool(data["result"]) and float(data["result"][0]["value"][1]) > 0
        return cache[key]

    def ready(self) -> None:
        self._get("/api/v1/query", {"query": "1"})


def default_prometheus_url(settings: Settings) -> str:
    """The local stack's Prometheus, from ``settings`` (host and ``prometheus_port``)."""
    return f"http://{settings.host}:{settings.prometheus_port}"


def same_day_last_year(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


__all__ = ["PrometheusSource", "SourceError", "at", "default_prometheus_url", "same_day_last_year", "timedelta"]
