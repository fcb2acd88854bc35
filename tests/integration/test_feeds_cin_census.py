"""CIN census XML imported: referrals by source group and re-referrals within 12 months for
2021-22 (1 April 2021 - 31 March 2022), through the domain API, equal a separate pandas
calculation straight from the XML; the deliberately invalid 2025-26 sample lands in dead letters."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory
from casewatch.domain.indicators import contribution
from services.feeds.cin_census import CinCensusImport
from services.feeds.envelope import FeedContext, FeedConfigError, resolve_la_code

EXTERNAL = Path(__file__).resolve().parents[1] / "data" / "external" / "cin-census-fake"
FAKE = EXTERNAL / "fake_CIN_data.xml"
INVALID = EXTERNAL / "CIN_Census_2026.xml"
AS_OF = date(2022, 3, 31)

# domain.md T1 dashboard groups, written out by hand.
GROUP = {"1A": "individual", "1B": "individual", "1C": "individual", "1D": "individual",
         "2A": "schools_education", "2B": "schools_education", "3A": "health", "3B": "health", "3C": "health",
         "3D": "health", "3E": "health", "3F": "health", "4": "housing", "5A": "la_services",
         "5B": "la_services", "5C": "la_services", "5D": "la_services", "6": "police", "7": "legal", "8": "other",
         "9": "anonymous_unknown", "10": "anonymous_unknown"}


def _import(path: Path, la_code: str = "E10000002", notes: list | None = None):
    events, dead = [], []
    run = CinCensusImport(lambda header: FeedContext(la_code, "import:cin-census"), events.append, dead.append,
                          note=lambda name, n=1: (notes if notes is not None else []).extend([name] * n))
    header = run.run(path)
    return events, dead, header


@pytest.fixture(scope="module")
def imported():
    return _import(FAKE)


# The census period of the fake file (DfE validator): 1 April of the year before the header's
# ReferenceDate (2022-07-21) up to the ReferenceDate. An episode referred after the reference
# date, or closed before the period began, is not an episode of this census (validator rules on
# the referral and closure dates), so neither side counts it.
PERIOD_START, REFERENCE_DATE = "2021-04-01", "2022-07-21"


def _in_census(d) -> bool:
    closure = d.findtext("CINclosureDate") or ""
    return d.findtext("CINreferralDate") <= REFERENCE_DATE and not (closure and closure < PERIOD_START)


@pytest.fixture(scope="module")
def referrals():
    rows = []
    for child in ET.parse(FAKE).getroot().iter("Child"):
        child_id = child.findtext("ChildIdentifiers/LAchildID")
        for d in child.findall("CINdetails"):
            if _in_census(d):
                rows.append({"child": child_id, "date": d.findtext("CINreferralDate"),
                             "source": d.findtext("ReferralSource")})
    df = pd.DataFrame(rows)
    df["date"] = pd.to_datetime(df["date"])
    return df


def test_referrals_by_source_group_and_rereferrals_2021_22(imported, referrals):
    events, _, _ = imported
    # -- independent: pandas on the raw XML
    fy = referrals[referrals.date.between("2021-04-01", "2022-03-31")]
    by_group = fy.source.map(GROUP).value_counts().to_dict()
    rereferrals = 0
    for row in fy.itertuples():
        earlier = referrals[(referrals.child == row.child) & (referrals.date < row.date)
                            & (referrals.date >= row.date - pd.DateOffset(months=12))]
        rereferrals += int(len(earlier) > 0)
    assert len(fy) == 54  # the source's notes: 54 referrals in 2021-22

    # -- imported: events -> ChildHistory -> contribution -> Aggregate
    calendar = WorkingDayCalendar()
    aggregate = Aggregate(calendar, AS_OF)
    by_child = defaultdict(list)
    for ev in events:
        by_child[ev["child_ref"]].append(ev)
    for evs in by_child.values():
        aggregate.apply(None, contribution(ChildHistory(evs), AS_OF, calendar))
    got_groups, got_rereferrals = {}, 0.0
    for metric, labels, value in aggregate.samples():
        if labels.get("window") != "12m" or not value:
            continue
        if metric == "casewatch_referrals":
            got_groups[labels["source_group"]] = got_groups.get(labels["source_group"], 0) + value
        elif metric == "casewatch_rereferrals":
            got_rereferrals += value
    assert got_groups == {k: float(v) for k, v in by_group.items()}
    assert got_rereferrals == rereferrals
    assert sum(by_group.values()) == 54 and len(by_group) >= 5


def test_records_dated_after_the_census_reference_date_are_dead_letters_and_the_rest_is_sent(imported):
    """The header's ReferenceDate is 2022-07-21 (the fake generator's). The DfE validator rejects
    dates after the reference date: an episode referred after it is dropped whole (one dead letter,
    its closure listed as a further problem), a closure after it is dropped (the referral sent)."""
    events, dead, header = imported
    assert header.lea == "975" and header.reference_date == date(2022, 7, 21)
    root = ET.parse(FAKE).getroot()
    ref = "2022-07-21"
    late_referrals = late_closures = early_closures = 0
    for d in root.iter("CINdetails"):
        closure = d.findtext("CINclosureDate") or ""
        if d.findtext("CINreferralDate") > ref:
            late_referrals += 1
        elif closure and closure < PERIOD_START:
            early_closures += 1
        elif closure > ref:
            late_closures += 1
    assert late_referrals > 0 and late_closures > 0 and early_closures > 0
    got = sorted((d.reason, d.loc) for d in dead)
    assert got == sorted(
        [("after_census_reference_date", "CINdetails.CINreferralDate")] * late_referrals
        + [("before_census_year", "CINdetails.CINclosureDate")] * early_closures
        + [("after_census_reference_date", "CINdetails.CINclosureDate")] * late_closures)
    assert sum(1 for ev in events if ev["event_type"] == "referral.received") == \
        402 - late_referrals - early_closures
    again, _, _ = _import(FAKE)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]


def test_cin_open_at_31_march_2022_equals_the_census_counting(imported):
    # CIN census, children in need at 31 March: "a child with an episode of need open on 31 March"
    # (referral on or before 31 March, no closure date or a closure after 31 March), counting
    # children once; an episode whose referral led to no further action (ReferralNFA true) is not
    # an episode of need. Every episode of the fake file is ReferralNFA true, so also check the
    # count the same file gives with the flags removed.
    events, _, _ = imported
    root = ET.parse(FAKE).getroot()

    def expected(nfa_counts: bool) -> int:
        open_children = set()
        for child in root.iter("Child"):
            for d in child.findall("CINdetails"):
                if not _in_census(d):
                    continue
                nfa = d.findtext("ReferralNFA") in ("true", "1")
                closure = d.findtext("CINclosureDate")
                if d.findtext("CINreferralDate") <= "2022-03-31" and (not closure or closure > "2022-03-31") \
                        and not (nfa and nfa_counts):
                    open_children.add(child.findtext("ChildIdentifiers/LAchildID"))
        return len(open_children)

    def casewatch(evs) -> float:
        calendar = WorkingDayCalendar()
        aggregate = Aggregate(calendar, AS_OF)
        by_child = defaultdict(list)
        for ev in evs:
            by_child[ev["child_ref"]].append(ev)
        for child, child_events in by_child.items():
            aggregate.apply(None, contribution(ChildHistory(child_events), AS_OF, calendar))
        return sum(v for m, _, v in aggregate.samples() if m == "casewatch_cin_open")

    # The file has children whose one episode closed on the day the next was referred: still in need.
    same_day = {c.findtext("ChildIdentifiers/LAchildID") for c in root.iter("Child")
                if {d.findtext("CINclosureDate") for d in c.findall("CINdetails")}
                & {d.findtext("CINreferralDate") for d in c.findall("CINdetails")}}
    assert len(same_day) == 3
    assert casewatch(events) == expected(True) == 0
    without_nfa = [{**ev, "referral_nfa": False} if ev["event_type"] == "referral.received" else ev for ev in events]
    assert casewatch(without_nfa) == expected(False) > 50


def test_identifying_elements_never_reach_an_event(imported):
    events, _, _ = imported
    root = ET.parse(FAKE).getroot()
    upns = {el.text for el in root.iter("UPN")}
    dobs = {el.text for el in root.iter("PersonBirthDate")}
    for ev in events:
        values = {str(v) for v in ev.values()}
        assert not values & upns
        assert not values & dobs - {ev.get("referral_date"), ev.get("closure_date"), ev.get("date")}
        assert "UPN" not in ev and "PersonBirthDate" not in ev


def test_invalid_2026_sample_lands_in_dead_letters_with_every_problem():
    notes: list[str] = []
    events, dead, header = _import(INVALID, notes=notes)
    got = sorted((d.reason, d.loc, d.payload.get("child_ref"), tuple(d.also)) for d in dead)
    # The census period: 1 April 2023 (the year before the ReferenceDate's) to 31 March 2024.
    assert got == sorted([
        # child 1: the episode closed 2023-02-27, before the census period: not an episode of this
        # census, dropped whole; its one dead letter lists every other problem it has too: the
        # assessment starts 2028-04-28 (after the reference date) and is authorised 2020-09-19
        # (before its start); the S47 (2022-06-02) and CP plan (2022-02-17) precede the referral
        # (2022-10-06); a court application dated 2026-12-18 (after the reference date) for which
        # the census has no order sought
        ("before_census_year", "CINdetails.CINclosureDate", "DfEX0000001",
         (("after_census_reference_date", "CINdetails.Assessments.AssessmentActualStartDate"),
          ("end_before_start", "CINdetails.Assessments.AssessmentAuthorisationDate"),
          ("before_referral", "CINdetails.Section47.S47ActualStartDate"),
          ("before_referral", "CINdetails.ChildProtectionPlans.CPPstartDate"),
          ("after_census_reference_date", "PreProceedingsandFGDM.CourtAppDate"),
          ("required_field_not_in_source", "PreProceedingsandFGDM.order_sought"))),
        # child 2: referred 2024-10-24, after the reference date: dropped whole; it also closes
        # after the reference date (2024-10-29) and its assessment starts before the referral
        ("after_census_reference_date", "CINdetails.CINreferralDate", "child_fails_assessments",
         (("after_census_reference_date", "CINdetails.CINclosureDate"),
          ("before_referral", "CINdetails.Assessments.AssessmentActualStartDate"))),
    ])
    # A stray text node inside ChildIdentifiers drops nothing: a note, not a dead letter.
    assert "stray_text" in notes and "stray_text" not in {d.reason for d in dead}
    for d in dead:  # reasons never quote an input value
        record = d.to_record("import:cin-census")
        assert "2028" not in str(record["errors"]) and "DfEX" not in str(record["errors"])
        assert len(record["errors"]) == 1 + len(d.also)
    assert events == []
    assert header.lea == "201"


def test_an_unknown_old_la_number_needs_la_code_or_a_mapping():
    with pytest.raises(FeedConfigError):
        resolve_la_code(None, "975")  # the fake file's LEA: no English authority has it
    assert resolve_la_code(None, "975", {"975": "E10000002"}) == "E10000002"
    assert resolve_la_code(None, "808") == "E06000004"
    assert resolve_la_code(None, "201") == "E09000001"  # the 2026 sample's City of London


def _cli(args, capsys):
    from casewatch.cli import main
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_folder_of_several_census_files_imports_every_one_and_lists_them(tmp_path, capsys):
    import json
    import shutil
    folder = tmp_path / "census"
    folder.mkdir()
    shutil.copy(FAKE, folder / FAKE.name)
    shutil.copy(INVALID, folder / INVALID.name)
    out = tmp_path / "ev.jsonl"
    code, stdout, _ = _cli(["import", "cin-census", str(folder), "--la-map", "975=E10000002", "--out", str(out)],
                           capsys)
    assert code == 0
    assert stdout.startswith("CIN census import (2 file(s))")
    assert "file CIN_Census_2026.xml: census 2023-24 (reference date 2024-03-31), LA 201 -> E09000001, 2 children" \
        in stdout
    assert "file fake_CIN_data.xml: census 2021-22 (reference date 2022-07-21), LA 975 -> E10000002, 332 children" \
        in stdout
    assert "notes (nothing dropped):" in stdout and "note stray_text" in stdout
    events = [json.loads(line) for line in out.read_text().splitlines()]
    single_fake, _, _ = _import(FAKE)
    single_invalid, _, _ = _import(INVALID, la_code="E09000001")
    def shape(evs):  # event ids depend on the configured pseudonymisation key: compare content
        return sorted(tuple(sorted((k, str(v)) for k, v in e.items() if k not in ("event_id", "la_code")))
                      for e in evs)
    assert shape(events) == shape(single_fake + single_invalid)
    assert {e["la_code"] for e in events} == {"E10000002"}  # the 2026 sample's two episodes are dropped
    # The same census twice is refused, naming both files.
    shutil.copy(FAKE, folder / "copy_of_fake.xml")
    code, stdout, stderr = _cli(["import", "cin-census", str(folder), "--la-map", "975=E10000002", "--dry-run"],
                                capsys)
    assert code == 2 and stdout == "" and stderr.count("\n") == 1
    assert "copy_of_fake.xml" in stderr and "fake_CIN_data.xml" in stderr


_PEAK = """
import sys
from pathlib import Path
from lxml import etree
from services.feeds.cin_census import CinCensusImport
from services.feeds.envelope import FeedContext

