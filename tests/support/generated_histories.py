"""Hypothesis strategies for generated case histories: random dates, codes, references,
amendments, voids and repeats per child (and a workforce team now and then).

The events are wire-format dicts (ISO date strings) as the ingest edge would publish them; codes
come from the code lists of schemas/codes. References are drawn from small pools so that starts,
completions, reviews and ends meet (and sometimes break the cross-event rules).
"""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import strategies as st

from schemas import code_lists

LA = "E06000004"
TEAMS = ("cp_1", "lac_1", "front_door")
FIRST_DAY = date(2024, 1, 1)
SPAN_DAYS = 900  # to mid-2026
YEAR = "2025-26"


def _codes(name: str) -> list[str]:
    return sorted(code_lists.codes(name, YEAR))


SOURCES = _codes("referral_source")
FACTORS = ["1B", "2B", "3A", "3B", "4B", "16A", "17A", "21", "24A"]
LEGAL = ["C1", "C2", "E1", "V2", "V3", "V4", "L1", "J1"]
LAC_LEGAL = ["C1", "C2", "C2", "E1", "V2", "V2", "V3", "V4"]  # short breaks now and then
PLACEMENTS = ["U4", "U6", "K2", "P1", "A5"]
REC = ["X1", "E11", "E12", "E41", "E45", "E4A", "E8", "E13"]
CATEGORIES = _codes("abuse_category")
PARTICIPATION = _codes("participation")


def dates(start: date = FIRST_DAY, span: int = SPAN_DAYS):
    return st.integers(0, span).map(lambda n: start + timedelta(days=n))


def _iso(d: date) -> str:
    return d.isoformat()


