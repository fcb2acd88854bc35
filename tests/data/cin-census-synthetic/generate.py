"""Writes a synthetic CIN census XML (census year 2021-22, reference date 31 March 2022, LA 808)
with every module the statutory checks read: referrals, assessments, Section 47 enquiries with
their ICPCs, child protection plans with reviews, closures. Every child is invented. Deterministic
(fixed seed); run it again to rewrite census_2021-22.xml byte for byte:

    .venv/bin/python tests/data/cin-census-synthetic/generate.py

Timescales are drawn to straddle the limits (assessments 20-75 calendar days after the referral,
ICPCs 10-30 calendar days after the S47 start, some across Christmas and Easter), so both "in
time" and "late" occur.
"""
from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
REFERENCE = date(2022, 3, 31)
SOURCES = ["1A", "1B", "1C", "2A", "2B", "3A", "3B", "3E", "4", "5A", "5C", "5D", "6", "7", "8", "9", "10"]
NEEDS = ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8"]
CATEGORIES = ["NEG", "PHY", "SAB", "EMO", "MUL"]
CLOSURES = ["RC1", "RC2", "RC3", "RC4", "RC5", "RC6", "RC7", "RC8", "RC9"]
FACTORS = ["1B", "2B", "3A", "3B", "4B", "16A", "17A", "21"]


def el(name: str, value) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def episode(rng: random.Random, referral: date) -> tuple[str, date]:
    """One CINdetails block and the last date it holds."""
    parts = [el("CINreferralDate", referral), el("ReferralSource", rng.choice(SOURCES)),
             el("PrimaryNeedCode", rng.choice(NEEDS))]
    last = referral
    nfa = rng.random() < 0.08
    body = []
    if not nfa:
        start = referral + timedelta(days=rng.randint(0, 3))
        if start <= REFERENCE:
            a = [el("AssessmentActualStartDate", start)]
            done = referral + timedelta(days=rng.randint(20, 75))
            if done <= REFERENCE and rng.random() < 0.9:
                a.append(el("AssessmentInternalReviewDate", done))
                a.append(el("AssessmentAuthorisationDate", done))
                a.append("<FactorsIdentifiedAtAssessment>" + "".join(
                    el("AssessmentFactors", f) for f in rng.sample(FACTORS, 2)) + "</FactorsIdentifiedAtAssessment>")
                last = max(last, done)
            body.append("<Assessments>" + "".join(a) + "</Assessments>")
            last = max(last, start)
        if rng.random() < 0.5:
            s47 = referral + timedelta(days=rng.randint(1, 20))
            if s47 <= REFERENCE:
                s = [el("S47ActualStartDate", s47), el("InitialCPCtarget", s47 + timedelta(days=21))]
                icpc = s47 + timedelta(days=rng.randint(10, 30))
                has_icpc = icpc <= REFERENCE and rng.random() < 0.8
                if has_icpc:
                    s.append(el("DateOfInitialCPC", icpc))
                    s.append(el("ICPCnotRequired", "false"))
                    last = max(last, icpc)
                body.append("<Section47>" + "".join(s) + "</Section47>")
                last = max(last, s47)
                if has_icpc:
                    parts.append(el("DateOfInitialCPC", icpc))
                    if rng.random() < 0.75:
                        end = icpc + timedelta(days=rng.randint(60, 700))
                        p = [el("CPPstartDate", icpc)]
                        ended = end <= REFERENCE and rng.random() < 0.7
                        if ended:
                            p.append(el("CPPendDate", end))
                        category = rng.choice(CATEGORIES)
                        p += [el("InitialCategoryOfAbuse", category), el("LatestCategoryOfAbuse", category),
                              el("NumberOfPreviousCPP", rng.randint(0, 2))]
                        review = icpc + timedelta(days=90)
                        reviews = []
                        while review <= REFERENCE and (not ended or review < end):
                            reviews.append(el("CPPreviewDate", review))
                            last = max(last, review)
                            review += timedelta(days=180)
                        if reviews:
                            p.append("<Reviews>" + "".join(reviews) + "</Reviews>")
                        body.append("<ChildProtectionPlans>" + "".join(p) + "</ChildProtectionPlans>")
                        last = max(last, end if ended else icpc)
                        if not ended:
                            last = REFERENCE  # an open plan keeps the episode open
    parts.append(el("ReferralNFA", "true" if nfa else "false"))
    closure = None
    if last < REFERENCE and rng.random() < 0.55:
        closure = last + timedelta(days=rng.randint(1, 60))
        if closure > REFERENCE or closure < date(2021, 4, 1):
            closure = None
    if nfa and closure is None and referral + timedelta(days=1) <= REFERENCE and referral >= date(2021, 3, 31):
        closure = referral + timedelta(days=1)
    if closure is not None:
        parts.append(el("CINclosureDate", closure))
        parts.append(el("ReasonForClosure", rng.choice(CLOSURES)))
        last = closure
    else:
        last = REFERENCE
    return "<CINdetails>" + "".join(parts + body) + "</CINdetails>", last


def build() -> str:
    rng = random.Random(20220331)
    children = []
    for n in range(1, 261):
        referral = date(2020, 10, 1) + timedelta(days=rng.randint(0, 540))
        blocks = []
        while referral <= REFERENCE:
            block, last = episode(rng, referral)
            blocks.append(block)
            if last >= REFERENCE or rng.random() < 0.6:
                break
            referral = last + timedelta(days=rng.randint(2, 200))
        children.append(
            "<Child><ChildIdentifiers>" + el("LAchildID", f"SYN{n:04d}") + el("UPN", f"A{n:012d}")
            + el("PersonBirthDate", "2012-01-01") + el("Sex", "1") + "</ChildIdentifiers>"
            + "<ChildCharacteristics>" + el("Ethnicity", "WBRI") + "</ChildCharacteristics>"
            + "".join(blocks) + "</Child>")
    header = ("<Header><CollectionDetails>" + el("Collection", "CIN") + el("Year", "2022")
              + el("ReferenceDate", REFERENCE) + "</CollectionDetails><Source>" + el("SourceLevel", "L")
              + el("LEA", "808") + el("SoftwareCode", "Synthetic") + el("Release", "1") + el("SerialNo", "001")
              + el("DateTime", "2022-04-30T12:00:00") + "</Source></Header>")
    return "<Message>" + header + "<Children>\n" + "\n".join(children) + "\n</Children></Message>\n"


if __name__ == "__main__":
    (HERE / "census_2021-22.xml").write_text(build(), encoding="utf-8")
    print("wrote census_2021-22.xml")
