"""One valid example of every event type, in wire form (pseudonymised references, every envelope
field present), for the documentation, the OpenAPI page and the tests."""
from __future__ import annotations

import copy

CHILD = "ps_0123456789abcdef0123456789abcdef"
OTHER = "ps_fedcba9876543210fedcba9876543210"
WORKER = "ps_00000000000000000000000000000a11"


def _envelope(n: int, event_type: str, effective_date: str, team: str = "cp_1") -> dict:
    return {"event_id": f"5f0c6a52-9d1e-4c36-8d1e-{n:012d}", "event_type": event_type, "schema_version": 1,
            "collection_year": "2025-26", "occurred_at": f"{effective_date}T10:15:00+01:00",
            "effective_date": effective_date, "recorded_at": f"{effective_date}T16:40:05+01:00",
            "la_code": "E06000004", "team": team, "child_ref": CHILD, "source_system": "examples"}


_OWN: dict[str, tuple[str, dict]] = {
    "contact.received": ("2025-06-02", {"contact_date": "2025-06-02", "source": "6", "outcome": "cin_referral",
                                        "early_help_active": False, "closed_and_logged": False}),
    "referral.received": ("2025-06-02", {"referral_date": "2025-06-02", "source": "2A", "from_contact_ref": OTHER,
                                         "referral_nfa": False, "reasons": ["3B", "4B"], "primary_need": "N1"}),
    "referral.outcome": ("2025-06-03", {"outcome_date": "2025-06-03", "outcome": "assessment_required",
                                        "referral_ref": OTHER}),
    "cin_episode.closed": ("2025-09-30", {"closure_date": "2025-09-30", "reason": "RC8"}),
    "assessment.started": ("2025-06-03", {"assessment_ref": OTHER, "start_date": "2025-06-03", "referral_ref": OTHER}),
    "assessment.completed": ("2025-07-28", {"assessment_ref": OTHER, "authorisation_date": "2025-07-28",
                                            "factors": ["3B", "16A"], "child_seen": True, "outcome": "strategy_or_s47"}),
    "strategy_discussion.held": ("2025-06-04", {"date": "2025-06-04", "decision": "s47"}),
    "s47.started": ("2025-06-04", {"s47_ref": OTHER, "start_date": "2025-06-04", "icpc_target_date": "2025-06-25"}),
    "s47.completed": ("2025-06-18", {"s47_ref": OTHER, "end_date": "2025-06-18", "icpc_not_required": False,
                                     "outcome": "icpc"}),
    "icpc.held": ("2025-06-24", {"date": "2025-06-24", "s47_ref": OTHER, "resulted_in_cpp": True,
                                 "transfer_in": False, "child_participation": "PN2"}),
    "cp_plan.started": ("2025-06-24", {"plan_ref": OTHER, "start_date": "2025-06-24", "initial_category": "NEG",
                                       "previous_plans": 1}),
    "cp_plan.category_changed": ("2025-08-01", {"plan_ref": OTHER, "date": "2025-08-01", "latest_category": "MUL"}),
    "cp_review.held": ("2025-09-22", {"plan_ref": OTHER, "date": "2025-09-22", "due_date": "2025-09-24",
                                      "continue_plan": True, "quorate": True, "child_participation": "PN5"}),
    "cp_plan.ended": ("2026-01-12", {"plan_ref": OTHER, "end_date": "2026-01-12", "end_route": "cin_plan"}),
    "lac.started": ("2025-07-01", {"decom": "2025-07-01", "legal_status": "C1", "placement": "U6", "rne": "S",
                                   "began_before_data": False, "need": "N1", "provider": "PR1", "uasc": False,
                                   "birth_month": "2014-05"}),
    "lac.legal_status_changed": ("2025-10-06", {"date": "2025-10-06", "rne": "L", "legal_status": "C2"}),
    "placement.changed": ("2025-11-10", {"date": "2025-11-10", "rne": "P", "placement": "Z12", "provider": "PR4",
                                         "reason_place_change": "CREQB", "distance_band": "20_miles_or_more",
                                         "inside_la": False}),
    "lac.ended": ("2026-03-02", {"dec": "2026-03-02", "reason_ceased": "E45",
                                 "end_date_estimated": False}),
    "lac_review.held": ("2025-07-28", {"date": "2025-07-28", "due_date": "2025-07-29", "participation": "PN1"}),
    "statutory_visit.held": ("2025-07-07", {"date": "2025-07-07", "due_date": "2025-07-08"}),
    "early_help.opened": ("2025-05-12", {"start_date": "2025-05-12", "lead_agency": "2A", "stepped_down_from": "cin"}),
    "early_help.closed": ("2025-11-03", {"end_date": "2025-11-03", "end_reason": "outcomes_met"}),
    "court.application": ("2025-06-30", {"pre_proceedings_start": "2025-04-14", "letter_before_proceedings": "2025-04-14",
                                         "court_app_date": "2025-06-30", "order_sought": "ico"}),
    "court.final_order": ("2025-12-15", {"final_order_date": "2025-12-15", "order_made": "care_order"}),
    "case.allocated": ("2025-06-03", {"case_type": "cin", "allocation_date": "2025-06-03", "change_reason": "FCONTA"}),
    "case.unallocated": ("2025-08-15", {"case_type": "cp", "allocation_date": "2025-08-15", "change_reason": "LEFTRL"}),
    "care_leaver.status": ("2025-09-01", {"date": "2025-09-01", "age_band": "19-21", "in_touch": "YES",
                                          "activity": "F2", "accommodation": "U1"}),
    "workforce.snapshot": ("2025-09-30", {"date": "2025-09-30", "establishment_fte": 24.5, "inpost_fte": 21.0,
                                          "vacancy_fte": 3.5, "agency_fte": 4.0, "case_holding_fte": 18.5,
                                          "leavers_fte": 1.0, "absence_days": 12.5}),
    "event.voided": ("2025-06-05", {"correction_of": "5f0c6a52-9d1e-4c36-8d1e-000000000001"}),
}


def valid_examples() -> dict[str, dict]:
    """``{event_type: event}``, a fresh copy each call."""
    out = {}
    for n, (event_type, (effective, own)) in enumerate(_OWN.items(), 1):
        event = _envelope(100 + n, event_type, effective)
        if event_type == "case.allocated":
            event["worker_ref"] = WORKER
        if event_type == "workforce.snapshot":
            del event["child_ref"]
        event.update(copy.deepcopy(own))
        out[event_type] = event
    return out
