"""Write and check the generated artefacts: the board JSON and the ratio recording rules.

`casewatch dashboards build` writes them; `casewatch dashboards check` (and the unit tests) fail
when the committed files differ from what the code would generate now.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from dashboards.boards import all_boards
from dashboards.measures import RULES_HEADER, recording_rules

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
GENERATED_DIR = PACKAGE_DIR / "generated"
RATIO_RULES_FILE = PROJECT_ROOT / "prometheus" / "rules" / "casewatch_ratios.yml"

# What each template variable stands for when a panel query is run outside Grafana.
VARIABLE_VALUES = {"la": ".*", "team": ".*", "window": "12m"}


def rendered() -> dict[Path, str]:
    """Every generated file and its exact text."""
    files: dict[Path, str] = {}
    for board in all_boards():
        files[GENERATED_DIR / f"{board.uid}.json"] = json.dumps(board.render(), indent=2, sort_keys=True) + "\n"
    files[RATIO_RULES_FILE] = RULES_HEADER + yaml.safe_dump(recording_rules(), sort_keys=False, width=120)
    return files


def build() -> list[Path]:
    GENERATED_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in rendered().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    for stale in GENERATED_DIR.glob("*.json"):
        if stale not in rendered():
            stale.unlink()
            written.append(stale)
    return written


def stale_files() -> list[Path]:
    """Generated files that are missing, out of date, or no longer generated."""
    files = rendered()
    out = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    out += [p for p in GENERATED_DIR.glob("*.json") if p not in files]
    return out


def board_folders() -> dict[str, str]:
    return {board.uid: board.folder for board in all_boards()}


def substitute_variables(expr: str, values: dict[str, str] = VARIABLE_VALUES) -> str:
    return re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), expr)


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) for every panel target, with template variables replaced
    by match-all values, so a live test can run each against Prometheus."""
    out = []
    for board in all_boards():
        for panel in board.render()["panels"]:
            for target in panel.get("targets", []):
                out.append((board.uid, panel["title"], substitute_variables(target["expr"])))
    return out
