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

EXTERNAL = Path(__file__).resolve().parents[2].parent / "shared" / "external" / "cin-census-fake"
FAKE = EXTERNAL / "fake_CIN_data.xml"
INVALID = EXTERNAL / "CIN_Census_2026.xml"
AS_OF = date(2022, 3, 31)

# domain.md T1 dashboard groups, written out by hand.
GROUP = {"1A": "individual", "1B": "individual", "1C": "individual", "1D": "individual",
         "2A": "schools_education", "2B": "schools_education", "3A": "health", "3B": "health", "3C": "health",
         "3D": "health", "3E": "health", "3F": "health", "4": "housing", "5A": "la_services",
         "5B": "la_services", "5C": "la_services", "5D": "la_services", "6": "police", "7": "legal", "8": "other",
         "9": "anonymous_unknown", "10": "anonymous_unknown"}


def _import(path: Path, la_code: str = "E10000002"):
    events, dead = [], []
    run = CinCensusImport(lambda header: FeedContext(la_code, "import:cin-census"), events.append, dead.append)
    header = run.run(path)
    return events, dead, header


@pytest.fixture(scope="module")
def imported():
    return _import(FAKE)


@pytest.fixture(scope="module")
def referrals():
    rows = []
    for child in ET.parse(FAKE).getroot().iter("Child"):
        child_id = child.findtext("ChildIdentifiers/LAchildID")
        for d in child.findall("CINdetails"):
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
    assert len(fy) == 54  # SOURCES.md: 54 referrals in 2021-22

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


def test_every_cin_episode_gives_one_referral_and_importing_twice_changes_nothing(imported):
    events, dead, header = imported
    assert header.lea == "975"
    assert dead == []
    assert sum(1 for ev in events if ev["event_type"] == "referral.received") == 402
    again, _, _ = _import(FAKE)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]


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


def test_invalid_2026_sample_lands_in_dead_letters_with_reasons():
    events, dead, header = _import(INVALID)
    got = sorted((d.reason, d.loc, d.payload.get("child_ref")) for d in dead)
    assert got == sorted([
        # child 1: a stray text node inside ChildIdentifiers
        ("stray_text", "Child", "DfEX0000001"),
        # child 1: assessment starts 2028-04-28, authorised 2020-09-19
        ("end_before_start", "CINdetails.Assessments.AssessmentAuthorisationDate", "DfEX0000001"),
        # child 1: S47 (2022-06-02) and CP plan (2022-02-17) before the referral (2022-10-06)
        ("before_referral", "CINdetails.Section47.S47ActualStartDate", "DfEX0000001"),
        ("before_referral", "CINdetails.ChildProtectionPlans.CPPstartDate", "DfEX0000001"),
        # child 1: a court application, but the census has no order sought
        ("required_field_not_in_source", "PreProceedingsandFGDM.order_sought", "DfEX0000001"),
        # child 2: assessment starts 2023-12-25, before the referral of 2024-10-24
        ("before_referral", "CINdetails.Assessments.AssessmentActualStartDate", "child_fails_assessments"),
    ])
    for d in dead:  # reasons never quote an input value
        record = d.to_record("import:cin-census")
        assert "2028" not in str(record["errors"]) and "DfEX" not in str(record["errors"])
    kinds = sorted(ev["event_type"] for ev in events)
    assert kinds == ["cin_episode.closed", "cin_episode.closed", "icpc.held", "referral.received",
                     "referral.received"]
    assert header.lea == "201"


def test_an_unknown_old_la_number_needs_la_code_or_a_mapping():
    with pytest.raises(FeedConfigError):
        resolve_la_code(None, "975")
    assert resolve_la_code(None, "975", {"975": "E10000002"}) == "E10000002"
    assert resolve_la_code(None, "808") == "E06000004"


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
    assert streamed_events == 40 * 1004 and children_in_tree == 40 * 332
    assert streamed_kb * 4 < tree_kb
