"""The alert thresholds of prometheus/rules/casewatch_thresholds.yml, read for the boards' RAG bands.

The thresholds are set in the metric catalogue (``casewatch.domain.catalogue.THRESHOLDS``, their
owner); that rule file is generated from it (``python -m casewatch.domain.catalogue``) and checked
against it by tests/unit/domain/test_catalogue_agreement.py. The alert rules compare against its
constant series, and the boards and packs read the same file, so a deployment's marks are the
numbers its alerts use.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS_FILE = PROJECT_ROOT / "prometheus" / "rules" / "casewatch_thresholds.yml"
_PREFIX = "casewatch:threshold:"
_CONSTANT = re.compile(r"^\s*vector\(\s*(-?\d+(?:\.\d+)?)\s*\)\s*$")


class ThresholdFileError(ValueError):
    """The thresholds rule file does not have the expected shape."""


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    data = yaml.safe_load(path.read_text())
    out: dict[str, float] = {}
    for group in data.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("record", "")
            if not name.startswith(_PREFIX):
                raise ThresholdFileError("every rule in the thresholds file must record casewatch:threshold:*")
            match = _CONSTANT.match(str(rule.get("expr", "")))
            if not match:
                raise ThresholdFileError(f"threshold {name} must be a constant vector(<number>)")
            out[name[len(_PREFIX):]] = float(match.group(1))
    return out
