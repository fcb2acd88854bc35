"""A synthetic CIN census (tests/data/cin-census-synthetic, 2021-22, written by its generate.py)
imported: casewatch's figures for 2021-22 / at 31 March 2022 equal a separate calculation on the
raw XML (lxml, and numpy.busday_count with the England bank holidays of the ``holidays``
package), each written from the definition quoted beside it. Nothing of casewatch is used for
the expectations."""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import holidays
import numpy as np
import pytest
from lxml import etree

from casewatch.domain.aggregate import Aggregate
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory
from casewatch.domain.indicators import contribution
from services.feeds.cin_census import CinCensusImport
from services.feeds.envelope import FeedContext

CENSUS = Path(__file__).resolve().parents[1] / "data" / "cin-census-synthetic" / "census_2021-22.xml"
YEAR_START, YEAR_END = date(2021, 4, 1), date(2022, 3, 31)
# England (and Wales) bank holidays; weekends are masked by busday_count itself.
ENGLAND = sorted(holidays.UK(subdiv="ENG", years=range(2019, 2028)))


def working_days(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (day 0 = the start day):
    numpy.busday_count counts [start, end)."""
    return int(np.busday_count(start, end, holidays=ENGLAND))


def d(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


@pytest.fixture(scope="module")
def episodes():
    out = []
    for child in etree.parse(str(CENSUS)).getroot().iter("Child"):
        ref = child.findtext("ChildIdentifiers/LAchildID")
        for e in child.findall("CINdetails"):
            out.append((ref, e))
    return out


@pytest.fixture(scope="module")
def figures():
    events = []
    run = CinCensusImport(lambda header: FeedContext("E06000004", "import:cin-census"), events.append,
                          lambda dl: pytest.fail(f"unexpected dead letter {dl.reason} {dl.loc}"))
    run.run(CENSUS)
    calendar = WorkingDayCalendar()
    aggregate = Aggregate(calendar, YEAR_END)
    by_child = defaultdict(list)
    for ev in events:
        by_child[ev["child_ref"]].append(ev)
    for evs in by_child.values():
        aggregate.apply(None, contribution(ChildHistory(evs), YEAR_END, calendar))
    totals: dict[str, float] = defaultdict(float)
    for metric, labels, value in aggregate.samples():
        if labels.get("window") in (None, "12m"):
            totals[metric] += value
    return totals


def test_the_working_day_count_matches_the_worked_examples():
    # Fri 19 Dec 2025 + 45 wd = Wed 25 Feb 2026; Fri 27 Mar 2026 + 15 wd = Tue 21 Apr 2026 (Easter).
    assert working_days(date(2025, 12, 19), date(2026, 2, 25)) == 45
    assert working_days(date(2026, 3, 27), date(2026, 4, 21)) == 15
    assert working_days(date(2021, 12, 24), date(2021, 12, 29)) == 1  # 27, 28 Dec 2021: substitute days


def test_assessments_completed_within_45_working_days(episodes, figures):
    # Working Together: "The maximum timeframe for the assessment to conclude, such that it is
    # possible to reach a decision on next steps, should be no longer than 45 working days from the
    # point of referral." Completed in 2021-22 = AssessmentAuthorisationDate in the year; in time =
    # working days from the episode's CINreferralDate to the authorisation <= 45.
    completed = in_time = 0
    for _, e in episodes:
        referral = d(e.findtext("CINreferralDate"))
        for a in e.findall("Assessments"):
            done = d(a.findtext("AssessmentAuthorisationDate"))
            if done is not None and YEAR_START <= done <= YEAR_END:
                completed += 1
                in_time += working_days(referral, done) <= 45
    assert completed > 100 and 0 < in_time < completed
    assert figures["casewatch_assessments_completed"] == completed
    assert figures["casewatch_assessments_completed_in_time"] == in_time


def test_icpcs_within_15_working_days_of_the_s47(episodes, figures):
    # Working Together: the initial child protection conference "should take place within 15
    # working days of the strategy discussion, or the strategy discussion at which section 47
    # enquiries were initiated if more than one has been held". The census has no strategy
    # discussion date: the S47ActualStartDate stands for it. ICPCs in 2021-22 = DateOfInitialCPC in
    # the year; in time = working days from S47ActualStartDate to DateOfInitialCPC <= 15.
    icpcs = in_time = 0
    for _, e in episodes:
        for s in e.findall("Section47"):
            icpc = d(s.findtext("DateOfInitialCPC"))
            if icpc is not None and YEAR_START <= icpc <= YEAR_END:
                icpcs += 1
                in_time += working_days(d(s.findtext("S47ActualStartDate")), icpc) <= 15
    assert icpcs > 50 and 0 < in_time < icpcs
    assert figures["casewatch_icpcs"] == icpcs
    assert figures["casewatch_icpcs_in_time"] == in_time


def test_child_protection_plans_started_ended_and_open(episodes, figures):
    # CIN census / "Characteristics of children in need": child protection plans starting during
    # the year (CPPstartDate in 1 April - 31 March), ending during the year (CPPendDate in the
    # year), and open at 31 March (started on or before 31 March, no end date or ended after it).
    started = ended = open_at_end = 0
    for _, e in episodes:
        for p in e.findall("ChildProtectionPlans"):
            start, end = d(p.findtext("CPPstartDate")), d(p.findtext("CPPendDate"))
            started += YEAR_START <= start <= YEAR_END
            ended += end is not None and YEAR_START <= end <= YEAR_END
            open_at_end += start <= YEAR_END and (end is None or end > YEAR_END)
    assert started > 20 and ended > 5 and open_at_end > 20
    assert figures["casewatch_cp_plans_started"] == started
    assert figures["casewatch_cp_plans_ended"] == ended
    assert figures["casewatch_cp_plans_open"] == open_at_end


def test_children_in_need_at_31_march(episodes, figures):
    # CIN census: children in need at 31 March = children with an episode of need open on
    # 31 March (CINreferralDate on or before it, no CINclosureDate or one after it), counted once
    # per child; a referral with no further action (ReferralNFA true) is not an episode of need.
    open_children = set()
    for child, e in episodes:
        referral, closure = d(e.findtext("CINreferralDate")), d(e.findtext("CINclosureDate"))
        if e.findtext("ReferralNFA") == "true":
            continue
        if referral <= YEAR_END and (closure is None or closure > YEAR_END):
            open_children.add(child)
    assert len(open_children) > 100
    assert figures["casewatch_cin_open"] == len(open_children)


def test_the_generator_rewrites_the_committed_file_byte_for_byte(tmp_path):
    import shutil
    import subprocess
    import sys
    copy = tmp_path / "set"
    shutil.copytree(CENSUS.parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, str(copy / "generate.py")], check=True, capture_output=True)
    assert (copy / CENSUS.name).read_bytes() == CENSUS.read_bytes()
