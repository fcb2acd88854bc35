"""The synthetic five-year SSDA903 set (tests/data/ssda903-five-year, 2017-18 to 2021-22, written
by its generate.py): the five returns imported together, and casewatch's figures at each
31 March 2018..2022 equal the DfE counting done separately with pandas on the raw rows
(``dfe_counting``, which imports nothing of casewatch)."""
from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.statutory import dfe_counting
from tests.statutory.casewatch_figures import by_child, import_ssda903, lac_figures

DATA = Path(__file__).resolve().parents[1] / "data" / "ssda903-five-year"
YEARS = (2018, 2019, 2020, 2021, 2022)


@pytest.fixture(scope="module")
def imported():
    return import_ssda903(DATA)


@pytest.fixture(scope="module")
def returns():
    return dfe_counting.read_returns({y: DATA / f"SSDA903_{y - 1}-{y % 100:02d}_episodes.csv" for y in YEARS})


@pytest.mark.parametrize("year", YEARS)
def test_figures_at_31_march_equal_the_dfe_counting(imported, returns, year):
    events, dead, _ = imported
    assert dead == []
    expected = dfe_counting.figures(returns, year)
    got = lac_figures(by_child(events), date(year, 3, 31))
    expected_float = {k: ({g: float(n) for g, n in v.items()} if isinstance(v, dict) else float(v))
                      for k, v in expected.items()}
    assert got == expected_float
    # The set is not trivial in any year.
    assert expected["lac"] > 100 and expected["started"] > 10 and expected["ceased"] > 10
    assert expected["three_plus_12m"] > 3
    if year >= 2020:  # two earlier returns hold the whole 24-month look-back
        assert expected["three_plus_24m"] > expected["three_plus_12m"]


def test_every_planted_situation_is_in_the_set(imported, returns):
    """The set holds what it claims (so the comparison above exercises each rule)."""
    _, _, notes = imported
    assert notes.count("stale_open_left_care") >= 16          # open at its 31 March, in no later return
    assert notes.count("open_end_from_duplicate") == 3        # a dropped duplicate carries its open end
    assert notes.count("stale_open_duplicate") == 3
    assert notes.count("stale_open_replaced") == 4            # interleaved chains rewritten by a later return
    assert notes.count("period_began_before_the_returns") > 50
    first = returns[2018]
    assert {"L"} <= set(first.RNE) and (returns[2019].DECOM == "2018-04-01").sum() >= 3  # moves on 1 April
    for year in (2019, 2020, 2021, 2022):
        assert dfe_counting.ceased_by_outcome(returns, year).get("not_recorded", 0) >= 4


def test_no_leaving_reason_is_invented(imported, returns):
    """Every lac.ended carries a REC some return recorded, or no reason at all (never E8 made up)."""
    events, _, _ = imported
    recorded = set()
    for f in DATA.glob("*_episodes.csv"):  # every row, short breaks included
        e = pd.read_csv(f, dtype=str, keep_default_na=False)
        dec = pd.to_datetime(e.DEC.replace("", None), format="%d/%m/%Y").dt.strftime("%Y-%m-%d")
        recorded |= set(zip(e.CHILD, dec, e.REC))
    for ev in events:
        if ev["event_type"] == "lac.ended" and "reason_ceased" in ev:
            assert (ev["child_ref"], ev["dec"], ev["reason_ceased"]) in recorded
        if ev["event_type"] == "lac.ended" and "reason_ceased" not in ev:
            assert ev.get("end_date_estimated") is True and ev["dec"].endswith("-04-01")


def test_the_generator_rewrites_the_committed_files_byte_for_byte(tmp_path):
    import shutil
    copy = tmp_path / "set"
    shutil.copytree(DATA, copy, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, str(copy / "generate.py")], check=True, capture_output=True)
    for f in sorted(DATA.glob("*.csv")):
        assert (copy / f.name).read_bytes() == f.read_bytes(), f.name


