"""casewatch/bootstrap.py is the composition root: the one reader of the settings (nothing else in
casewatch/, services/, schemas/ or dashboards/ calls ``get_settings`` or builds a ``Settings`` or
``NotifierSettings`` from the environment), and what it wires from one Settings —
the calendar, "today", the publisher, the notifier's settings — checked with fakes (no Kafka).
Expected values are written out by hand."""
from __future__ import annotations

import ast
import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from casewatch import bootstrap
from casewatch.config import Settings, get_settings
from casewatch.edge.pseudonymise import PseudonymisationKeyError

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("casewatch", "services", "schemas", "dashboards")
# What reads the environment: the cached reader and the two settings classes (built from CASEWATCH_*
# for every field not given).
READERS = {"get_settings", "Settings", "NotifierSettings"}
# The module that defines them and the one that calls them.
ALLOWED = {"casewatch/config.py", "casewatch/bootstrap.py"}


# -- the one reader of the settings ------------------------------------------------------------
def settings_reads(source: str) -> list[int]:
    """The lines of ``source`` that import or name ``get_settings``, or build a ``Settings`` or
    ``NotifierSettings`` (a type annotation naming ``Settings`` is no read)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and any(a.name == "get_settings" for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id == "get_settings":
            lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "get_settings":
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if called in READERS:
                lines.append(node.lineno)
    return sorted(set(lines))


def test_the_scan_finds_every_way_of_reading_the_settings():
    planted = ("from casewatch.config import Settings, get_settings\n"
               "import casewatch.config as config\n"
               "def a():\n    return config.get_settings()\n"
               "def b(read=get_settings):\n    return read()\n"
               "def c(s: Settings) -> Settings:\n    return config.NotifierSettings()\n"
               "d = Settings(la_codes='E06000004')\n")
    assert settings_reads(planted) == [1, 4, 5, 8, 9]
    assert settings_reads("from casewatch import bootstrap\nbootstrap.settings()\n") == []


def test_bootstrap_is_the_only_module_that_reads_the_settings():
    callers = {}
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            lines = settings_reads(path.read_text(encoding="utf-8"))
            if lines and relative not in ALLOWED:
                callers[relative] = lines
    assert callers == {}, ("take the settings from casewatch.bootstrap (bootstrap.settings() or "
                           f"bootstrap.build()) or as a parameter instead: {callers}")
    # the allowed module does call it, so the scan above looked at real files
    assert settings_reads((ROOT / "casewatch/bootstrap.py").read_text(encoding="utf-8"))


# -- the settings, read once -------------------------------------------------------------------
@pytest.fixture
def fresh_settings(monkeypatch, tmp_path):
    """The environment's settings read afresh (and again afterwards), without a .env file."""
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_settings_come_from_the_casewatch_variables_once_per_process(fresh_settings):
    fresh_settings.setenv("CASEWATCH_LA_CODES", "E06000001,E06000004")
    fresh_settings.setenv("CASEWATCH_KAFKA_PORT", "31092")
    first = bootstrap.settings()
    assert first.la_code_list == ["E06000001", "E06000004"]
    assert first.bootstrap == "127.0.0.1:31092"
    fresh_settings.setenv("CASEWATCH_KAFKA_PORT", "31093")
    assert bootstrap.settings() is first  # read once: a running process keeps its settings
    assert bootstrap.build().settings is first


def test_an_invalid_variable_is_a_validation_error_naming_it(fresh_settings):
    fresh_settings.setenv("CASEWATCH_KAFKA_PORT", "not-a-port")
    with pytest.raises(ValidationError) as err:
        bootstrap.settings()
    assert err.value.errors()[0]["loc"] == ("kafka_port",)


def test_the_notifier_settings_come_from_the_same_variables(fresh_settings):
    fresh_settings.setenv("CASEWATCH_SMTP_PORT", "2525")
    fresh_settings.setenv("CASEWATCH_STATE_DIR", "/srv/casewatch")
    notifier = bootstrap.notifier_settings()
    assert notifier.smtp_port == 2525
    assert notifier.webhook_credentials_file == Path("/srv/casewatch/notifier-webhook.secret")


# -- what is built from one Settings -----------------------------------------------------------
def test_the_calendar_applies_the_deployments_extra_and_removed_holidays():
    # 2025-06-30 is a Monday, an ordinary working day; 2025-12-25 (a Thursday) is Christmas Day.
    plain = bootstrap.build(Settings()).calendar
    assert plain.is_working_day(date(2025, 6, 30)) and not plain.is_working_day(date(2025, 12, 25))
    parts = bootstrap.build(Settings(extra_holidays="2025-06-30", removed_holidays=" 2025-12-25 ,"))
    assert not parts.calendar.is_working_day(date(2025, 6, 30))
    assert parts.calendar.is_working_day(date(2025, 12, 25))
    # Fri 27 June to Wed 2 July: Fri, Tue, Wed are working days, the Monday now is not
    assert parts.calendar.elapsed(date(2025, 6, 27), date(2025, 7, 3)) == 3
    assert parts.calendar is parts.calendar  # made once


