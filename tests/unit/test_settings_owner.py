"""Settings are read in one place: no module of casewatch/, services/, schemas/ or dashboards/
reads a ``CASEWATCH_*`` variable from the environment itself (``os.environ[...]``,
``os.environ.get``, ``os.getenv``, ``in os.environ``, a copy of the whole environment) outside
casewatch/config.py (the Settings) and casewatch/bootstrap.py (their one reader). What such a
module needs is a field of Settings handed in by its caller. And the two settings that were read
elsewhere (CASEWATCH_DRIFT_WORKDAYS, CASEWATCH_CHILD_POPULATION) reach the engine's figures, the
backfill and the packs from Settings. Expected figures written by hand."""
from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from casewatch.config import Settings
from casewatch.domain.calendar import WorkingDayCalendar

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("casewatch", "services", "schemas", "dashboards")
OWNERS = {"casewatch/config.py", "casewatch/bootstrap.py"}
# Reads that are legitimately something else, each with its reason: (path, line text) -> why.
ALLOWED = {
    ("casewatch/stack/processes.py", "full_env = dict(os.environ)"):
        "the stack starts each part with the whole environment (its CASEWATCH_* settings included), "
        "for the child process's own Settings to read",
}


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ``."""
    return ((isinstance(node, ast.Attribute) and node.attr == "environ") or
            (isinstance(node, ast.Name) and node.id == "environ"))


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments (a variable name kept in a constant)."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def _names_casewatch(key: ast.AST | None, constants: dict[str, str]) -> bool:
    """Whether a key names a CASEWATCH_* variable, or may (anything that is not a plain other name)."""
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        return key.value.startswith("CASEWATCH_")
    if isinstance(key, ast.Name) and key.id in constants:
        return constants[key.id].startswith("CASEWATCH_")
    return True  # a computed key, or the whole environment: counted


def environment_reads(source: str) -> list[int]:
    """The lines of ``source`` that read a CASEWATCH_* variable (or the whole environment)."""
    tree = ast.parse(source)
    constants = _constants(tree)
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            if _names_casewatch(node.slice, constants):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            f = node.func
            key = node.args[0] if node.args else None
            if isinstance(f, ast.Attribute) and _is_environ(f.value) and f.attr in ("get", "copy", "items", "keys",
                                                                                      "values", "__getitem__"):
                if f.attr != "get" or _names_casewatch(key, constants):
                    lines.append(node.lineno)
            elif ((isinstance(f, ast.Attribute) and f.attr == "getenv") or
                  (isinstance(f, ast.Name) and f.id == "getenv")) and _names_casewatch(key, constants):
                lines.append(node.lineno)
            elif any(_is_environ(a) for a in node.args):  # dict(os.environ), {**os.environ} below
                lines.append(node.lineno)
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            if _names_casewatch(node.left, constants):
                lines.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(k is None and _is_environ(v) for k, v in zip(node.keys, node.values)):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_the_scan_finds_every_way_of_reading_the_environment():
    planted = ("import os\nfrom os import environ, getenv\n"
               "ENV = 'CASEWATCH_CHILD_POPULATION'\nOTHER = 'GRAFANA_URL'\n"
               "a = os.environ.get(ENV, '')\n"                    # 5
               "b = os.environ['CASEWATCH_DRIFT_WORKDAYS']\n"     # 6
               "c = os.getenv('CASEWATCH_X')\n"                   # 7
               "d = 'CASEWATCH_Y' in os.environ\n"                # 8
               "e = dict(os.environ)\n"                           # 9
               "f = {**environ, 'A': '1'}\n"                      # 10
               "g = getenv('CASEWATCH_Z')\n"                      # 11
               "h = os.environ.get(OTHER)\n"                      # other programs' variables: no
               "os.environ['CASEWATCH_KEY_FILE'] = 'x'\n"         # a write (for child processes): no
               "i = os.environ.copy()\n")                         # 14
    assert environment_reads(planted) == [5, 6, 7, 8, 9, 10, 11, 14]


def test_only_the_settings_read_casewatch_variables_from_the_environment():
    found, allowed_seen = {}, set()
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in OWNERS:
                continue
            text = path.read_text(encoding="utf-8").splitlines()
            for line in environment_reads("\n".join(text)):
                key = (relative, text[line - 1].strip())
                if key in ALLOWED:
                    allowed_seen.add(key)
                else:
                    found.setdefault(relative, []).append(f"{line}: {key[1]}")
    assert found == {}, ("make it a field of casewatch.config.Settings and hand it in from the caller "
                         f"(casewatch.bootstrap), or allow-list it here with the reason: {found}")
    assert allowed_seen == set(ALLOWED), f"allow-listed reads no longer there: {set(ALLOWED) - allowed_seen}"


# -- CASEWATCH_DRIFT_WORKDAYS: a setting, handed to the domain ---------------------------------
# A CP plan started Mon 22 Dec 2025 and nothing since. Working days in [22 Dec 2025, 8 Jan 2026):
# 22, 23, 24, 29, 30, 31 Dec, 2, 5, 6, 7 Jan = 10 (25, 26 Dec and 1 Jan are bank holidays).
PLAN = {"event_id": "p", "event_type": "cp_plan.started", "la_code": "E06000004", "team": "cp_1",
        "child_ref": "c1", "plan_ref": "P1", "start_date": "2025-12-22", "initial_category": "NEG"}
DRIFT = ("casewatch_drift_cases", (("case_type", "cp"), ("la", "E06000004"), ("team", "cp_1")))
ON = date(2026, 1, 8)


def test_the_drift_setting_is_parsed_by_settings_and_a_mistake_names_it():
    assert Settings(drift_workdays="").drift_limits == {"cin": 20, "cp": 10, "lac": 20}
    assert Settings(drift_workdays="cp=11").drift_limits == {"cin": 20, "cp": 11, "lac": 20}
    with pytest.raises(ValidationError) as err:
        Settings(drift_workdays="cp=soon")
    assert err.value.errors()[0]["loc"] == ("drift_workdays",)
    assert "CASEWATCH_DRIFT_WORKDAYS" in str(err.value)


def test_the_drift_setting_reaches_the_engines_figures(monkeypatch):
    from casewatch.processing.figures import PartitionedFigures
    monkeypatch.setenv("CASEWATCH_DRIFT_WORKDAYS", "cp=2")  # the environment is no longer read here

    def drifting(limits) -> float:
        figures = PartitionedFigures(WorkingDayCalendar(), lambda: ON, drift_limits=limits)
        figures.apply(0, "c1", [dict(PLAN)], None)
        return {(metric, labels): value for metric, labels, value in figures.samples()}.get(DRIFT, 0.0)

    assert drifting(Settings().drift_limits) == 1.0                        # 10 working days >= 10
    assert drifting(Settings(drift_workdays="cp=11").drift_limits) == 0.0  # 10 < 11


def test_the_drift_setting_reaches_the_backfill():
    from casewatch.adapters.prometheus.backfill import daily_samples

    def drifting(limits) -> float:
        [(day, samples)] = list(daily_samples([dict(PLAN)], ON, ON, WorkingDayCalendar(), drift_limits=limits))
        return {(m, tuple(sorted(l))): v for m, l, v in samples}.get(DRIFT, 0.0)

    assert drifting(Settings().drift_limits) == 1.0
    assert drifting(Settings(drift_workdays="cp=11").drift_limits) == 0.0


def test_the_drift_setting_titles_the_packs_drift_measure():
    from casewatch.packs.catalogue import CABINET_MEASURES, cabinet_measures
    [drift] = [m for m in cabinet_measures(Settings(drift_workdays="cp=11").drift_limits) if m.key == "drift_cases"]
    assert drift.title == "Drift: no activity for CIN 20, CP 11, LAC 20 working days"
    [default] = [m for m in CABINET_MEASURES if m.key == "drift_cases"]
    assert default.title == "Drift: no activity for CIN 20, CP 10, LAC 20 working days"