def _cli(args, capsys):
    from casewatch.cli import main
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_command_reads_every_return_of_the_folder_and_says_so(tmp_path, capsys, returns):
    """`casewatch import ssda903 DIR` with the five returns in one folder: all five are imported and
    listed in the summary, and the figures from its output equal the DfE counting."""
    import json
    out = tmp_path / "events.jsonl"
    code, stdout, _ = _cli(["import", "ssda903", str(DATA), "--la-code", "E06000004", "--out", str(out)], capsys)
    assert code == 0
    assert stdout.splitlines()[0].startswith("SSDA903 import (5 return(s))")
    for y in YEARS:
        label = f"{y - 1}-{y % 100:02d}"
        rows = len(pd.read_csv(DATA / f"SSDA903_{label}_episodes.csv"))
        assert f"return {label}: {rows} episode rows (SSDA903_{label}_episodes.csv, SSDA903_{label}_header.csv)" \
            in stdout
    assert "read episodes" in stdout and str(sum(len(r) for r in (pd.read_csv(f) for f in DATA.glob("*_episodes.csv")))) \
        in stdout
    events = [json.loads(line) for line in out.read_text().splitlines()]
    for y in (2018, 2022):
        got = lac_figures(by_child(events), date(y, 3, 31))
        assert got["lac"] == len(dfe_counting.looked_after_at_31_march(returns, y))
        assert got["three_plus_12m"] == dfe_counting.three_plus_placements(returns, y, 12)


def test_returns_in_sub_folders_are_imported_too(tmp_path, capsys):
    import shutil
    for y in (2018, 2019):
        label = f"{y - 1}-{y % 100:02d}"
        (tmp_path / label).mkdir()
        shutil.copy(DATA / f"SSDA903_{label}_episodes.csv", tmp_path / label / "episodes.csv")
    code, stdout, _ = _cli(["import", "ssda903", str(tmp_path), "--la-code", "E06000004", "--dry-run"], capsys)
    assert code == 0 and "(2 return(s))" in stdout
    for label in ("2017-18", "2018-19"):
        rows = len(pd.read_csv(tmp_path / label / "episodes.csv"))
        assert f"return {label}: {rows} episode rows ({label}/episodes.csv)" in stdout


def test_a_folder_whose_returns_cannot_be_told_apart_is_refused_naming_the_files(tmp_path, capsys):
    import shutil
    shutil.copy(DATA / "SSDA903_2017-18_episodes.csv", tmp_path / "episodes.csv")
    shutil.copy(DATA / "SSDA903_2018-19_episodes.csv", tmp_path / "SSDA903_2018-19_episodes.csv")
    code, stdout, stderr = _cli(["import", "ssda903", str(tmp_path), "--la-code", "E06000004", "--dry-run"], capsys)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "episodes.csv" in stderr and "Traceback" not in stderr
    assert stderr.startswith("error: cannot tell which return episodes.csv")
    # Two episodes tables of one year: refused too, naming both.
    shutil.copy(DATA / "SSDA903_2018-19_episodes.csv", tmp_path / "episodes_2018-19_copy.csv")
    (tmp_path / "episodes.csv").unlink()
    code, _, stderr = _cli(["import", "ssda903", str(tmp_path), "--la-code", "E06000004", "--dry-run"], capsys)
    assert code == 2 and "SSDA903_2018-19_episodes.csv" in stderr and "episodes_2018-19_copy.csv" in stderr


def test_every_imported_event_passes_the_event_schema(imported):
    """What the import emits is what the edge accepts (contract C1: real RNE, began_before_data,
    lac.ended without a reason, end_date_estimated)."""
    from schemas.validation import parse_event
    events, _, _ = imported
    kinds = set()
    for ev in events:
        parsed = parse_event({**ev, "child_ref": "ps_" + "0" * 32})  # the edge puts a pseudonym here
        kinds.add((ev["event_type"], ev.get("rne"), "reason_ceased" in ev, bool(ev.get("began_before_data"))))
        assert parsed.event_type == ev["event_type"]
    assert ("lac.started", "P", False, True) in kinds and ("lac.started", "L", False, True) in kinds
    assert ("lac.ended", None, False, False) in kinds and ("lac.started", "S", False, False) in kinds
