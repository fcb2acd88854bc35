"""The layers of the code base (docs/architecture.md) are contracts in pyproject.toml, checked by import-linter's
``lint-imports``: they hold on the tree as it is, and each one breaks when a deliberate back-import is planted in a
copy of the tree (so a contract that checks nothing would fail here)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("casewatch", "schemas", "services", "dashboards")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_layers_hold():
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Contracts: 7 kept, 0 broken", done.stdout), done.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The four root packages and pyproject.toml, copied (sources only)."""
    copy = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


# (file that gets the back-import, the import, the contract it must break, the import chain named)
BACK_IMPORTS = [
    ("casewatch/domain/__init__.py", "import services.engine", "casewatch.domain is pure",
     "casewatch.domain -> services.engine"),
    ("casewatch/domain/history.py", "import faust", "casewatch.domain is pure", "casewatch.domain.history -> faust"),
    ("casewatch/processing/figures.py", "import casewatch.config", "casewatch.processing imports the domain only",
     "casewatch.processing.figures -> casewatch.config"),
    ("schemas/types.py", "import casewatch.edge.pseudonymise", "schemas (the wire models) import only the domain",
     "schemas.types -> casewatch.edge.pseudonymise"),
    ("casewatch/config.py", "import services.ingest.api", "casewatch (the library) never imports the services",
     "casewatch.config -> services.ingest.api"),
    ("casewatch/edge/authorisation.py", "import casewatch.adapters.kafka.event_sources",
     "the edge's checks (pseudonymise, authorisation) stand below",
     "casewatch.edge.authorisation -> casewatch.adapters.kafka.event_sources"),
    ("services/feeds/sinks.py", "import services.ingest.api", "one service never imports another service",
     "services.feeds.sinks -> services.ingest.api"),
    ("casewatch/adapters/kafka/publisher.py", "import faust", "Faust is imported by the engine service and its",
     "casewatch.adapters.kafka.publisher -> faust"),
]


@pytest.mark.parametrize("path, line, contract, chain", BACK_IMPORTS, ids=[b[0] + ": " + b[1] for b in BACK_IMPORTS])
def test_a_back_import_breaks_its_contract(tree_copy: Path, path: str, line: str, contract: str, chain: str):
    target = tree_copy / path
    original = target.read_text()
    target.write_text(original + f"\n{line}  # planted by tests/unit/test_layers.py\n")
    try:
        done = lint(tree_copy)
    finally:
        target.write_text(original)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert re.search(r"Contracts: \d+ kept, [1-6] broken", out), out  # an indirect import may break others too
    broken = out[out.index("Broken contracts"):]
    assert contract in broken, out
    assert chain in broken, out