@st.composite
def case_event(draw, child: str, d: date) -> dict:
    """One event of a child, of a random type, dated ``d``."""
    pick = lambda options: draw(st.sampled_from(options))  # noqa: E731
    maybe = lambda value: value if draw(st.booleans()) else None  # noqa: E731
    t = pick(["contact.received", "referral.received", "referral.outcome", "cin_episode.closed",
              "assessment.started", "assessment.completed", "strategy_discussion.held", "s47.started",
              "s47.completed", "icpc.held", "cp_plan.started", "cp_plan.category_changed", "cp_review.held",
              "cp_plan.ended", "lac.started", "lac.started", "lac.legal_status_changed", "placement.changed",
              "placement.changed", "lac.ended", "lac_review.held", "statutory_visit.held", "early_help.opened",
              "early_help.closed", "court.application", "court.final_order", "case.allocated", "case.allocated",
              "case.unallocated", "care_leaver.status"])
    s = _iso(d)
    f: dict = {}
    if t == "contact.received":
        f = {"contact_date": s, "source": pick(SOURCES), "outcome": pick(_codes("contact_outcome")),
             "early_help_active": draw(st.booleans())}
    elif t == "referral.received":
        f = {"referral_date": s, "source": pick(SOURCES), "referral_nfa": maybe(True)}
    elif t == "referral.outcome":
        f = {"outcome_date": s, "outcome": pick(_codes("referral_outcome"))}
    elif t == "cin_episode.closed":
        f = {"closure_date": s, "reason": pick(_codes("reason_for_closure"))}
    elif t == "assessment.started":
        f = {"start_date": s, "assessment_ref": pick(["A1", "A2"])}
    elif t == "assessment.completed":
        f = {"authorisation_date": s, "assessment_ref": pick(["A1", "A2"]),
             "factors": draw(st.lists(st.sampled_from(FACTORS), max_size=3, unique=True)) or None}
    elif t == "strategy_discussion.held":
        f = {"date": s, "decision": pick(_codes("strategy_decision"))}
    elif t == "s47.started":
        f = {"start_date": s, "s47_ref": pick(["S1", "S2"])}
    elif t == "s47.completed":
        f = {"end_date": s, "s47_ref": pick(["S1", "S2"]), "icpc_not_required": maybe(True),
             "outcome": maybe(pick(_codes("s47_outcome")))}
    elif t == "icpc.held":
        f = {"date": s, "s47_ref": maybe(pick(["S1", "S2"])), "resulted_in_cpp": draw(st.booleans()),
             "transfer_in": maybe(True), "child_participation": maybe(pick(PARTICIPATION))}
    elif t == "cp_plan.started":
        f = {"start_date": s, "plan_ref": pick(["P1", "P2"]), "initial_category": maybe(pick(CATEGORIES)),
             "previous_plans": maybe(draw(st.integers(0, 2)))}
    elif t == "cp_plan.category_changed":
        f = {"date": s, "plan_ref": pick(["P1", "P2"]), "latest_category": pick(CATEGORIES)}
    elif t == "cp_review.held":
        f = {"date": s, "plan_ref": pick(["P1", "P2"]), "child_participation": maybe(pick(PARTICIPATION)),
             "due_date": maybe(_iso(d + timedelta(days=draw(st.integers(-20, 20)))))}
    elif t == "cp_plan.ended":
        f = {"end_date": s, "plan_ref": pick(["P1", "P2"]), "end_route": pick(_codes("cp_end_route"))}
    elif t == "lac.started":
        before = draw(st.booleans()) and draw(st.booleans())
        f = {"decom": s, "legal_status": maybe(pick(LEGAL)) or pick(LEGAL), "placement": pick(PLACEMENTS),
             "rne": pick(["P", "B", "T", "U", "L"]) if before else "S"}
        if before:
            f["began_before_data"] = True
        f["birth_month"] = maybe(pick(["2008-04", "2010-11", "2012-02", "2016-07"]))
    elif t == "lac.legal_status_changed":
        f = {"date": s, "rne": pick(["L", "L", "B", "U"]), "legal_status": pick(LEGAL)}
    elif t == "placement.changed":
        f = {"date": s, "rne": pick(["P", "T", "B", "U"]), "placement": pick(PLACEMENTS)}
    elif t == "lac.ended":
        f = {"dec": s, "reason_ceased": maybe(pick(REC)) if draw(st.booleans()) else pick(REC)}
    elif t == "lac_review.held":
        f = {"date": s, "participation": maybe(pick(PARTICIPATION)),
             "due_date": maybe(_iso(d + timedelta(days=draw(st.integers(-20, 20)))))}
    elif t == "statutory_visit.held":
        f = {"date": s}
    elif t == "early_help.opened":
        f = {"start_date": s, "lead_agency": pick(SOURCES)}
    elif t == "early_help.closed":
        f = {"end_date": s, "end_reason": pick(_codes("early_help_end_reason"))}
    elif t == "court.application":
        f = {"court_app_date": s, "order_sought": pick(_codes("order_sought"))}
    elif t == "court.final_order":
        f = {"final_order_date": s, "order_made": pick(_codes("final_order"))}
    elif t in ("case.allocated", "case.unallocated"):
        f = {"allocation_date": s, "case_type": pick(_codes("case_type"))}
        if t == "case.allocated":
            f["worker_ref"] = maybe(pick(["ps_w1", "ps_w2", "ps_w3", "ps_w4"]))
    elif t == "care_leaver.status":
        f = {"date": s, "age_band": pick(_codes("care_leaver_age_band")), "in_touch": pick(_codes("in_touch")),
             "activity": maybe(pick(_codes("activity"))), "accommodation": maybe(pick(_codes("accommodation")))}
    event = {"event_type": t, "la_code": LA, "team": pick(TEAMS), "child_ref": child, "schema_version": 1}
    event.update({k: v for k, v in f.items() if v is not None})
    return event


@st.composite
def workforce_history(draw, team: str) -> list[dict]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        d = draw(dates())
        inpost = draw(st.integers(5, 20))
        out.append({"event_id": f"wf-{team}-{i}", "event_type": "workforce.snapshot", "la_code": LA, "team": team,
                    "schema_version": 1, "date": _iso(d), "establishment_fte": inpost + 2, "inpost_fte": inpost,
                    "vacancy_fte": 2, "agency_fte": draw(st.integers(0, 3)), "case_holding_fte": inpost - 1,
                    "leavers_fte": draw(st.integers(0, 2))})
    return out


