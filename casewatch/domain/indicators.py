"""What one key (a child, or a workforce team) contributes to every figure of docs/metrics.md.

``contribution(history, as_of, calendar)`` returns

* ``flows``: ``(metric, labels, event date) -> amount``. Flows do not depend on ``as_of`` and carry
  no ``window`` label: the :class:`~casewatch.domain.aggregate.Aggregate` sums them into windows.
  The labels are those of the event that made the flow (its ``la_code`` and ``team``).
* ``stocks``: ``(metric, labels) -> value`` as of ``as_of``; only events dated on or before
  ``as_of`` count. Labelled with the ``la``/``team`` of the key's latest such event.
* ``stable_until``: the first date after ``as_of`` on which ``stocks`` can change with no new event
  (a future-dated event taking effect, a clock becoming due soon or overdue, an overdue count
  growing, a plan reaching 2 years, a placement leaving the look-back or becoming the one held on its
  first day); None = never.

Definitions and conventions (see also docs/definitions.md and the module docs of ``clocks``):

* Re-referral (I7): a referral with an earlier referral of the same child dated in
  ``[date - 12 calendar months, date)``: exactly 12 months apart counts, one day more does not,
  and a second referral on the same day is not a re-referral. 12 months before 29 Feb is 28 Feb.
* Second or subsequent CP plan (O6): ``previous_plans >= 1`` or an earlier plan start of the same
  child in the history.
* CP plan lasting 2+ years (O7): end >= start + 2 calendar years; open 2+ years (O7b): as_of >=
  start + 2 years.
* CIN open (O1, and the caseload numerator ``open_cases``): a CIN episode opened by a referral not
  marked ``referral_nfa`` and not yet closed by ``cin_episode.closed``, or an open CP plan, or an
  open period of care. A closure naming an earlier episode than the one the latest referral opened
  (an episode closed on the day the next is referred) leaves the later episode open.
* LAC (O4): an open period of care (opened by ``lac.started``, ended by any reason but X1) whose
  current legal status is not V3/V4 (short breaks are never LAC). ``lac_started`` (O5) counts a
  period's beginning: never a period marked ``began_before_data`` (its beginning precedes the data;
  it is looked after all the same), never short breaks. ``lac_ceased`` counts ends other than X1;
  an end without ``reason_ceased`` (not recorded) is a leaving with ``outcome_group="not_recorded"``.
* LAC 3+ placements (O10/O10b): for a child looked after at ``as_of``, with the look-back
  ``(as_of - 12 months, as_of]`` (24 months for O10b) whose first day is F: placements during the
  look-back = the placement the child was in on F (if looked after on F, after that day's events)
  + every placement that begins after F up to ``as_of``: the first placement of a period (a period
  start, or a ``began_before_data`` episode with RNE P/B/T/U) and each move with RNE P/B/T/U
  (``placement.changed``, or ``lac.legal_status_changed`` with RNE B/U). RNE L changes only the
  legal status: no new placement. A move on F itself is the placement held on F: counted once.
  Time under V3/V4 short breaks holds no placement.
* Unallocated (O16): a case is unallocated from ``case.unallocated`` until a later
  ``case.allocated`` of the same ``case_type``, counted only while that case type is open (cin: CIN
  open; cp: a CP plan open; lac: looked after; care_leaver: a care-leaver status held and not
  looked after). Closing the case type clears it. ``unallocated_max_workdays`` =
  working days from the unallocation date to ``as_of`` (a max, not a sum, across keys).
* Care leavers (O13/O14): the latest ``care_leaver.status``; ``in_touch = DIED`` counts nowhere;
  information not known stays in the denominator.
* ICPCs: transfer-in conferences are left out of ``icpcs``, ``icpcs_in_time`` and
  ``icpcs_resulting_in_plan`` (they continue another authority's plan).
* Live clocks: open / overdue (as_of after the due date) / due soon (due today or within the next
  2 working days, not overdue); ``clocks_max_overdue_workdays`` = working days in
  ``[due, as_of)`` of the most overdue open clock (a max across keys; 0 when none).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Mapping

from casewatch.domain import groups as G
from casewatch.domain.calendar import WorkingDayCalendar, add_calendar_months
from casewatch.domain.clocks import compute_clocks, superseded_episode
from casewatch.domain.events import kept_field
from casewatch.domain.history import ChildHistory, Event
from casewatch.domain.catalogue import (COHORT_METRICS, FLOW_METRICS, INDICATORS, MAX_METRICS,  # noqa: F401
                                        STOCK_METRICS, Indicator)

__all__ = ["Contribution", "contribution", "INDICATORS", "Indicator", "MAX_METRICS", "FLOW_METRICS",
           "STOCK_METRICS", "COHORT_METRICS", "months_look_back_start", "placements_in_look_back"]

Labels = tuple[tuple[str, str], ...]

P = "casewatch_"
# The metric and indicator catalogue lives in casewatch.domain.catalogue; its names are re-exported
# here (existing imports keep working).
# Drift: an open case with no recorded activity for at least this many working days, per case
# type (defaults from practice); the deployment's ``CASEWATCH_DRIFT_WORKDAYS="cin=20,cp=10,lac=20"``
# (Settings.drift_workdays) overrides them, handed in by the caller as ``drift_limits``.
DRIFT_WORKDAYS_DEFAULT = {"cin": 20, "cp": 10, "lac": 20}


def drift_workdays(text: str = "") -> dict[str, int]:
    """The drift thresholds: the defaults, overridden by ``text`` (the setting
    ``CASEWATCH_DRIFT_WORKDAYS``), a comma-separated list of ``case_type=working days``."""
    out = dict(DRIFT_WORKDAYS_DEFAULT)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in out or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"CASEWATCH_DRIFT_WORKDAYS: {part!r} is not case_type=working days; "
                             f"write e.g. cin=20,cp=10,lac=20 (case types {', '.join(out)}, days 1 or more)")
        out[name] = int(value)
    return out


_CLOCK_FLOW = {
    "referral_decision": (P + "referral_decisions", P + "referral_decisions_in_time"),
    "assessment": (P + "assessments_completed", P + "assessments_completed_in_time"),
    "icpc": (P + "icpcs", P + "icpcs_in_time"),
    "cp_review": (P + "cp_reviews_completed", P + "cp_reviews_completed_in_time"),
    "lac_review_first": (P + "lac_reviews_completed", P + "lac_reviews_completed_in_time"),
    "lac_review": (P + "lac_reviews_completed", P + "lac_reviews_completed_in_time"),
    "statutory_visit": (P + "statutory_visits_completed", P + "statutory_visits_completed_in_time"),
    "care_proceedings": (P + "care_proceedings_completed", P + "care_proceedings_completed_in_time"),
}
# (measure label, the workforce.snapshot field) and (event type -> meeting label, its participation
# field): field names checked against the event table at import.
_WORKFORCE_MEASURES = tuple((measure, kept_field("workforce.snapshot", name)) for measure, name in (
    ("establishment", "establishment_fte"), ("inpost", "inpost_fte"), ("vacancy", "vacancy_fte"),
    ("agency", "agency_fte"), ("case_holding", "case_holding_fte")))
_MEETING_PARTICIPATION = {t: (meeting, kept_field(t, name)) for t, meeting, name in (
    ("icpc.held", "icpc", "child_participation"), ("cp_review.held", "cp_review", "child_participation"),
    ("lac_review.held", "lac_review", "participation"))}


@dataclass(frozen=True)
class Contribution:
    flows: Mapping[tuple[str, Labels, date], float] = field(default_factory=dict)
    stocks: Mapping[tuple[str, Labels], float] = field(default_factory=dict)
    stable_until: date | None = None
    # Growing maxima (only from :class:`casewatch.domain.incremental.DailyContribution`; ``contribution``
    # leaves it empty): a ``MAX_METRICS`` series whose value on every day D from ``as_of`` until
    # ``stable_until`` is ``calendar.elapsed(start, D)`` (the working days a case has drifted, been
    # unallocated or a clock been overdue), as ``(metric, labels) -> start``. Such a value changes
    # every working day with no new event; kept as its start, the key need not be recounted daily
    # (``stable_until`` leaves those daily changes out) and the Aggregate reads it off each day.
    growing: Mapping[tuple[str, Labels], date] = field(default_factory=dict)
    # From a kept walk (:class:`casewatch.domain.incremental.RunningContribution`): the flows added
    # since the walk's previous result (``added``) and that previous result's ``added`` (``follows``,
    # the same object), so ``Aggregate.apply`` swapping that result for this one touches only the
    # added flows, not every flow of the key.
    follows: Mapping | None = field(default=None, compare=False, repr=False)
    added: Mapping[tuple[str, Labels, date], float] | None = field(default=None, compare=False, repr=False)


@lru_cache(maxsize=50_000)  # label sets are few (bounded code lists); the bound guards odd input
def _labels(la: str, team: str | None, **extra: str) -> Labels:
    """The sorted ``(name, value)`` pairs of a series; each distinct set is built once."""
    pairs = [("la", la)]
    if team is not None:
        pairs.append(("team", team))
    pairs.extend(extra.items())
    return tuple(sorted(pairs))


def months_look_back_start(as_of: date, months: int) -> date:
    """The exclusive lower bound of a ``(as_of - months, as_of]`` look-back."""
    return add_calendar_months(as_of, -months)


def _first_day_outside(d: date, months: int) -> date:
    """The first day D on which ``d`` is no longer in ``(D - months, D]``."""
    candidate = add_calendar_months(d, months)
    while add_calendar_months(candidate, -months) < d:
        candidate += timedelta(days=1)
    return candidate


class _State:
    __slots__ = ("episode_open", "episode_ref", "plans", "plans_seen", "lac_open", "lac_ls", "placements",
                 "unallocated", "care_leaver", "workforce", "latest", "referral_dates", "episode_referrals",
                 "last_plan_end", "birth_month", "period_start", "allocations")

    def __init__(self) -> None:
        self.episode_open = False
        self.episode_ref: object = None            # episode_ref of the latest referral that opened one
        self.plans: dict[object, list] = {}        # ref -> [start, category, open]
        self.plans_seen = 0
        self.lac_open = False
        self.lac_ls: str | None = None
        # The placements held while looked after, in order: [start, end (None: held now), begins]
        # where ``begins`` says a placement begins on ``start`` (False: a placement already held
        # when the child became looked after by a legal-status-only change, or held since before
        # the data by an RNE L first known episode).
        self.placements: list[list] = []
        self.unallocated: dict[str, date] = {}
        self.care_leaver: Event | None = None
        self.workforce: Event | None = None
        self.latest: Event | None = None
        self.referral_dates: list[date] = []
        # The referrals of the open CIN episode, for the cohort figures (P4, O9):
        # [referral date, labels, reached an S47, reached a CP plan]
        self.episode_referrals: list[list] = []
        self.last_plan_end: date | None = None     # O6b: the latest CP plan end
        self.birth_month: date | None = None       # O11: the 1st of the child's month of birth
        self.period_start: date | None = None      # O11: DECOM of the open period of care
        # O12: allocations and unallocations in date order: (date, worker_ref or None)
        self.allocations: list[tuple[date, str | None]] = []

    def cp_open(self) -> bool:
        return any(p[2] for p in self.plans.values())

    def is_lac(self) -> bool:
        return self.lac_open and G.LEGAL_STATUS_GROUPS.get(self.lac_ls or "", "other") is not None

    def care_leaver_open(self) -> bool:
        cl = self.care_leaver
        return cl is not None and cl.in_touch not in G.CARE_LEAVER_IN_TOUCH_EXCLUDED and not self.is_lac()

    def cin_open(self) -> bool:
        return _in_need(self.episode_open, self.cp_open(), self.is_lac())

    def placement_update(self, d: date, new_placement: bool, begins: bool = True) -> None:
        """Keep ``placements`` in step after the period or legal status changed on ``d``, or a
        placement began (``new_placement``)."""
        placements = self.placements
        current = placements[-1] if placements and placements[-1][1] is None else None
        now = self.is_lac()
        if current is not None and (new_placement or not now):
            current[1] = d
            current = None
        if now and current is None:
            placements.append([d, None, begins])


def placements_in_look_back(placements: list, as_of: date, months: int) -> int:
    """O10/O10b: the placement held on the look-back's first day F (the look-back is
    ``(as_of - months, as_of]``) + the placements that begin after F up to ``as_of``."""
    first = months_look_back_start(as_of, months) + timedelta(days=1)
    n = 0
    for start, end, begins in placements:
        if start > as_of or (end is not None and end <= first):
            continue
        if start <= first or begins:
            n += 1
    return n


def _placement_count_changes(placements: list, as_of: date, months: int) -> date | None:
    """The first day after ``as_of`` on which the count of :func:`placements_in_look_back` can
    change with no new event: a placement that ended leaves the look-back (it ended on or before
    the new first day), or one held since before a legal-status-only start becomes the one held on
    the first day."""
    first = months_look_back_start(as_of, months) + timedelta(days=1)
    points = [end for _start, end, _begins in placements if end is not None and end > first]
    points += [start for start, _end, begins in placements if not begins and first < start <= as_of]
    if not points:
        return None
    # the first day D whose look-back starts on or after min(points): D - months >= that - 1 day
    return _first_day_outside(min(points) - timedelta(days=1), months)


def contribution(history: ChildHistory, as_of: date, calendar: WorkingDayCalendar,
                 drift_limits: Mapping[str, int] = DRIFT_WORKDAYS_DEFAULT,
                 clocks: list | None = None) -> Contribution:
    """A child's share of every figure as of ``as_of``. ``clocks``: ``compute_clocks(history,
    calendar)`` when the caller already has it (it does not depend on ``as_of``: the Prometheus
    backfill recounts one unchanged history on many days and computes its clocks once)."""
    flows: dict[tuple[str, Labels, date], float] = {}
    stocks: dict[tuple[str, Labels], float] = {}
    candidates: list[date] = []
    st = _State()

    def flow(metric: str, labels: Labels, d: date, amount: float = 1.0) -> None:
        key = (metric, labels, d)
        flows[key] = flows.get(key, 0.0) + amount

    if clocks is None:
        clocks = compute_clocks(history, calendar)
    crossed = False
    for ev in history.events:
        d = ev.date
        if d is None:
            continue
        if not crossed and d > as_of:
            crossed = True
            candidates.append(d)
            _stocks(st, clocks, as_of, calendar, stocks, candidates, drift_limits)
        if not crossed:
            st.latest = ev
        _feed(st, ev, d, flow)
    if not crossed:
        _stocks(st, clocks, as_of, calendar, stocks, candidates, drift_limits)

    for clock in clocks:
        if clock.completed:
            ev = clock.stop_event
            done, in_time = _CLOCK_FLOW[clock.process]
            labels = _labels(ev.la, ev.team)
            flow(done, labels, ev.date)
            if clock.in_time:
                flow(in_time, labels, ev.date)

    stable = min((c for c in candidates if c > as_of), default=None)
    return Contribution(flows, stocks, stable)


def _month_start(value) -> date | None:
    """The 1st of a ``YYYY-MM`` month (None when it is not one)."""
    try:
        year, month = str(value)[:7].split("-")
        return date(int(year), int(month), 1)
    except (TypeError, ValueError):
        return None


def social_workers_in_look_back(allocations: list, as_of: date, months: int = 12) -> int:
    """O12: distinct workers allocated during ``(as_of - months, as_of]``: the worker allocated on
    its first day F (the latest allocation on or before F, unless an unallocation followed it by
    F) + every worker allocated after F up to ``as_of``."""
    first = months_look_back_start(as_of, months) + timedelta(days=1)
    workers: set[str] = set()
    held = None
    for d, worker in allocations:
        if d <= first:
            held = worker
        elif d <= as_of and worker is not None:
            workers.add(worker)
    if held is not None:
        workers.add(held)
    return len(workers)


def _cohort_reached(st: _State, stage: int, metric: str, flow) -> None:
    """The referrals of the open episode that had not reached this stage (S47 / CP plan) now have:
    one flow each, dated on the referral (the cohort is the referral's date)."""
    for entry in st.episode_referrals:
        if not entry[stage]:
            entry[stage] = True
            flow(metric, entry[1], entry[0])


def _feed(st: _State, ev: Event, d: date, flow) -> None:
    t = ev.event_type
    lab = _labels(ev.la, ev.team)
    if t == "contact.received":
        flow(P + "contacts", lab, d)
        outcome = ev.outcome
        if outcome == G.CONTACT_OUTCOME_TO_REFERRAL:
            flow(P + "contacts_to_referral", lab, d)
        if outcome in G.CONTACT_OUTCOMES_CLOSED_AND_LOGGED:
            flow(P + "contacts_closed_and_logged", lab, d)
        if ev.early_help_active:
            flow(P + "contacts_early_help_active", lab, d)
    elif t == "referral.received":
        by_source = _labels(ev.la, ev.team, source_group=G.source_group(ev.source))
        flow(P + "referrals", by_source, d)
        if ev.referral_nfa:
            flow(P + "referrals_nfa", by_source, d)
        earliest = add_calendar_months(d, -12)
        if any(earliest <= r < d for r in st.referral_dates):
            flow(P + "rereferrals", lab, d)
        st.referral_dates.append(d)
        flow(P + "cohort_referrals", lab, d)
        if not ev.referral_nfa:
            if not st.episode_open:
                st.episode_referrals = []
            st.episode_referrals.append([d, lab, False, False])
            st.episode_open = True
            st.episode_ref = ev.episode_ref
    elif t == "cin_episode.closed":
        if ev.reason in G.CLOSURE_ASSESSED_NOT_IN_NEED:
            flow(P + "referrals_assessed_not_in_need", lab, d)
        if superseded_episode(ev.episode_ref, st.episode_ref if st.episode_open else None):
            # It closes an earlier episode; a later referral has opened the one that stays open
            # (an episode closed on the day the next referral arrives). Only the earlier
            # episode's cohort referrals go.
            opened = st.episode_referrals[-1][0] if st.episode_referrals else d
            st.episode_referrals = [r for r in st.episode_referrals if r[0] >= opened]
        else:
            st.episode_open = False
            st.episode_referrals = []
            st.unallocated.pop("cin", None)
    elif t == "assessment.completed":
        families = {G.factor_family(code) for code in (ev.factors or ())}
        families.discard(None)
        for family in sorted(families):
            flow(P + "assessment_factors", _labels(ev.la, None, factor_family=family), d)
    elif t == "early_help.opened":
        flow(P + "early_help_started", _labels(ev.la, ev.team, source_group=G.source_group(ev.lead_agency)), d)
    elif t == "s47.started":
        flow(P + "s47_started", lab, d)
        _cohort_reached(st, 2, P + "cohort_referrals_to_s47", flow)
    elif t == "icpc.held":
        if not ev.transfer_in and ev.resulted_in_cpp:
            flow(P + "icpcs_resulting_in_plan", lab, d)
    elif t == "court.application":
        flow(P + "care_applications", lab, d)
    elif t == "cp_plan.started":
        ref = ev.plan_ref if ev.plan_ref is not None else ev.event_id
        flow(P + "cp_plans_started", lab, d)
        _cohort_reached(st, 3, P + "cohort_referrals_to_cp_plan", flow)
        if (ev.previous_plans or 0) >= 1 or st.plans_seen >= 1:
            flow(P + "cp_plans_started_subsequent", lab, d)
        if st.last_plan_end is not None and st.last_plan_end >= add_calendar_months(d, -24):
            flow(P + "cp_plans_started_within_2y", lab, d)
        st.plans_seen += 1
        st.plans[ref] = [d, ev.initial_category, True]
    elif t == "cp_plan.category_changed":
        plan = st.plans.get(ev.plan_ref)
        if plan is not None and ev.latest_category:
            plan[1] = ev.latest_category
    elif t == "cp_plan.ended":
        flow(P + "cp_plans_ended", lab, d)
        flow(P + "cp_plans_ended_by_route", _labels(ev.la, ev.team, end_route=ev.end_route or "other"), d)
        plan = st.plans.get(ev.plan_ref)
        if plan is None and ev.plan_ref is None:
            open_plans = [p for p in st.plans.values() if p[2]]
            plan = open_plans[-1] if open_plans else None
        if plan is not None:
            if d >= add_calendar_months(plan[0], 24):
                flow(P + "cp_plans_ended_2y_plus", lab, d)
            plan[2] = False
        st.last_plan_end = d
        if not st.cp_open():
            st.unallocated.pop("cp", None)
    elif t == "lac.started":
        ls = ev.legal_status
        if ev.birth_month:
            st.birth_month = _month_start(ev.birth_month)
        if st.lac_open:  # continuation after an X1 break
            st.lac_ls = ls or st.lac_ls
            st.placement_update(d, False, begins=False)
            return
        st.lac_open = True
        st.lac_ls = ls
        st.period_start = d
        before_data = bool(ev.began_before_data)
        if ls not in G.SHORT_BREAK_LEGAL_STATUSES and not before_data:
            flow(P + "lac_started", lab, d)
        # a period's first placement begins at DECOM, except an RNE L episode held since before the data
        st.placement_update(d, True, begins=not (before_data and ev.rne == G.LEGAL_STATUS_ONLY_RNE))
    elif t == "lac.legal_status_changed":
        if st.lac_open:
            if ev.legal_status:
                st.lac_ls = ev.legal_status
            move = ev.rne in G.PLACEMENT_MOVE_RNE
            st.placement_update(d, move, begins=move)
    elif t == "placement.changed":
        if st.lac_open and ev.rne in G.PLACEMENT_MOVE_RNE:
            st.placement_update(d, True)
    elif t == "lac.ended":
        reason = ev.reason_ceased
        if reason in G.CEASED_NOT_LEAVING_CARE or not st.lac_open:
            return
        if st.is_lac():
            flow(P + "lac_ceased", lab, d)
            flow(P + "lac_ceased_by_outcome", _labels(ev.la, ev.team, outcome_group=G.outcome_group(reason)), d)
        st.lac_open = False
        st.placement_update(d, False)
        st.unallocated.pop("lac", None)
    elif t == "case.unallocated":
        st.allocations.append((d, None))
        ct = ev.case_type
        if ct and ct not in st.unallocated:
            st.unallocated[ct] = d
    elif t == "case.allocated":
        st.unallocated.pop(ev.case_type, None)
        if ev.worker_ref:
            st.allocations.append((d, str(ev.worker_ref)))
    elif t == "care_leaver.status":
        st.care_leaver = ev
    elif t == "workforce.snapshot":
        st.workforce = ev
        leavers = ev.leavers_fte
        if leavers:
            flow(P + "workforce_leavers_fte", lab, d, float(leavers))
    meeting = _MEETING_PARTICIPATION.get(t)
    if meeting is not None and not (t == "icpc.held" and ev.transfer_in):
        attended = G.PARTICIPATION_ATTENDED.get(getattr(ev, meeting[1]) or "")
        if attended is not None:
            flow(P + "child_participation", _labels(ev.la, ev.team, meeting=meeting[0], attended=attended), d)


def _in_need(episode_open: bool, cp_open: bool, lac: bool) -> bool:
    """A child in need on the day: an open CIN episode, a CP plan, or looked after."""
    return bool(episode_open or cp_open or lac)


def _grow(growing: dict, key: tuple[str, Labels], start: date) -> None:
    """A growing maximum (``Contribution.growing``): the earliest start counts most working days."""
    before = growing.get(key)
    if before is None or start < before:
        growing[key] = start


def _stocks(st: _State, clocks, as_of: date, cal: WorkingDayCalendar, stocks: dict, candidates: list,
            drift_limits: Mapping[str, int] = DRIFT_WORKDAYS_DEFAULT, growing: dict | None = None) -> None:
    """The stocks as of ``as_of`` into ``stocks``, the days they can change into ``candidates``.
    With ``growing`` (a dict), the maxima that grow daily (``elapsed(start, as_of)``) go there as
    their start (``Contribution.growing``), not into ``stocks``, and add no next-day candidate."""
    latest = st.latest
    if latest is None:
        return
    la, team = latest.la, latest.team

    def put(metric: str, labels: Labels, value: float = 1.0) -> None:
        key = (metric, labels)
        if metric in MAX_METRICS:
            stocks[key] = max(stocks.get(key, 0.0), value)
        else:
            stocks[key] = stocks.get(key, 0.0) + value

    lab = _labels(la, team)
    # What is open (the _State methods, worked out once: nothing changes while stocks are read)
    cp_open, lac = st.cp_open(), st.is_lac()
    cin_open = _in_need(st.episode_open, cp_open, lac)
    if st.workforce is not None:
        w = st.workforce
        wl, wt = w.la, w.team
        for measure, name in _WORKFORCE_MEASURES:
            value = getattr(w, name)
            if value is not None:
                put(P + "workforce_fte", _labels(wl, wt, measure=measure), float(value))
    if cin_open:
        put(P + "cin_open", lab)
        put(P + "open_cases", lab)
    for start, category, is_open in st.plans.values():
        if not is_open:
            continue
        put(P + "cp_plans_open", _labels(la, team, category=category or "not_recorded"))
        two_years = add_calendar_months(start, 24)
        if as_of >= two_years:
            put(P + "cp_plans_open_2y_plus", lab)
        else:
            candidates.append(two_years)
    if lac:
        put(P + "lac_open", _labels(la, team, legal_status_group="not_recorded" if st.lac_ls is None else G.LEGAL_STATUS_GROUPS.get(st.lac_ls, "other")
                                     or "other"))
        for months, metric in ((12, P + "lac_3plus_placements_12m"), (24, P + "lac_3plus_placements_24m")):
            if placements_in_look_back(st.placements, as_of, months) >= 3:
                put(metric, lab)
            change = _placement_count_changes(st.placements, as_of, months)
            if change is not None:
                candidates.append(change)
    if lac:
        # O11: under-16s looked after continuously for 2.5 years or more, and those of them in the same
        # placement for 2 years or more
        sixteen = add_calendar_months(st.birth_month, 16 * 12) if st.birth_month is not None else None
        if sixteen is not None and as_of < sixteen and st.period_start is not None:
            candidates.append(sixteen)
            long_term = add_calendar_months(st.period_start, 30)
            if as_of >= long_term:
                put(P + "lac_long_term_under16", lab)
                current = st.placements[-1] if st.placements and st.placements[-1][1] is None else None
                if current is not None:
                    settled = add_calendar_months(current[0], 24)
                    if as_of >= settled:
                        put(P + "lac_long_term_same_placement_2y", lab)
                    else:
                        candidates.append(settled)
            else:
                candidates.append(long_term)
        # O12: 3 or more social workers in the previous 12 months
        if social_workers_in_look_back(st.allocations, as_of) >= 3:
            put(P + "lac_3plus_social_workers_12m", lab)
        first = months_look_back_start(as_of, 12) + timedelta(days=1)
        inside = [d for d, _ in st.allocations if first < d <= as_of]
        if inside:
            candidates.append(_first_day_outside(min(inside) - timedelta(days=1), 12))
    cl = st.care_leaver
    if cl is not None and cl.in_touch not in G.CARE_LEAVER_IN_TOUCH_EXCLUDED:
        band = _labels(la, team, age_band=cl.age_band or "unknown")
        put(P + "care_leavers", band)
        if G.is_eet(cl.activity):
            put(P + "care_leavers_eet", band)
        if G.is_suitable_accommodation(cl.accommodation):
            put(P + "care_leavers_suitable_accommodation", band)
    is_open = {"cin": cin_open, "cp": cp_open, "lac": lac, "care_leaver": st.care_leaver_open()}
    # Drift: the child's open case (the most intensive: LAC, else CP, else CIN) with no recorded
    # activity (any event of the child) for at least drift_limits[case type] working days.
    drift_type = "lac" if is_open["lac"] else "cp" if is_open["cp"] else "cin" if st.episode_open else None
    if drift_type is not None and latest.date is not None:
        limit = drift_limits[drift_type]
        d_lab = _labels(la, team, case_type=drift_type)
        quiet = cal.elapsed(latest.date, as_of)
        if quiet >= limit:
            put(P + "drift_cases", d_lab)
            if growing is None:
                put(P + "drift_max_workdays", d_lab, float(quiet))
                candidates.append(as_of + timedelta(days=1))
            else:
                _grow(growing, (P + "drift_max_workdays", d_lab), latest.date)
        else:
            put(P + "drift_max_workdays", d_lab, 0.0)
            # drifting from the day after the limit-th working day counted from the last activity
            candidates.append(cal.add(latest.date, limit - 1) + timedelta(days=1))
    for case_type, since in st.unallocated.items():
        if since <= as_of and is_open.get(case_type):
            ct_lab = _labels(la, team, case_type=case_type)
            put(P + "unallocated_cases", ct_lab)
            if growing is None:
                put(P + "unallocated_max_workdays", ct_lab, float(max(cal.elapsed(since, as_of), 0)))
                candidates.append(as_of + timedelta(days=1))
            else:  # (since <= as_of: the count is never negative)
                _grow(growing, (P + "unallocated_max_workdays", ct_lab), since)
    for clock in clocks:
        if clock.due is None or not clock.is_open(as_of):
            continue
        p_lab = _labels(la, team, process=clock.process)
        put(P + "clocks_open", p_lab)
        due = clock.due
        if as_of > due:
            put(P + "clocks_overdue", p_lab)
            if growing is None:
                put(P + "clocks_max_overdue_workdays", p_lab, float(cal.elapsed(due, as_of)))
                candidates.append(as_of + timedelta(days=1))
            else:
                _grow(growing, (P + "clocks_max_overdue_workdays", p_lab), due)
        else:
            put(P + "clocks_max_overdue_workdays", p_lab, 0.0)
            if cal.elapsed(as_of, due) <= 2:
                put(P + "clocks_due_soon", p_lab)
                candidates.append(due + timedelta(days=1))
            else:
                candidates.append(cal.add(due, -3) + timedelta(days=1))
