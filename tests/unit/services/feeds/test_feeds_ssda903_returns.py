"""Which returns a folder holds (services/feeds/ssda903.find_returns): the collection year from a
file or folder name, or a YEAR column; refusals name the files."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.feeds.ssda903 import ReturnsError, find_returns, year_in_name

HEADER = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN"


@pytest.mark.parametrize("name, year", [
    ("SSDA903_2017-18_episodes.csv", 2018), ("episodes_2017_18.csv", 2018), ("episodes_201718.csv", 2018),
    ("2021-22", 2022), ("episodes_2019.csv", 2019), ("episodes.csv", None),
    ("episodes_2017-19.csv", None),        # not a collection year: 2017 and 19 are not consecutive
    ("2018_2019_episodes.csv", None),      # two different years: ambiguous
])
def test_year_in_name(name, year):
    assert year_in_name(name) == year


def _write(path: Path, rows: list[str], header: str = HEADER) -> None:
    path.write_text("\n".join([header, *rows]) + "\n")


def test_a_folder_with_years_in_the_file_names_holds_one_return_per_year(tmp_path):
    _write(tmp_path / "SSDA903_2017-18_episodes.csv", ["a,01/05/2017,S,C2,N1,U4,PR1,,,,,,"])
    _write(tmp_path / "SSDA903_2018-19_episodes.csv", ["a,01/05/2017,S,C2,N1,U4,PR1,,,,,,"])
    (tmp_path / "SSDA903_2018-19_header.csv").write_text("CHILD,SEX,DOB\na,1,01/01/2010\n")
    (tmp_path / "missing.csv").write_text("CHILD\n")
    returns, not_read = find_returns(tmp_path)
    assert [(r.year, sorted(r.files)) for r in returns] == [(2018, ["episodes"]), (2019, ["episodes", "header"])]
    assert [p.name for p in not_read] == ["missing.csv"]


def test_a_year_column_names_the_return(tmp_path):
    _write(tmp_path / "first.csv", ["a,01/05/2017,S,C2,N1,U4,PR1,,,,,,,2018"], HEADER + ",YEAR")
    (tmp_path / "first.csv").rename(tmp_path / "episodes_a.csv")
    _write(tmp_path / "episodes_b.csv", ["a,01/05/2017,S,C2,N1,U4,PR1,,,,,,,2019"], HEADER + ",YEAR")
    returns, _ = find_returns(tmp_path)
    assert [r.year for r in returns] == [2018, 2019]


def test_files_that_cannot_be_told_apart_are_refused_by_name(tmp_path):
    _write(tmp_path / "episodes.csv", [])
    _write(tmp_path / "episodes_2018-19.csv", [])
    with pytest.raises(ReturnsError, match="episodes.csv"):
        find_returns(tmp_path)
    (tmp_path / "episodes.csv").unlink()
    _write(tmp_path / "other_2018-19_episodes.csv", [])
    with pytest.raises(ReturnsError, match="episodes_2018-19.csv.*other_2018-19_episodes.csv"):
        find_returns(tmp_path)


def test_sub_folders_are_returns_and_their_names_give_the_year(tmp_path):
    for label in ("2019-20", "2020-21"):
        (tmp_path / label).mkdir()
        _write(tmp_path / label / "episodes.csv", [])
    returns, _ = find_returns(tmp_path)
    assert [(r.year, r.name) for r in returns] == [(2020, "2019-20/"), (2021, "2020-21/")]
    with pytest.raises(ReturnsError, match="--year"):
        find_returns(tmp_path, year=2020)


def test_an_episode_row_with_several_problems_gets_one_dead_letter_listing_all(tmp_path):
    from services.feeds.envelope import FeedContext
    from services.feeds.ssda903 import Ssda903Import
    _write(tmp_path / "episodes_2017-18.csv", [
        "a,01/05/2017,S,ZZ,N1,U4,PR1,01/04/2017,E99,,,,",   # unknown LS, DEC before DECOM, unknown REC
        "b,02/04/2018,S,C2,N1,U4,PR1,,,,,,",                 # starts after the return's year end
        "c,01/05/2017,S,C2,N1,U4,PR1,,,,,,",                 # fine
    ])
    events, dead = [], []
    run = Ssda903Import(FeedContext("E06000004", "import:ssda903"), events.append, dead.append)
    returns, _ = find_returns(tmp_path)
    run.load(returns[0])
    run.run()
    got = [(d.payload["child_ref"], d.reason, d.loc, d.also) for d in dead]
    assert got == [("a", "end_before_start", "episodes.DEC", [("unknown_code", "episodes.LS"),
                                                             ("unknown_code", "episodes.REC")]),
                   ("b", "after_collection_year", "episodes.DECOM", [])]
    record = dead[0].to_record("import:ssda903")
    assert [e["type"] for e in record["errors"]] == ["end_before_start", "unknown_code", "unknown_code"]
    assert [e["child_ref"] for e in events] == ["c"]
