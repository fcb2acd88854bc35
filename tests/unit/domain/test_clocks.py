"""Clock rules (docs/definitions.md "Statutory clocks"), with due dates worked out by hand."""
from __future__ import annotations

from datetime import date

from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.clocks import compute_clocks, due_cp_review, due_lac_review, due_statutory_visit
from casewatch.domain.history import ChildHistory

CAL = WorkingDayCalendar()
ENV = {"la_code": "E06000004", "team": "cp_1", "child_ref": "c"}


def ev(event_id, event_type, **fields):
    return {**ENV, "event_id": event_id, "event_type": event_type, **fields}


def clocks(*events):
    return compute_clocks(ChildHistory(events), CAL)


def test_cp_review_dues_are_calendar_months_clamped_to_month_end():
    assert due_cp_review(date(2025, 11, 30), None) == date(2026, 2, 28)
    assert due_cp_review(date(2025, 11, 30), date(2026, 2, 27)) == date(2026, 8, 27)


def test_lac_review_dues():
    assert due_lac_review(CAL, date(2026, 4, 2), 0, None) == date(2026, 5, 5)
    assert due_lac_review(CAL, date(2026, 4, 2), 1, date(2026, 5, 5)) == date(2026, 8, 5)
    assert due_lac_review(CAL, date(2026, 4, 2), 2, date(2026, 8, 5)) == date(2027, 2, 5)


def test_statutory_visit_dues_simplified_reg_28():
    start = date(2026, 1, 12)
    assert due_statutory_visit(start, None) == date(2026, 1, 19)
    assert due_statutory_visit(start, date(2026, 1, 16)) == date(2026, 2, 27)
    # a visit more than a year into the placement: next within 3 months
    assert due_statutory_visit(start, date(2027, 1, 12)) == date(2027, 4, 12)
    assert due_statutory_visit(start, date(2027, 1, 11)) == date(2027, 2, 22)


def test_icpc_clock_restarts_at_the_last_strategy_discussion():
    # S47 Mon 2 Mar 2026; a second strategy discussion Mon 9 Mar; ICPC Mon 30 Mar = 15 wd after 9 Mar
    # (16 Mar..27 Mar + 9..13 Mar) but 20 wd after 2 Mar: in time.
    cs = clocks(ev("s", "s47.started", start_date="2026-03-02", s47_ref="S"),
                ev("sd", "strategy_discussion.held", date="2026-03-09", decision="s47"),
                ev("i", "icpc.held", date="2026-03-30", s47_ref="S", resulted_in_cpp=True))
    done = [c for c in cs if c.completed]
    assert [(c.process, c.start, c.due, c.in_time) for c in done] == [("icpc", date(2026, 3, 9), date(2026, 3, 30), True)]
    first = [c for c in cs if not c.completed]
    assert [(c.start, c.stop) for c in first] == [(date(2026, 3, 2), date(2026, 3, 9))]


def test_icpc_not_required_drops_the_clock_without_completion():
    cs = clocks(ev("s", "s47.started", start_date="2026-03-02", s47_ref="S"),
                ev("e", "s47.completed", end_date="2026-03-06", s47_ref="S", icpc_not_required=True))
    assert [(c.completed, c.stop, c.is_open(date(2026, 3, 20))) for c in cs] == [(False, date(2026, 3, 6), False)]


def test_transfer_in_icpc_is_not_a_completion():
    cs = clocks(ev("s", "s47.started", start_date="2026-03-02", s47_ref="S"),
                ev("i", "icpc.held", date="2026-03-05", s47_ref="S", resulted_in_cpp=True, transfer_in=True))
    assert [c.completed for c in cs] == [False]


def test_cp_review_not_due_once_the_plan_ends():
    cs = clocks(ev("p", "cp_plan.started", start_date="2026-01-10", plan_ref="P", initial_category="NEG"),
                ev("e", "cp_plan.ended", end_date="2026-03-01", plan_ref="P", end_route="cin_plan"))
    assert [(c.process, c.due, c.stop, c.completed) for c in cs] == [
        ("cp_review", date(2026, 4, 10), date(2026, 3, 1), False)]


def test_x1_break_does_not_restart_the_first_lac_review_clock():
    cs = clocks(ev("s", "lac.started", decom="2026-04-02", legal_status="V2", placement="U4"),
                ev("x", "lac.ended", dec="2026-04-20", reason_ceased="X1"),
                ev("s2", "lac.started", decom="2026-04-20", legal_status="C1", placement="U4"),
                ev("r", "lac_review.held", date="2026-05-05"))
    first = [c for c in cs if c.process == "lac_review_first"]
    assert [(c.start, c.due, c.in_time) for c in first] == [(date(2026, 4, 2), date(2026, 5, 5), True)]


def test_referral_decision_one_working_day_over_a_weekend():
    # Fri 6 Mar 2026 referral; decision Mon 9 Mar = 1 wd (in time); Tue 10 Mar would be 2 (late).
    ok = clocks(ev("r", "referral.received", referral_date="2026-03-06", source="6"),
                ev("o", "referral.outcome", outcome_date="2026-03-09", outcome="nfa"))
    late = clocks(ev("r", "referral.received", referral_date="2026-03-06", source="6"),
                  ev("o", "referral.outcome", outcome_date="2026-03-10", outcome="nfa"))
    assert [c.in_time for c in ok] == [True]
    assert [c.in_time for c in late] == [False]


def test_completion_with_unknown_start_uses_its_own_due_date():
    in_time = clocks(ev("r", "cp_review.held", date="2026-03-10", plan_ref="OLD", due_date="2026-03-12"))
    unknown = clocks(ev("r", "cp_review.held", date="2026-03-10", plan_ref="OLD"))
    assert [(c.completed, c.in_time) for c in in_time] == [(True, True)]
    assert [(c.completed, c.in_time) for c in unknown] == [(True, False)]
