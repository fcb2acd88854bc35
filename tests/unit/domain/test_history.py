"""ChildHistory: duplicates, amendments, voids, ordering and cross-event rejections."""
from __future__ import annotations

import json
from datetime import date

from casewatch.domain.history import ChildHistory, compact

ENV = {"la_code": "E06000004", "team": "cp_1", "child_ref": "ps_" + "a" * 32, "schema_version": 1}


def ev(event_id, event_type, **fields):
    return {**ENV, "event_id": event_id, "event_type": event_type, **fields}


def ids(history):
    return [e.event_id for e in history.events]


def test_duplicates_count_once():
    r = ev("r1", "referral.received", referral_date="2026-01-05", source="6")
    assert ids(ChildHistory([r, r, dict(r)])) == ["r1"]


def test_same_day_order_follows_the_case_not_the_arrival():
    icpc = ev("x1", "icpc.held", date="2026-03-10", s47_ref="S", resulted_in_cpp=True)
    s47 = ev("x2", "s47.started", start_date="2026-03-10", s47_ref="S")
    plan = ev("x0", "cp_plan.started", start_date="2026-03-10", plan_ref="P", initial_category="NEG")
    assert ids(ChildHistory([plan, icpc, s47])) == ["x2", "x1", "x0"]


def test_amendment_wins_whatever_the_arrival_order():
    original = ev("r1", "referral.received", referral_date="2026-01-05", source="6")
    amended = ev("r2", "referral.received", referral_date="2026-01-05", source="3A", correction_of="r1")
    for events in ([original, amended], [amended, original]):
        history = ChildHistory(events)
        assert [(e.event_id, e.source) for e in history.events] == [("r2", "3A")]


def test_latest_recorded_amendment_wins_then_greatest_id():
    original = ev("r1", "referral.received", referral_date="2026-01-05", source="6")
    late = ev("r2", "referral.received", referral_date="2026-01-05", source="3A", correction_of="r1",
              recorded_at="2026-01-07T09:00:00+00:00")
    # Earlier instant written with a different offset: 2026-01-07T10:30+02:00 = 08:30 UTC.
    early = ev("r9", "referral.received", referral_date="2026-01-05", source="8", correction_of="r1",
               recorded_at="2026-01-07T10:30:00+02:00")
    assert ids(ChildHistory([early, original, late])) == ["r2"]
    tie_a = dict(late, event_id="r3")
    assert ids(ChildHistory([late, tie_a, original])) == ["r3"]


def test_void_removes_the_event_and_its_amendments():
    original = ev("a1", "assessment.completed", authorisation_date="2026-02-10", assessment_ref="A")
    amended = ev("a2", "assessment.completed", authorisation_date="2026-02-11", assessment_ref="A", correction_of="a1")
    void = ev("v1", "event.voided", correction_of="a1")
    other = ev("r1", "referral.received", referral_date="2026-01-05", source="6")
    for events in ([original, amended, void, other], [void, amended, other, original]):
        assert ids(ChildHistory(events)) == ["r1"]


def test_voiding_an_amendment_restores_the_original():
    original = ev("r1", "referral.received", referral_date="2026-01-05", source="6")
    amended = ev("r2", "referral.received", referral_date="2026-01-05", source="3A", correction_of="r1")
    void = ev("v1", "event.voided", correction_of="r2")
    assert [(e.event_id, e.source) for e in ChildHistory([amended, void, original]).events] == [("r1", "6")]


def test_icpc_before_its_s47_is_rejected_and_does_not_count():
    s47 = ev("s", "s47.started", start_date="2026-03-10", s47_ref="S")
    icpc = ev("i", "icpc.held", date="2026-03-09", s47_ref="S", resulted_in_cpp=False)
    history = ChildHistory([icpc, s47])
    assert history.rejections == [("i", "icpc_before_s47")]
    assert ids(history) == ["s"]


def test_review_before_plan_is_rejected():
    plan = ev("p", "cp_plan.started", start_date="2026-03-10", plan_ref="P", initial_category="NEG")
    review = ev("r", "cp_review.held", date="2026-03-01", plan_ref="P")
    lac = ev("l", "lac.started", decom="2026-03-10", legal_status="C1", placement="U4")
    lac_review = ev("lr", "lac_review.held", date="2026-03-02")
    assert sorted(ChildHistory([plan, review, lac, lac_review]).rejections) == [
        ("lr", "review_before_plan"), ("r", "review_before_plan")]


def test_a_correction_can_mend_a_rejected_event():
    s47 = ev("s", "s47.started", start_date="2026-03-10", s47_ref="S")
    icpc = ev("i", "icpc.held", date="2026-03-09", s47_ref="S", resulted_in_cpp=False)
    fixed = ev("i2", "icpc.held", date="2026-03-19", s47_ref="S", resulted_in_cpp=False, correction_of="i")
    history = ChildHistory([s47, icpc, fixed])
    assert history.rejections == []
    assert ids(history) == ["s", "i2"]


def test_compact_drops_identifiers_free_text_and_keeps_dates_as_iso_strings():
    full = ev("r1", "referral.received", referral_date=date(2026, 1, 5), source="6", reasons=["3B"],
              primary_need="N1", occurred_at="2026-01-05T10:00:00+00:00", recorded_at="2026-01-05T11:00:00+00:00",
              worker_ref="ps_" + "b" * 32, source_system="mosaic", notes="free text")
    small = compact(full)
    assert small == {"event_id": "r1", "event_type": "referral.received", "la_code": "E06000004",
                     "team": "cp_1", "referral_date": "2026-01-05", "source": "6"}
    json.dumps(small)


def test_typical_child_state_stays_under_2kb():
    events = [
        ev("5f0c7d2e-0d5e-4b6f-9d1a-%012d" % i, t, **fields) for i, (t, fields) in enumerate([
            ("contact.received", {"contact_date": "2026-01-02", "source": "2A", "outcome": "cin_referral"}),
            ("referral.received", {"referral_date": "2026-01-05", "source": "2A"}),
            ("referral.outcome", {"outcome_date": "2026-01-06", "outcome": "assessment_required"}),
            ("assessment.started", {"start_date": "2026-01-06", "assessment_ref": "ps_" + "c" * 32}),
            ("assessment.completed", {"authorisation_date": "2026-02-10", "assessment_ref": "ps_" + "c" * 32,
                                      "factors": ["3B", "4B"], "outcome": "strategy_or_s47"}),
            ("strategy_discussion.held", {"date": "2026-02-11", "decision": "s47"}),
            ("s47.started", {"start_date": "2026-02-11", "s47_ref": "ps_" + "d" * 32}),
            ("icpc.held", {"date": "2026-03-02", "s47_ref": "ps_" + "d" * 32, "resulted_in_cpp": True}),
            ("cp_plan.started", {"start_date": "2026-03-02", "plan_ref": "ps_" + "e" * 32, "initial_category": "NEG"}),
            ("case.allocated", {"allocation_date": "2026-03-02", "case_type": "cp", "worker_ref": "ps_" + "f" * 32}),
        ])]
    size = len(json.dumps([compact(e) for e in events], separators=(",", ":")))
    assert size <= 2048