def test_today_is_the_fixed_day_when_set_else_londons_date():
    assert bootstrap.build(Settings(fixed_today="2025-07-01")).today() == date(2025, 7, 1)
    london = ZoneInfo("Europe/London")
    before = datetime.now(london).date()
    today = bootstrap.build(Settings()).today()
    assert today in {before, datetime.now(london).date()}


class Future:
    def get(self, timeout=None):
        return "ok"

    def add_callback(self, fn, *args, **kwargs):
        fn("ok", *args, **kwargs)
        return self

    def add_errback(self, fn, *args, **kwargs):
        return self


class RecordingProducer:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def send(self, topic, key=None, value=None):
        self.sent.append((topic, json.loads(value)))
        return Future()

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        pass


def test_the_publisher_is_built_from_the_parts_settings_and_names_its_source():
    settings = Settings(pseudonymisation_key="bootstrap-test-key-0123456789abcdef", events_topic="ev-b",
                        deadletter_topic="dl-b")
    parts = bootstrap.build(settings)
    producer = RecordingProducer()
    publisher = parts.publisher("mosaic", producer=producer, max_block_ms=1234)
    assert publisher.settings is settings
    assert (publisher.source_system, publisher.source) == ("mosaic", "mosaic")
    assert publisher._producer_config["max_block_ms"] == 1234
    publisher.publish(publisher.check({"event_type": "no_such_event"}))
    loader = parts.publisher("mosaic", source="loader", producer=producer)
    loader.publish(loader.check({"event_type": "no_such_event"}))
    assert [(topic, record["source"]) for topic, record in producer.sent] == [("dl-b", "mosaic"), ("dl-b", "loader")]


def test_no_publisher_without_a_pseudonymisation_key():
    with pytest.raises(PseudonymisationKeyError):
        bootstrap.build(Settings(pseudonymisation_key=None, pseudonymisation_key_file=None)).publisher("mosaic")


# -- "today" reaches every part that asks for it -----------------------------------------------
# The ingest plausibility check: tests/unit/services/ingest/test_plausible_dates.py; the simulator's
# commands: tests/unit/services/simulator/test_simulator_today.py; the engine: PartitionedFigures is
# built with today_for(settings) (services/engine/app.py).
@pytest.fixture
def fixed_today(fresh_settings, tmp_path):
    """The environment's settings with today fixed at Tue 1 July 2025 (and a population, a drift limit)."""
    fresh_settings.setenv("CASEWATCH_FIXED_TODAY", "2025-07-01")
    fresh_settings.setenv("CASEWATCH_CHILD_POPULATION", "E06000001=20500")
    fresh_settings.setenv("CASEWATCH_DRIFT_WORKDAYS", "cp=11")
    fresh_settings.setenv("CASEWATCH_STATE_DIR", str(tmp_path / "state"))
    return fresh_settings


def test_the_packs_read_prometheus_with_the_deployments_today_populations_and_drift(fixed_today):
    from argparse import Namespace

    from casewatch.packs import commands, source
    fixed_today.setattr(source.PrometheusSource, "ready", lambda self: None)
    src = commands._source(Namespace(prometheus="http://127.0.0.1:9"))
    assert src.today() == date(2025, 7, 1)
    assert src.populations == {"E06000004": 45_120, "E06000001": 20_500}
    assert src.drift_limits == {"cin": 20, "cp": 11, "lac": 20}
    # Mon 30 June 2025 (before the fixed today) is read at its sample, 00:00 UTC: 1,751,241,600
    assert src.at(date(2025, 6, 30)) == 1_751_241_600


def test_the_workload_sheet_defaults_to_the_fixed_today(fixed_today, tmp_path):
    from argparse import Namespace

    from casewatch.packs import commands, source, workload
    fixed_today.setattr(source.PrometheusSource, "ready", lambda self: None)
    asked = []

    def build(src, la, as_of):
        asked.append((la, as_of))
        raise source.SourceError("Prometheus is not answering")

    fixed_today.setattr(workload, "build", build)
    code = commands._workload(Namespace(as_of=None, la="E06000004", prometheus="http://127.0.0.1:9",
                                        out=tmp_path, no_pdf=True))
    assert code == 2 and asked == [("E06000004", date(2025, 7, 1))]


def test_the_stacks_demo_history_ends_the_day_before_the_fixed_today(tmp_path):
    from casewatch.stack.manager import StackManager
    settings = Settings(fixed_today="2025-07-01", state_dir=tmp_path / "state")
    assert StackManager(settings).demo_until == date(2025, 6, 30)
