"""Statutory timeliness clocks (docs/definitions.md "Statutory clocks", docs/metrics.md ``process`` label).

Every clock is one *segment*: it is live from ``opened`` until ``stop`` (exclusive; ``None`` =
still running), has a ``due`` date, and is either *completed* by the event that meets the
timescale (then ``in_time`` is decided) or stopped without completion (plan ended, ICPC not
required, episode closed: the item drops out of the denominator). A clock whose due date moves
(a later strategy discussion restarts the ICPC clock) is two segments.

Rules (working days use :class:`~casewatch.domain.calendar.WorkingDayCalendar`; on time ⇔
``elapsed(start, done) <= N`` for working-day limits, ⇔ ``done <= due`` for month limits):

``referral_decision``  start: referral date; done: ``referral.outcome``; 1 wd. The clock also
                       stops (not completed) at a later assessment start, strategy discussion,
                       S47, episode closure or new referral. A referral marked ``referral_nfa``
                       carries its decision and opens no clock.
``assessment``         start: the referral date of the episode (statutory view, "from the point
                       of referral"): the referral named by ``referral_ref``, else the latest
                       referral of the open episode; the assessment start date when no referral
                       is known. done: ``assessment.completed`` (same ``assessment_ref``); 45 wd.
``icpc``               start: the S47 start (= the strategy discussion that started it), moved
                       to the *last* strategy discussion (decision ``s47``) held before the ICPC;
                       done: ``icpc.held``; 15 wd. Stops without completion when ``s47.completed``
                       has ``icpc_not_required`` (or an outcome nfa / continue_assessment /
                       s17_services). Transfer-in ICPCs stop the clock but are not completions.
``cp_review``          first due plan start + 3 calendar months, then previous review + 6 months;
                       plan ended first -> not due.
``lac_review_first``   DECOM of the period (RNE S) + 20 wd. X1 breaks do not restart it. A period
                       marked ``began_before_data`` opens no first-review clock (its first review
                       precedes the data).
``lac_review``         second review due first review + 3 months, later ones previous + 6 months.
                       In a ``began_before_data`` period a review counts as completed without a
                       known start (in time only by its own ``due_date``) and the next is due 6
                       months later (how many reviews came before is not known).
``statutory_visit``    CPPCR reg 28, **simplified**: first visit within 1 week (7 calendar days)
                       of the start of each placement (period start or a move with RNE
                       P/B/T/U); then at most 6 weeks after the previous visit while that visit
                       fell in the placement's first year; after that at most 3 months (the
                       regulation allows 3 months only for placements meant to last until 18,
                       which the events do not say: we assume they are). A ``began_before_data``
                       period's placement begins at DECOM only for RNE P/B/T/U; an RNE L first known
                       episode's placement began before the data: no visit clock until a move.

``care_proceedings``   start: ``court.application`` for an interim care order, a care order or a
                       supervision order (``order_sought`` ico / care_order / supervision_order)
                       while no care proceedings are running (a second application inside the
                       same proceedings does not restart them); done: ``court.final_order``; 26
                       weeks: due = application + 182 days, in time when the final order is dated
                       on or before it (26 weeks exactly is in time). Court-approved extensions are
                       not recorded: an extended case shows as overdue. A final order with no
                       application in the history counts as completed, not in time.

A completion whose clock start is unknown (e.g. an ICPC with no S47 and no strategy discussion in
the history, a review of a plan that began before the history does) counts as completed and is in
time only if the event's own ``due_date`` shows it; with no ``due_date`` it is counted late (it
cannot be shown to be in time).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable

from casewatch.domain.calendar import WorkingDayCalendar, add_calendar_months, as_date
from casewatch.domain.events import types_keeping
from casewatch.domain.groups import PLACEMENT_MOVE_RNE, S47_OUTCOMES_NO_ICPC, SHORT_BREAK_LEGAL_STATUSES
from casewatch.domain.history import EVENT_PRECEDENCE, ChildHistory, Event

__all__ = ["Clock", "PROCESSES", "WORKING_DAY_LIMITS", "compute_clocks", "due_cp_review", "due_lac_review",
           "due_statutory_visit"]

PROCESSES = ("referral_decision", "assessment", "icpc", "cp_review", "lac_review_first", "lac_review",
             "statutory_visit", "care_proceedings")
CARE_PROCEEDINGS_ORDERS = frozenset({"ico", "care_order", "supervision_order"})
CARE_PROCEEDINGS_WEEKS = 26
WORKING_DAY_LIMITS = {"referral_decision": 1, "assessment": 45, "icpc": 15, "lac_review_first": 20}
FIRST_VISIT_DAYS = 7
VISIT_WEEKS_FIRST_YEAR = 6


@dataclass(slots=True)
class Clock:
    process: str
    opened: date | None          # live from this date (None: start unknown)
    start: date | None           # the date the timescale counts from
    due: date | None
    stop: date | None = None     # live until (exclusive); None = running
    completed: bool = False      # stopped by the event that meets the timescale
    in_time: bool | None = None  # decided when completed
    stop_event: Event | None = None

    def is_open(self, as_of: date) -> bool:
        return (self.opened is not None and self.opened <= as_of
                and (self.stop is None or self.stop > as_of))


def due_cp_review(plan_start: date, previous_review: date | None) -> date:
    return add_calendar_months(plan_start, 3) if previous_review is None else add_calendar_months(previous_review, 6)


def due_lac_review(calendar: WorkingDayCalendar, decom: date, reviews_held: int, previous_review: date | None) -> date:
    if reviews_held == 0 or previous_review is None:
        return calendar.add(decom, WORKING_DAY_LIMITS["lac_review_first"])
    return add_calendar_months(previous_review, 3 if reviews_held == 1 else 6)


def due_statutory_visit(placement_start: date, previous_visit: date | None) -> date:
    if previous_visit is None:
        return placement_start + timedelta(days=FIRST_VISIT_DAYS)
    if previous_visit < add_calendar_months(placement_start, 12):
        return previous_visit + timedelta(weeks=VISIT_WEEKS_FIRST_YEAR)
    return add_calendar_months(previous_visit, 3)


# The event types that carry their own due date (reviews, visits); other completions carry none.
_DUE_DATED = types_keeping("due_date")


def _own_due_in_time(ev: Event) -> bool:
    due = ev.due_date if isinstance(ev, _DUE_DATED) else None
    return due is not None and ev.date is not None and ev.date <= as_date(due)


def superseded_episode(closed_ref, open_ref) -> bool:
    """Whether a ``cin_episode.closed`` naming ``closed_ref`` closes an earlier episode than the open
    one (``open_ref``: the episode_ref of the referral that opened it). An episode may close on the
    day the child's next referral arrives; the referral sorts first that day, so the closure then
    names the earlier episode and the new one stays open. Without both references the closure
    closes whatever is open."""
    return closed_ref is not None and open_ref is not None and closed_ref != open_ref


def _refs(referral: Event) -> set:
    """The names a ``referral.received`` answers to: its id (and its original's), its references."""
    refs = {referral.event_id, referral.root_id}
    if referral.referral_ref is not None:
        refs.add(referral.referral_ref)
    if referral.episode_ref is not None:
        refs.add(referral.episode_ref)
    return refs


class _Walk:
    """One pass over a history, building the clock segments."""

    __slots__ = ("cal", "clocks", "referrals", "episode_referrals", "referral_clock", "assessments", "s47",
                 "last_s47_sd", "plans", "plan_starts", "lac_open", "lac_decom", "lac_reviews",
                 "lac_review_clock", "visit_clock", "placement_start", "proceedings")

    def __init__(self, calendar: WorkingDayCalendar):
        self.cal = calendar
        self.clocks: list[Clock] = []
        self.referrals: list[Event] = []          # all referrals so far
        self.episode_referrals: list[Event] = []  # referrals of the open CIN episode
        self.referral_clock: dict[int, Clock] = {}  # id(referral event) -> open decision clock
        self.assessments: dict[object, tuple[Clock, date | None]] = {}  # ref -> (open clock, clock start)
        self.s47: dict[object, Clock] = {}        # s47 ref -> open ICPC clock
        self.last_s47_sd: date | None = None      # last strategy discussion deciding S47
        self.plans: dict[object, Clock] = {}      # plan ref -> open review clock
        self.plan_starts: dict[object, date] = {}
        self.lac_open = False
        self.lac_decom: date | None = None
        self.lac_reviews = 0
        self.lac_review_clock: Clock | None = None
        self.visit_clock: Clock | None = None
        self.placement_start: date | None = None
        self.proceedings: Clock | None = None     # the running care proceedings clock

    # -- helpers -------------------------------------------------------------------------------
    def _open(self, process: str, opened: date, start: date | None, due: date | None) -> Clock:
        clock = Clock(process, opened, start, due)
        self.clocks.append(clock)
        return clock

    def _complete(self, clock: Clock, ev: Event) -> None:
        clock.stop = ev.date
        clock.completed = True
        clock.stop_event = ev
        limit = WORKING_DAY_LIMITS.get(clock.process)
        if clock.start is None or clock.due is None:
            clock.in_time = _own_due_in_time(ev)
        elif limit is not None:
            clock.in_time = self.cal.elapsed(clock.start, ev.date) <= limit
        else:
            clock.in_time = ev.date <= clock.due

    def _completed_without_start(self, process: str, ev: Event) -> None:
        clock = Clock(process, None, None, None, ev.date, True, _own_due_in_time(ev), ev)
        self.clocks.append(clock)

    @staticmethod
    def _stop(clock: Clock | None, d: date) -> None:
        if clock is not None and clock.stop is None:
            clock.stop = d

    def _stop_referral_clocks(self, d: date) -> None:
        for clock in self.referral_clock.values():
            self._stop(clock, d)
        self.referral_clock.clear()

    def _find_referral(self, ref, on_or_before: date, prefer_undecided: bool = False) -> Event | None:
        if ref is not None:
            for r in reversed(self.referrals):
                if ref in _refs(r):
                    return r
        candidates = [r for r in self.episode_referrals if r.date <= on_or_before] or \
                     [r for r in self.referrals if r.date <= on_or_before]
        if prefer_undecided:
            undecided = [r for r in candidates if id(r) in self.referral_clock]
            if undecided:
                return undecided[-1]
        return candidates[-1] if candidates else None

    # -- events --------------------------------------------------------------------------------
    def feed(self, ev: Event) -> None:
        t = ev.event_type
        d = ev.date
        if d is None:
            return
        handler = _HANDLERS.get(t)
        if handler is not None:
            handler(self, ev, d)

    def _on_referral_received(self, ev: Event, d: date) -> None:
        self._stop_referral_clocks(d)
        self.referrals.append(ev)
        self.episode_referrals.append(ev)
        if not ev.referral_nfa:
            self.referral_clock[id(ev)] = self._open(
                "referral_decision", d, d, self.cal.add(d, WORKING_DAY_LIMITS["referral_decision"]))

    def _on_referral_outcome(self, ev: Event, d: date) -> None:
        referral = self._find_referral(ev.referral_ref, d, prefer_undecided=True)
        if referral is None:
            self._completed_without_start("referral_decision", ev)
            return
        clock = self.referral_clock.pop(id(referral), None)
        if clock is None:  # decided already (or marked NFA): a fresh segment from the referral date
            clock = Clock("referral_decision", referral.date, referral.date,
                          self.cal.add(referral.date, WORKING_DAY_LIMITS["referral_decision"]))
            self.clocks.append(clock)
        self._complete(clock, ev)

    def _on_cin_episode_closed(self, ev: Event, d: date) -> None:
        latest = self.episode_referrals[-1] if self.episode_referrals else None
        if latest is not None and superseded_episode(ev.episode_ref, latest.episode_ref):
            # An earlier episode closes after the next referral opened a new one: stop only what
            # started before that referral; the new episode's clocks run on.
            opened = latest.date
            def before(clock: Clock) -> bool:
                began = clock.opened or clock.start
                return began is None or began < opened
            for key, (clock, _) in list(self.assessments.items()):
                if before(clock):
                    self._stop(clock, d)
                    del self.assessments[key]
            for key, clock in list(self.s47.items()):
                if before(clock):
                    self._stop(clock, d)
                    del self.s47[key]
            self.episode_referrals = [r for r in self.episode_referrals if r.date >= opened]
            return
        self._stop_referral_clocks(d)
        for clock, _ in self.assessments.values():
            self._stop(clock, d)
        self.assessments.clear()
        for clock in self.s47.values():
            self._stop(clock, d)
        self.s47.clear()
        self.episode_referrals = []
        self.last_s47_sd = None

    def _on_assessment_started(self, ev: Event, d: date) -> None:
        self._stop_referral_clocks(d)
        referral = self._find_referral(ev.referral_ref, d)
        start = referral.date if referral is not None else d
        ref = ev.assessment_ref if ev.assessment_ref is not None else ev.event_id
        old = self.assessments.get(ref)
        if old is not None:
            self._stop(old[0], d)
        clock = self._open("assessment", d, start, self.cal.add(start, WORKING_DAY_LIMITS["assessment"]))
        self.assessments[ref] = (clock, start)

    def _on_assessment_completed(self, ev: Event, d: date) -> None:
        ref = ev.assessment_ref
        entry = self.assessments.pop(ref, None) if ref is not None else None
        if entry is None and ref is None and self.assessments:
            entry = self.assessments.pop(next(iter(self.assessments)))
        if entry is not None:
            self._complete(entry[0], ev)
            return
        referral = self._find_referral(None, d)
        if referral is None:
            self._completed_without_start("assessment", ev)
            return
        start = referral.date
        clock = Clock("assessment", start, start, self.cal.add(start, WORKING_DAY_LIMITS["assessment"]))
        self.clocks.append(clock)
        self._complete(clock, ev)

    def _on_strategy_discussion_held(self, ev: Event, d: date) -> None:
        self._stop_referral_clocks(d)
        if ev.decision not in (None, "s47"):
            return
        self.last_s47_sd = d
        # A later strategy discussion restarts every running ICPC clock from its own date.
        for ref, clock in list(self.s47.items()):
            if clock.start is not None and clock.start < d:
                self._stop(clock, d)
                self.s47[ref] = self._open("icpc", d, d, self.cal.add(d, WORKING_DAY_LIMITS["icpc"]))

    def _on_s47_started(self, ev: Event, d: date) -> None:
        self._stop_referral_clocks(d)
        ref = ev.s47_ref if ev.s47_ref is not None else ev.event_id
        old = self.s47.pop(ref, None)
        self._stop(old, d)
        self.s47[ref] = self._open("icpc", d, d, self.cal.add(d, WORKING_DAY_LIMITS["icpc"]))

    def _on_s47_completed(self, ev: Event, d: date) -> None:
        if ev.icpc_not_required or ev.outcome in S47_OUTCOMES_NO_ICPC:
            ref = ev.s47_ref
            clock = self.s47.pop(ref, None) if ref is not None else None
            if clock is None and ref is None and len(self.s47) == 1:
                clock = self.s47.pop(next(iter(self.s47)))
            self._stop(clock, d)

    def _on_icpc_held(self, ev: Event, d: date) -> None:
        ref = ev.s47_ref
        clock = self.s47.pop(ref, None) if ref is not None else None
        if clock is None and self.s47 and ref is None:
            ref = max(self.s47, key=lambda k: (self.s47[k].opened, str(k)))
            clock = self.s47.pop(ref)
        if ev.transfer_in:
            self._stop(clock, d)  # not in the timeliness figures
            return
        if clock is not None:
            self._complete(clock, ev)
        elif self.last_s47_sd is not None and self.last_s47_sd <= d:
            start = self.last_s47_sd
            clock = Clock("icpc", start, start, self.cal.add(start, WORKING_DAY_LIMITS["icpc"]))
            self.clocks.append(clock)
            self._complete(clock, ev)
        else:
            self._completed_without_start("icpc", ev)

    def _plan_ref(self, ev: Event):
        ref = ev.plan_ref  # a review or a plan end
        if ref is None and len(self.plans) == 1:
            ref = next(iter(self.plans))
        return ref

    def _on_cp_plan_started(self, ev: Event, d: date) -> None:
        ref = ev.plan_ref if ev.plan_ref is not None else ev.event_id
        self._stop(self.plans.pop(ref, None), d)
        self.plan_starts[ref] = d
        self.plans[ref] = self._open("cp_review", d, d, due_cp_review(d, None))

    def _on_cp_review_held(self, ev: Event, d: date) -> None:
        ref = self._plan_ref(ev)
        clock = self.plans.get(ref)
        if clock is None:
            self._completed_without_start("cp_review", ev)
            return
        self._complete(clock, ev)
        self.plans[ref] = self._open("cp_review", d, d, due_cp_review(self.plan_starts[ref], d))

    def _on_cp_plan_ended(self, ev: Event, d: date) -> None:
        ref = self._plan_ref(ev)
        self._stop(self.plans.pop(ref, None), d)

    def _on_lac_started(self, ev: Event, d: date) -> None:
        if self.lac_open or ev.legal_status in SHORT_BREAK_LEGAL_STATUSES:
            return  # a continuation (after an X1 break) or short breaks: no new clocks
        self.lac_open = True
        self.lac_decom = d
        self.lac_reviews = 0
        if ev.began_before_data:
            # looked after since before the data: no first-review clock; a visit clock only when
            # a placement begins at DECOM (RNE P/B/T/U)
            self.lac_review_clock = None
            if ev.rne in PLACEMENT_MOVE_RNE:
                self.placement_start = d
                self.visit_clock = self._open("statutory_visit", d, d, due_statutory_visit(d, None))
            else:
                self.placement_start = None
                self.visit_clock = None
            return
        self.lac_review_clock = self._open("lac_review_first", d, d, due_lac_review(self.cal, d, 0, None))
        self.placement_start = d
        self.visit_clock = self._open("statutory_visit", d, d, due_statutory_visit(d, None))

    def _on_placement_changed(self, ev: Event, d: date) -> None:
        if not self.lac_open or ev.rne not in PLACEMENT_MOVE_RNE:
            return
        self._stop(self.visit_clock, d)
        self.placement_start = d
        self.visit_clock = self._open("statutory_visit", d, d, due_statutory_visit(d, None))

    def _on_statutory_visit_held(self, ev: Event, d: date) -> None:
        if not self.lac_open or self.visit_clock is None or self.visit_clock.stop is not None:
            self._completed_without_start("statutory_visit", ev)
            return
        self._complete(self.visit_clock, ev)
        self.visit_clock = self._open("statutory_visit", d, d, due_statutory_visit(self.placement_start, d))

    def _on_lac_review_held(self, ev: Event, d: date) -> None:
        if not self.lac_open:
            self._completed_without_start("lac_review", ev)
            return
        if self.lac_review_clock is None:  # a period that began before the data
            self._completed_without_start("lac_review", ev)
            self.lac_reviews = max(self.lac_reviews, 2)
            self.lac_review_clock = self._open("lac_review", d, d,
                                               due_lac_review(self.cal, self.lac_decom, self.lac_reviews, d))
            return
        self._complete(self.lac_review_clock, ev)
        self.lac_reviews += 1
        self.lac_review_clock = self._open("lac_review", d, d,
                                           due_lac_review(self.cal, self.lac_decom, self.lac_reviews, d))

    def _on_lac_ended(self, ev: Event, d: date) -> None:
        if ev.reason_ceased == "X1" or not self.lac_open:
            return
        self.lac_open = False
        self._stop(self.lac_review_clock, d)
        self._stop(self.visit_clock, d)
        self.lac_review_clock = self.visit_clock = None


    def _on_court_application(self, ev: Event, d: date) -> None:
        if ev.order_sought not in CARE_PROCEEDINGS_ORDERS or self.proceedings is not None:
            return
        self.proceedings = self._open("care_proceedings", d, d, d + timedelta(weeks=CARE_PROCEEDINGS_WEEKS))

    def _on_court_final_order(self, ev: Event, d: date) -> None:
        if self.proceedings is None:
            self._completed_without_start("care_proceedings", ev)
            return
        self._complete(self.proceedings, ev)
        self.proceedings = None


# event type -> the _Walk method that handles it ("referral.received" -> _on_referral_received)
_HANDLERS = {t: getattr(_Walk, "_on_" + t.replace(".", "_")) for t in EVENT_PRECEDENCE
             if hasattr(_Walk, "_on_" + t.replace(".", "_"))}


def compute_clocks(history: ChildHistory | Iterable[Event], calendar: WorkingDayCalendar) -> list[Clock]:
    """Every clock segment of a history (independent of "today": open/overdue is decided by the
    caller with :meth:`Clock.is_open` and ``due``)."""
    walk = _Walk(calendar)
    for ev in (history.events if isinstance(history, ChildHistory) else history):
        walk.feed(ev)
    return walk.clocks
