"""README's "Ports" table lists every port setting with its default, and nothing else: a new port
setting, a changed default or a row for a setting that is gone fails here."""
from __future__ import annotations

import re
from pathlib import Path

from casewatch.config import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def _ports_table() -> list[list[str]]:
    text = README.read_text()
    start = text.index("**Ports.**")
    table = text[text.index("\n|", start) + 1:]
    rows = []
    for line in table.splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert rows[0] == ["variable", "default", "used by"] and set(rows[1][0]) == {"-"}
    return rows[2:]


def _readme_ports() -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for variable, default, _ in _ports_table():
        name = re.fullmatch(r"`(CASEWATCH_[A-Z_]+)`", variable)
        if name is None:
            continue
        number = re.match(r"\d+", default)
        assert number or default.startswith("–"), f"{variable}: default {default!r} is neither a port nor –"
        assert name.group(1) not in found, f"{variable} listed twice"
        found[name.group(1)] = int(number.group()) if number else None
    return found


def _port_fields(model) -> dict[str, int | None]:
    return {f"CASEWATCH_{name.upper()}": field.default for name, field in model.model_fields.items()
            if name.endswith("_port")}


def test_readme_lists_every_port_setting_with_its_default():
    settings_ports = _port_fields(Settings)
    assert "CASEWATCH_SMTP_PORT" in settings_ports and "CASEWATCH_NOTIFIER_READ_PORT" in settings_ports
    assert _readme_ports() == settings_ports


def test_the_notifiers_own_port_settings_are_listed_too():
    import casewatch.config
    notifier = getattr(casewatch.config, "NotifierSettings", None)
    if notifier is None:
        try:
            from casewatch.config import NotifierSettings as notifier
        except ModuleNotFoundError:  # folded into Settings itself (issue 14): the test above covers it
            assert "smtp_host" in Settings.model_fields
            return
    assert set(_port_fields(notifier)) <= set(_readme_ports())


def test_the_feeds_adapters_port_is_the_commands_default():
    from casewatch.cli import build_parser
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    serve = commands["feeds"]._subparsers._group_actions[0].choices["serve"]
    [feeds] = [row for row in _ports_table() if "feeds serve --port" in row[0]]
    assert int(feeds[1]) == serve.get_default("port")
