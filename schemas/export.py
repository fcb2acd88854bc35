"""JSON Schema export: one file per event type plus the union, under ``schemas/json/``.

Code-list fields carry ``enum`` = the codes of the **latest** collection year on file (and
``x-code-list`` = the list's name); events of earlier years are validated by the models, which
know every year's lists. Rules across fields (dates in order, configured teams) are not in the
exported schema either.
"""
from __future__ import annotations

import json
from pathlib import Path

from schemas import code_lists
from schemas.events import EVENT_TYPES, event_adapter

JSON_DIR = Path(__file__).resolve().parent / "json"
UNION_FILE = "events.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """``{file name: text}`` of every schema file, exactly as ``export`` writes it."""
    latest = code_lists.latest_year()
    files: dict[str, str] = {}
    for event_type, cls in EVENT_TYPES.items():
        schema = cls.model_json_schema()
        schema = {"$schema": DRAFT, "$id": f"casewatch:{event_type}", "x-code-lists-year": latest, **schema}
        files[f"{event_type}.schema.json"] = _render(schema)
    union = event_adapter.json_schema()
    union = {"$schema": DRAFT, "$id": "casewatch:event", "title": "casewatch case event",
             "x-code-lists-year": latest, **union}
    files[UNION_FILE] = _render(union)
    return files


def export(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = rendered()
    for name, text in wanted.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    for stray in directory.glob("*.schema.json"):
        if stray.name not in wanted:
            stray.unlink()
    return written


def stale(directory: Path = JSON_DIR) -> list[str]:
    """File names that are missing, different or left over; empty when the export is current."""
    wanted = rendered()
    problems = []
    for name, text in wanted.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name} (out of date)")
    for extra in sorted(directory.glob("*.schema.json")):
        if extra.name not in wanted:
            problems.append(f"{extra.name} (no such event type)")
    return problems


def load(event_type: str | None = None, directory: Path = JSON_DIR) -> dict:
    name = f"{event_type}.schema.json" if event_type else UNION_FILE
    return json.loads((directory / name).read_text(encoding="utf-8"))