@st.composite
def child_history(draw, child: str, max_events: int = 14, corrections: bool = True,
                  events_of=None) -> list[dict]:
    """A child's events: ordinary ones, then (when ``corrections``) amendments and voids of them."""
    events_of = events_of or case_event
    n = draw(st.integers(1, max_events))
    events = []
    for i in range(n):
        ev = draw(events_of(child, draw(dates())))
        ev["event_id"] = f"{child}-{i}"
        events.append(ev)
    if corrections and events:
        for j in range(draw(st.integers(0, 3))):
            target = draw(st.sampled_from(events))
            recorded = f"2026-0{draw(st.integers(1, 9))}-1{draw(st.integers(0, 9))}T09:00:00+00:00"
            if draw(st.booleans()):  # an amendment: the same event with a moved date or other codes
                fix = draw(events_of(child, draw(dates())))
                main = next((k for k in target if k.endswith("date") or k in ("decom", "dec")), None)
                if main is not None and draw(st.booleans()):
                    fix = {k: v for k, v in target.items() if k not in ("correction_of", "recorded_at")}
                    fix[main] = _iso(draw(dates()))
                fix.update({"event_id": f"{child}-fix{j}", "correction_of": target["event_id"], "recorded_at": recorded})
            else:
                fix = {"event_id": f"{child}-void{j}", "event_type": "event.voided", "la_code": LA,
                       "team": target["team"], "child_ref": child, "schema_version": 1,
                       "correction_of": target["event_id"], "recorded_at": recorded}
            events.append(fix)
    return events


@st.composite
def authority_history(draw, corrections: bool = True, max_children: int = 3) -> list[dict]:
    """Events of a few children (and maybe a workforce team), in no particular order."""
    events: list[dict] = []
    for c in range(draw(st.integers(1, max_children))):
        events += draw(child_history(f"c{c}", corrections=corrections))
    if draw(st.booleans()):
        events += draw(workforce_history(draw(st.sampled_from(TEAMS))))
    return events


def as_of_dates():
    return dates(FIRST_DAY + timedelta(days=200), SPAN_DAYS + 60 - 200)


@st.composite
def arrival(draw, events: list[dict]) -> list[dict]:
    """``events`` in a random arrival order with random repeats."""
    repeats = draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    return draw(st.permutations(events + [dict(e) for e in repeats]))


@st.composite
def lac_event(draw, child: str, d: date) -> dict:
    """A looked-after event only (period starts and ends, moves, legal-status changes), so that
    generated children often hold three or more placements in a look-back."""
    pick = lambda options: draw(st.sampled_from(options))  # noqa: E731
    t = pick(["lac.started", "placement.changed", "placement.changed", "placement.changed", "placement.changed",
              "lac.legal_status_changed", "lac.legal_status_changed", "lac.ended"])
    s = _iso(d)
    if t == "lac.started":
        before = draw(st.integers(0, 3)) == 0
        f = {"decom": s, "legal_status": pick(LAC_LEGAL), "placement": pick(PLACEMENTS),
             "rne": pick(["P", "B", "T", "U", "L"]) if before else "S"}
        if before:
            f["began_before_data"] = True
        month = pick([None, "2008-04", "2010-11", "2012-02", "2016-07"])
        if month:
            f["birth_month"] = month
    elif t == "placement.changed":
        f = {"date": s, "rne": pick(["P", "T", "B", "U"]), "placement": pick(PLACEMENTS)}
    elif t == "lac.legal_status_changed":
        f = {"date": s, "rne": pick(["L", "L", "B", "U"]), "legal_status": pick(LAC_LEGAL)}
    else:
        f = {"dec": s}
        reason = pick([None, "X1", "E4A", "E8", "E11"])
        if reason is not None:
            f["reason_ceased"] = reason
    return {"event_type": t, "la_code": LA, "team": "lac_1", "child_ref": child, "schema_version": 1, **f}


def some_history(child: str = "c", max_events: int = 16, corrections: bool = True):
    """Either a mixed case history or a looked-after-only one."""
    return st.one_of(child_history(child, max_events=max_events, corrections=corrections),
                     child_history(child, max_events=max_events, corrections=corrections, events_of=lac_event))
