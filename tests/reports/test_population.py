"""The child population behind the packs' rates per 10,000 children (casewatch.packs.population):
the demo authority's published figure, CASEWATCH_CHILD_POPULATION for any other, and a mistake in
it told in one sentence by the command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from casewatch.packs.population import child_populations, england_rate

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_authority_has_stocktons_children_and_the_setting_adds_others():
    # 564 looked-after children = 125 per 10,000 children (DfE, Stockton, 31 March 2025)
    assert child_populations("") == {"E06000004": 45_120}
    assert child_populations("E06000001=20500, E06000004=45000") == {"E06000004": 45_000, "E06000001": 20_500}


@pytest.mark.parametrize("text", ["E06000001", "E06000001=", "E06000001=-3", "=100", "E06000001=lots"])
def test_a_setting_that_is_not_code_equals_children_is_refused(text):
    with pytest.raises(ValueError, match="CASEWATCH_CHILD_POPULATION"):
        child_populations(text)


def test_england_rates_round_as_published():
    # 81,770 looked-after children over England's 12.194 million children: 67.06 -> 67 (DfE: 67)
    assert england_rate(81_770) == 67
    assert england_rate(None) is None


def test_the_command_says_what_is_wrong_with_the_setting(tmp_path):
    import os
    done = subprocess.run([sys.executable, "-m", "casewatch.cli", "report", "cabinet", "--period", "2026-Q2",
                           "--la", "E06000004", "--prometheus", "http://127.0.0.1:9", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CASEWATCH_CHILD_POPULATION": "E06000004=many"})
    assert done.returncode == 2
    assert "CASEWATCH_CHILD_POPULATION" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