def high_water_kb():  # VmHWM: this process's peak resident memory (reset by exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

before = high_water_kb()
n = [0]
if sys.argv[1] == "stream":
    CinCensusImport(lambda h: FeedContext("E10000002", "import:cin-census"),
                    lambda ev: n.__setitem__(0, n[0] + 1), lambda d: None).run(Path(sys.argv[2]))
else:
    tree = etree.parse(sys.argv[2])
    n[0] = sum(1 for _ in tree.iter("Child"))
print(n[0], high_water_kb() - before)
"""


def test_streaming_keeps_memory_below_holding_the_whole_file(tmp_path):
    """On a file 40 times the sample (10 MB), the importer's peak memory grows by less than a
    quarter of what merely loading the whole file as a tree takes (what iterparse with clearing
    avoids)."""
    import subprocess
    import sys
    text = FAKE.read_text()
    head, rest = text.split("<Children>", 1)
    children, tail = rest.rsplit("</Children>", 1)
    big = tmp_path / "big.xml"
    with big.open("w") as fh:
        fh.write(head + "<Children>")
        for _ in range(40):
            fh.write(children)
        fh.write("</Children>" + tail)
    root = Path(__file__).resolve().parents[2]

    def peak(mode):
        out = subprocess.run([sys.executable, "-c", _PEAK, mode, str(big)], cwd=root, capture_output=True,
                             text=True, check=True).stdout.split()
        return int(out[0]), int(out[1])

    streamed_events, streamed_kb = peak("stream")
    children_in_tree, tree_kb = peak("tree")
    one_copy, _, _ = _import(FAKE)
    assert streamed_events == 40 * len(one_copy) and children_in_tree == 40 * 332
    assert streamed_kb * 4 < tree_kb
