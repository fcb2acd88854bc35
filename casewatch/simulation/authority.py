"""A synthetic English local authority's children's social care, as a stream of case events.

Pure Python (no Kafka): ``authority_events(...)`` is an iterator of wire-format events
(docs/events.md) in event-time order, seeded and reproducible. Flows follow the rates of a
calibration profile of :mod:`casewatch.simulation.rates` (national by default; stockton for the demo
authority), sized by the child population.

How it works. Day by day, contacts arrive (on working days, Poisson). A contact that becomes a
referral starts a *journey*: the whole future of that CIN episode (assessment, strategy discussion,
S47, ICPC, CP plan and reviews, becoming looked after, placements, reviews, visits, leaving care,
allocations) is drawn at once and its events are put on a date-ordered heap; each day the events
due are released. A re-referral picks a child whose last referral was within the past 12 months
and whose episode has closed, so the I7 rate is controlled directly.

Opening caseload. The simulation starts ``warmup_years`` before ``history_start``. Journeys of the
warm-up years are kept (with their earlier events) only if they are still open at
``history_start`` or their referral is within 12 months of it, so the engine starts the window
with a realistic stock of open CIN, CP and LAC cases and the look-back it needs for re-referrals.

Identifiers look like a case system's raw ids (``LCS-000123``); the ingest edge pseudonymises them.
``event_id`` is a UUIDv5 of seed, authority and sequence number.
"""
from __future__ import annotations

import heapq
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

from casewatch.domain.calendar import WorkingDayCalendar, add_calendar_months
from casewatch.simulation import rates as R

LONDON = ZoneInfo("Europe/London")
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "casewatch:simulator")

ASSESSMENT_TEAMS = ("assessment_1", "assessment_2")
CIN_TEAM, CP_TEAM, LAC_TEAM, LEAVING_CARE_TEAM = "cin_1", "cp_1", "lac_1", "leaving_care"
WORKFORCE_TEAMS = ASSESSMENT_TEAMS + (CIN_TEAM, CP_TEAM, LAC_TEAM, LEAVING_CARE_TEAM)
SCENARIOS = ("referral_surge", "staff_shortage")

# Extra working days a team short of staff takes (staff_shortage scenario).
SHORTAGE_ASSESSMENT_WD = 15
SHORTAGE_ICPC_WD = 9
SHORTAGE_REVIEW_LATE_DAYS = (3, 25)


@dataclass(frozen=True)
class Scenario:
    """``referral_surge``: contacts (hence referrals) x2 from ``start``. ``staff_shortage``: from
    ``start``, ``team``'s assessments and ICPCs run late, reviews slip, more cases go unallocated,
    and its workforce snapshots show the vacancies."""
    name: str
    start: date
    team: str | None = None

    def __post_init__(self):
        if self.name not in SCENARIOS:
            raise ValueError(f"unknown scenario; choose from {', '.join(SCENARIOS)}")
        if self.name == "staff_shortage" and not self.team:
            raise ValueError("staff_shortage needs a team")


@dataclass
class _Child:
    ref: str
    birth: date
    last_referral: date | None = None
    busy_until: date = date.min
    plans: int = 0           # CP plans seen in this simulation
    prior_plans: int = 0     # CP plans before the simulation (case-system history)


@dataclass
class _Journey:
    """Events of one journey, collected before deciding whether the warm-up keeps them."""
    events: list = field(default_factory=list)
    last: date = date.min
    clock: dict = field(default_factory=dict)   # date -> time of day of the latest event there


def _pick(rng: random.Random, table: dict[str, float]) -> str:
    u = rng.random() * sum(table.values())
    acc = 0.0
    for key, weight in table.items():
        acc += weight
        if u < acc:
            return key
    return key


def _inverse_cdf(rng: random.Random, points: tuple) -> float:
    u = rng.random()
    for (p0, x0), (p1, x1) in zip(points, points[1:]):
        if u <= p1:
            return x0 + (x1 - x0) * (u - p0) / (p1 - p0) if p1 > p0 else x1
    return points[-1][1]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _birthday(birth: date, age: int) -> date:
    try:
        return birth.replace(year=birth.year + age)
    except ValueError:  # 29 February
        return date(birth.year + age, 3, 1)


class Authority:
    def __init__(self, la_code: str, population: int, seed: int, history_start: date,
                 calendar: WorkingDayCalendar | None = None, scenarios: Iterable[Scenario] = (),
                 index: int = 0, warmup_years: int = 6, profile: str = "national"):
        self.R = R.profile(profile)   # the calibration profile's rates (casewatch.simulation.rates)
        self.la = la_code
        self.population = population
        self.seed = seed
        self.index = index
        self.cal = calendar or WorkingDayCalendar()
        self.scenarios = tuple(scenarios)
        self.history_start = history_start
        self.sim_start = date(history_start.year - warmup_years, history_start.month, 1)
        self.rng = random.Random(f"casewatch-simulator:{seed}:{la_code}")
        self.seq = 0
        self.counters: dict[str, int] = {}
        self.heap: list = []
        self.children: dict[str, _Child] = {}
        self.recent: list[tuple[date, str]] = []   # (referral date, child) in date order
        self.recent_head = 0
        self.older: list[str] = []
        self.team_cases: dict[str, list[tuple[date, date]]] = {t: [] for t in WORKFORCE_TEAMS}
        self.workers = {t: [self._worker_ref() for _ in range(12)] for t in WORKFORCE_TEAMS}
        self.contacts_per_working_day = (population * self.R.REFERRALS_PER_CHILD_YEAR
                                         / self.R.WORKING_DAYS_PER_YEAR / self.R.CONTACT_TO_REFERRAL)
        self._journey: _Journey | None = None

    # -- identifiers ---------------------------------------------------------------------------
    def _ref(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = n
        tag = "" if self.index == 0 else str(self.index)
        return f"{prefix}{tag}-{n:06d}"

    def _worker_ref(self) -> str:
        return self._ref("WKR")

    def _new_child(self, d: date, age_years: float | None = None) -> _Child:
        rng = self.rng
        if age_years is None:
            band = rng.random()
            age_years = (rng.uniform(0, 5) if band < 0.30 else rng.uniform(5, 10) if band < 0.58
                         else rng.uniform(10, 16) if band < 0.88 else rng.uniform(16, 17.9))
        child = _Child(self._ref("LCS"), d - timedelta(days=int(age_years * 365.25)))
        if rng.random() < self.R.SUBSEQUENT_PLAN * 0.9:
            child.prior_plans = 1 if rng.random() < 0.8 else 2
        self.children[child.ref] = child
        return child

    # -- scenarios -----------------------------------------------------------------------------
    def _active(self, name: str, d: date, team: str | None = None) -> bool:
        return any(s.name == name and d >= s.start and (team is None or s.team == team)
                   for s in self.scenarios)

    # -- event construction --------------------------------------------------------------------
    def _emit(self, event_type: str, d: date, team: str, child: _Child | None, **fields) -> None:
        rng = self.rng
        self.seq += 1
        clock = self._journey.clock if self._journey is not None else {}
        if d in clock:  # later the same day as the journey's previous event there
            tod = min(clock[d] + rng.randint(60, 1800), 20 * 3600)
        else:
            tod = rng.randint(8 * 3600, 17 * 3600)
        clock[d] = tod
        occurred = datetime.combine(d, time(tod // 3600, tod % 3600 // 60, tod % 60), LONDON)
        recorded = occurred + timedelta(seconds=rng.randint(0, 50))
        event = {
            "event_id": str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{self.seed}:{self.la}:{self.seq}")),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": occurred.isoformat(timespec="seconds"),
            "effective_date": d.isoformat(),
            "recorded_at": recorded.isoformat(timespec="seconds"),
            "la_code": self.la,
            "team": team,
        }
        if child is not None:
            event["child_ref"] = child.ref
        for k, v in fields.items():
            if v is not None:
                event[k] = v.isoformat() if isinstance(v, date) else v
        rec_tod = recorded.hour * 3600 + recorded.minute * 60 + recorded.second
        item = (d.toordinal(), rec_tod, self.seq, event)
        if self._journey is None:
            heapq.heappush(self.heap, item)
        else:
            self._journey.events.append(item)
            if d > self._journey.last:
                self._journey.last = d

    # -- the daily loop ------------------------------------------------------------------------
    def events(self, until: date | None = None) -> Iterator[dict]:
        """Events in event-time order up to and including ``until`` (forever when None)."""
        d = self.sim_start
        month_done = None
        while until is None or d <= until:
            if self.cal.is_working_day(d):
                self._day(d)
                if d >= self.history_start and month_done != (d.year, d.month):
                    month_done = (d.year, d.month)
                    self._workforce(d)
            today = d.toordinal()
            while self.heap and self.heap[0][0] <= today:
                yield heapq.heappop(self.heap)[3]
            d += timedelta(days=1)

    def _day(self, d: date) -> None:
        rng = self.rng
        lam = self.contacts_per_working_day * (2.0 if self._active("referral_surge", d) else 1.0)
        for _ in range(_poisson(rng, lam)):
            outcome = _pick(rng, self.R.CONTACT_OUTCOMES)
            source = _pick(rng, self.R.REFERRAL_SOURCES)
            if outcome == "cin_referral":
                self._referral(d, source)
            else:
                self._contact_only(d, source, outcome)

    def _keep(self, journey: _Journey, referral_date: date) -> bool:
        return (journey.last >= self.history_start
                or referral_date >= add_calendar_months(self.history_start, -13))

    def _begin(self) -> None:
        self._journey = _Journey()

    def _end(self, referral_date: date) -> None:
        journey, self._journey = self._journey, None
        if self._keep(journey, referral_date):
            for item in journey.events:
                heapq.heappush(self.heap, item)

    # -- contacts and early help -----------------------------------------------------------------
    def _contact_only(self, d: date, source: str, outcome: str) -> None:
        rng = self.rng
        self._begin()
        child = self._new_child(d)
        team = rng.choice(ASSESSMENT_TEAMS)
        self._emit("contact.received", d, team, child, contact_date=d, source=source, outcome=outcome,
                   early_help_active=rng.random() < self.R.CONTACT_EARLY_HELP_ACTIVE,
                   closed_and_logged=outcome in ("nfa", "information_advice"))
        if outcome == "eh_referral":
            self._early_help(self.cal.add(d, rng.randint(1, 10)), child, source, None)
        self._end(d)

    def _early_help(self, start: date, child: _Child, lead_agency: str, stepped_down_from: str | None) -> date:
        rng = self.rng
        self._emit("early_help.opened", start, "unassigned", child, start_date=start,
                   lead_agency=lead_agency, stepped_down_from=stepped_down_from)
        end = start + timedelta(days=rng.randint(60, 300))
        self._emit("early_help.closed", end, "unassigned", child, end_date=end,
                   end_reason=_pick(rng, self.R.EARLY_HELP_END))
        return end

    # -- referral journeys -------------------------------------------------------------------------
    def _referral_child(self, d: date) -> _Child:
        rng = self.rng
        cutoff = add_calendar_months(d, -12)
        # drop referrals older than 12 months from the "recent" pool
        while self.recent_head < len(self.recent) and self.recent[self.recent_head][0] < cutoff:
            ref_date, ref = self.recent[self.recent_head]
            self.recent_head += 1
            if self.children[ref].last_referral == ref_date:
                self.older.append(ref)
        if self.recent_head > 5000:
            self.recent = self.recent[self.recent_head:]
            self.recent_head = 0
        u = rng.random()
        if u < self.R.RE_REFERRAL and len(self.recent) > self.recent_head:
            for _ in range(12):
                ref_date, ref = self.recent[rng.randrange(self.recent_head, len(self.recent))]
                child = self.children[ref]
                if (child.last_referral == ref_date and child.busy_until < d and cutoff <= ref_date < d
                        and _birthday(child.birth, 18) > d + timedelta(days=60)):
                    return child
        elif u < self.R.RE_REFERRAL + self.R.RETURNING_CHILD_OLDER and self.older:
            for _ in range(6):
                child = self.children[rng.choice(self.older)]
                if (child.busy_until < d and child.last_referral is not None and child.last_referral < cutoff
                        and _birthday(child.birth, 18) > d + timedelta(days=60)):
                    return child
        return self._new_child(d)

    def _referral(self, d: date, source: str) -> None:
        rng, cal = self.rng, self.cal
        child = self._referral_child(d)
        child.last_referral = d
        self.recent.append((d, child.ref))
        self._begin()
        team = rng.choice(ASSESSMENT_TEAMS)
        contact_ref = self._ref("CON")
        self._emit("contact.received", d, team, child, contact_date=d, source=source, outcome="cin_referral",
                   early_help_active=rng.random() < self.R.CONTACT_EARLY_HELP_ACTIVE, closed_and_logged=False)
        referral_ref = self._ref("REF")
        uasc = rng.random() < self.R.DIRECT_UASC_PER_REFERRAL and d - child.birth > timedelta(days=15 * 365)
        u = rng.random()
        nfa = u < self.R.REFERRAL_NFA and not uasc
        if nfa:
            outcome = "nfa"
        elif u < self.R.REFERRAL_NFA + self.R.REFERRAL_ADVICE_OR_STEP_DOWN and not uasc:
            outcome = rng.choice(("advice_signpost", "step_down_eh"))
        elif u < self.R.REFERRAL_NFA + self.R.REFERRAL_ADVICE_OR_STEP_DOWN + self.R.STRATEGY_AT_REFERRAL and not uasc:
            outcome = "strategy_or_s47"
        else:
            outcome = "assessment_required"
        reasons = self._factors(nfa=False)[:3] if not uasc else ["9A"]
        self._emit("referral.received", d, team, child, referral_date=d, source=source,
                   from_contact_ref=contact_ref, referral_nfa=nfa, reasons=reasons,
                   primary_need=_pick(rng, self.R.PRIMARY_NEED), episode_ref=referral_ref)
        decision = cal.add(d, rng.randint(0, 1)) if rng.random() < self.R.REFERRAL_DECISION_WITHIN_1WD \
            else cal.add(d, rng.randint(2, 5))
        self._emit("referral.outcome", decision, team, child, outcome_date=decision, outcome=outcome,
                   referral_ref=referral_ref)
        if outcome in ("nfa", "advice_signpost", "step_down_eh"):
            self._close_cin(decision, team, child, "RC7")
            end = decision
            if outcome == "step_down_eh":
                self._early_help(cal.add(decision, rng.randint(1, 5)), child, source, "cin")
        else:
            end = self._assessment_phase(d, child, team, referral_ref, outcome == "strategy_or_s47", uasc)
        child.busy_until = max(child.busy_until, end)
        self._end(d)

    def _factors(self, nfa: bool) -> list[str]:
        rng = self.rng
        found = [code for code, p in self.R.ASSESSMENT_FACTORS.items() if rng.random() < p]
        if not found:
            found = ["21"] if nfa else ["20"]
        return found

    def _assessment_phase(self, d: date, child: _Child, team: str, referral_ref: str,
                          strategy: bool, uasc: bool) -> date:
        """Assessment (and strategy discussion / S47 / ICPC) after a referral; returns the date the
        child's involvement ends."""
        rng, cal = self.rng, self.cal
        case_team = CP_TEAM if strategy else team
        assessment_ref = self._ref("ASM")
        start = cal.add(d, rng.randint(0, 2))
        wd = int(_inverse_cdf(rng, self.R.ASSESSMENT_WD) + 0.5)
        if self._active("staff_shortage", d, case_team):
            wd += SHORTAGE_ASSESSMENT_WD
        authorised = cal.add(d, wd)
        if authorised < start:
            start = cal.roll_forward(d)
        self._emit("assessment.started", start, case_team, child, assessment_ref=assessment_ref,
                   start_date=start, referral_ref=referral_ref)
        self._segment(case_team, "cin", child, d, authorised, "FCONTA")

        next_step = None  # ("cp", date) | ("cin", date) | ("lac", date, legal) | ("close", date, RC)
        assessment_outcome = None
        if uasc:
            next_step = ("lac", cal.add(d, 1), "V2")
            assessment_outcome = "other"
        elif strategy:
            s_date = cal.add(d, rng.randint(0, 2))
            decision = _pick(rng, self.R.STRATEGY_DECISIONS)
            self._emit("strategy_discussion.held", s_date, CP_TEAM, child, date=s_date, decision=decision)
            if decision == "s47":
                assessment_outcome = "strategy_or_s47"
                next_step = self._s47(s_date, child)
        if assessment_outcome is None:
            assessment_outcome = _pick(rng, self.R.ASSESSMENT_OUTCOMES)
        if next_step is None:
            if assessment_outcome == "nfa":
                next_step = ("close", authorised, "RC8")
            elif assessment_outcome == "step_down_eh":
                next_step = ("close", authorised, "RC9")
            else:
                assessment_outcome = "other"
                next_step = ("cin", authorised)
        factors = self._factors(nfa=next_step[0] == "close" and next_step[2] == "RC8")
        if uasc:
            factors = sorted(set(factors) | {"9A"})
        self._emit("assessment.completed", authorised, case_team, child, assessment_ref=assessment_ref,
                   authorisation_date=authorised, factors=factors, child_seen=rng.random() < 0.97,
                   outcome=assessment_outcome)
        kind = next_step[0]
        if kind == "close":
            when = max(next_step[1], authorised)
            self._close_cin(when, case_team, child, next_step[2])
            if next_step[2] == "RC9":
                self._early_help(cal.add(when, rng.randint(1, 5)), child, "5D", "cin")
            return when
        if kind == "cp":
            return self._cp_plan(next_step[1], child)
        if kind == "lac":
            return self._looked_after(next_step[1], child, next_step[2], "FCONTA")
        return self._cin_plan(next_step[1], child)

    def _s47(self, s_date: date, child: _Child):
        rng, cal = self.rng, self.cal
        s47_ref = self._ref("S47")
        self._emit("s47.started", s_date, CP_TEAM, child, s47_ref=s47_ref, start_date=s_date,
                   icpc_target_date=cal.add(s_date, 15))
        if rng.random() < self.R.S47_TO_ICPC:
            wd = int(_inverse_cdf(rng, self.R.ICPC_WD) + 0.5)
            if self._active("staff_shortage", s_date, CP_TEAM):
                wd += SHORTAGE_ICPC_WD
            icpc = cal.add(s_date, wd)
            end = cal.add(s_date, max(0, wd - rng.randint(1, 3)))
            self._emit("s47.completed", end, CP_TEAM, child, s47_ref=s47_ref, end_date=end,
                       icpc_not_required=False, outcome="icpc")
            plan = rng.random() < self.R.ICPC_TO_PLAN
            self._emit("icpc.held", icpc, CP_TEAM, child, date=icpc, s47_ref=s47_ref, resulted_in_cpp=plan,
                       transfer_in=False, child_participation=self._participation(child, icpc))
            return ("cp", icpc) if plan else ("cin", icpc)
        end = cal.add(s_date, rng.randint(3, 25))
        outcome = _pick(rng, self.R.S47_OTHER_OUTCOMES)
        self._emit("s47.completed", end, CP_TEAM, child, s47_ref=s47_ref, end_date=end,
                   icpc_not_required=True, outcome=outcome)
        if outcome == "nfa":
            return ("close", end, "RC8")
        if outcome == "legal_action" and rng.random() < self.R.S47_LEGAL_ACTION_TO_LAC:
            return ("lac", cal.add(end, rng.randint(1, 10)), rng.choice(("C1", "L2", "C1")))
        return ("cin", end)

    def _participation(self, child: _Child, d: date) -> str:
        if d < _birthday(child.birth, 4):
            return "PN0"
        return _pick(self.rng, self.R.PARTICIPATION)

    def _close_cin(self, d: date, team: str, child: _Child, reason: str) -> None:
        self._emit("cin_episode.closed", d, team, child, closure_date=d, reason=reason)

    # -- allocation ------------------------------------------------------------------------------
    def _segment(self, team: str, case_type: str, child: _Child, start: date, end: date, reason: str) -> None:
        """The case is held by ``team`` over [start, end]: allocation, and sometimes a spell
        without an allocated worker (the worker left)."""
        rng, cal = self.rng, self.cal
        self.team_cases[team].append((start, end))
        self._emit("case.allocated", start, team, child, case_type=case_type, allocation_date=start,
                   change_reason=reason, worker_ref=rng.choice(self.workers[team]))
        chance = self.R.UNALLOCATED_SPELL[case_type] * max(1.0, (end - start).days / 365)
        if self._active("staff_shortage", start, team):
            chance *= 4
        if rng.random() < min(chance, 0.9) and (end - start).days > 10:
            gap = cal.add(start + timedelta(days=rng.randint(3, (end - start).days - 5)), 0)
            lo, hi = self.R.UNALLOCATED_WD[case_type]
            back = cal.add(gap, rng.randint(lo, hi))
            if back < end:
                self._emit("case.unallocated", gap, team, child, case_type=case_type, allocation_date=gap,
                           change_reason="LEFTRL")
                self._emit("case.allocated", back, team, child, case_type=case_type, allocation_date=back,
                           change_reason="LEFTRL", worker_ref=rng.choice(self.workers[team]))

    # -- children in need, child protection ------------------------------------------------------------
    def _cin_plan(self, start: date, child: _Child, months: tuple[int, int] = (60, 420)) -> date:
        rng = self.rng
        end = start + timedelta(days=rng.randint(*months))
        if rng.random() < self.R.CIN_PLAN_TO_LAC:
            lac_start = self.cal.roll_forward(start + timedelta(days=rng.randint(20, max(21, (end - start).days))))
            self._segment(CIN_TEAM, "cin", child, start, lac_start, "TSPROC")
            return self._looked_after(lac_start, child, rng.choice(("V2", "V2", "C1")), "TSPROC")
        self._segment(CIN_TEAM, "cin", child, start, end, "TSPROC")
        u = rng.random()
        self._close_cin(end, CIN_TEAM, child, "RC7" if u < 0.9 else "RC5" if u < 0.95 else rng.choice(("RC3", "RC4")))
        return end

    def _cp_plan(self, start: date, child: _Child) -> date:
        rng = self.rng
        plan_ref = self._ref("CPP")
        category = _pick(rng, self.R.CP_CATEGORIES)
        self._emit("cp_plan.started", start, CP_TEAM, child, plan_ref=plan_ref, start_date=start,
                   initial_category=category, previous_plans=child.plans + child.prior_plans)
        child.plans += 1
        end = self.cal.roll_forward(start + timedelta(days=int(_inverse_cdf(rng, self.R.CP_PLAN_DAYS))))
        self._segment(CP_TEAM, "cp", child, start, end, "TSPROC")
        if rng.random() < self.R.CP_CATEGORY_CHANGE:
            when = start + timedelta(days=rng.randint(20, max(21, (end - start).days - 1)))
            self._emit("cp_plan.category_changed", when, CP_TEAM, child, plan_ref=plan_ref, date=when,
                       latest_category=_pick(rng, {k: v for k, v in self.R.CP_CATEGORIES.items() if k != category}))
        previous, months = start, 3
        while True:
            due = add_calendar_months(previous, months)
            held = self._held(due, previous, self.R.CP_REVIEW_ON_TIME, CP_TEAM)
            if held >= end:
                break
            self._emit("cp_review.held", held, CP_TEAM, child, plan_ref=plan_ref, date=held, due_date=due,
                       continue_plan=True, quorate=rng.random() < self.R.CP_REVIEW_QUORATE,
                       child_participation=self._participation(child, held))
            previous, months = held, 6
        route = _pick(rng, self.R.CP_END_ROUTES)
        if route == "became_lac" and end >= _birthday(child.birth, 17):
            route = "cin_plan"
        self._emit("cp_plan.ended", end, CP_TEAM, child, plan_ref=plan_ref, end_date=end, end_route=route)
        if route == "became_lac":
            return self._looked_after(end, child, rng.choice(("C1", "C1", "V2")), "TSPROC")
        if route == "cin_plan":
            return self._cin_plan(end, child, (60, 300))
        if route == "early_help":
            self._close_cin(end, CP_TEAM, child, "RC7")
            self._early_help(self.cal.add(end, 1), child, "5D", "cp")
            return end
        self._close_cin(end, CP_TEAM, child, "RC5" if route == "moved_la" else "RC7")
        return end

    def _held(self, due: date, previous: date, on_time: float, team: str) -> date:
        rng = self.rng
        late = rng.random() >= on_time
        if self._active("staff_shortage", due, team) and rng.random() < 0.5:
            return due + timedelta(days=rng.randint(*SHORTAGE_REVIEW_LATE_DAYS))
        if late:
            return due + timedelta(days=rng.randint(1, 15))
        return max(previous + timedelta(days=1), due - timedelta(days=rng.randint(0, 20)))

    # -- children looked after ---------------------------------------------------------------------
    def _looked_after(self, start: date, child: _Child, legal: str, reason: str) -> date:
        rng, cal = self.rng, self.cal
        episode_ref = self._ref("LAC")
        age = (start - child.birth).days / 365.25
        eighteen = _birthday(child.birth, 18)
        if start >= eighteen - timedelta(days=30):
            self._close_cin(start, CIN_TEAM, child, "RC7")
            return start
        placement = _pick(rng, self.R.LAC_PLACEMENTS)
        if age >= 16 and rng.random() < 0.4:
            placement = "K3"
        if legal in ("C1", "L2"):
            app = start - timedelta(days=rng.randint(0, 5))
            pre = app - timedelta(days=rng.randint(40, 120)) if legal == "C1" and rng.random() < 0.6 else None
            self._emit("court.application", app, LAC_TEAM, child, court_app_date=app,
                       order_sought="ico" if legal == "C1" else "epo", pre_proceedings_start=pre,
                       letter_before_proceedings=pre)
        uasc = legal == "V2" and age >= 15 and rng.random() < 0.15
        self._emit("lac.started", start, LAC_TEAM, child, episode_ref=episode_ref, decom=start,
                   legal_status=legal, placement=placement, rne="S", birth_month=child.birth.strftime("%Y-%m"), need=_pick(rng, {k: v for k, v in self.R.PRIMARY_NEED.items() if k not in ("N9", "N0")}),
                   provider=_pick(rng, self.R.PROVIDERS), uasc=uasc)
        duration = int(_inverse_cdf(rng, self.R.LAC_DAYS))
        end = start + timedelta(days=duration)
        at_18 = end >= eighteen
        if at_18:
            end = eighteen
            ceased = _pick(rng, self.R.LAC_ENDS_AT_18)
        else:
            table = dict(self.R.LAC_ENDS_YOUNG)
            if age >= 6 or duration < 300:
                table.pop("E11"), table.pop("E12")
            ceased = _pick(rng, table)
        self._segment(LAC_TEAM, "lac", child, start, end, reason)
        # legal status changes
        if legal in ("L1", "L2"):
            when = cal.add(start, rng.randint(1, 10))
            if when < end:
                self._emit("lac.legal_status_changed", when, LAC_TEAM, child, date=when, rne="L",
                           legal_status=rng.choice(("C1", "V2")))
        elif legal == "C1":
            when = start + timedelta(days=rng.randint(150, 250))
            if when < end:
                # the care proceedings begun by the ICO application end with the full care order
                self._emit("court.final_order", when, LAC_TEAM, child, final_order_date=when, order_made="care_order")
                self._emit("lac.legal_status_changed", when, LAC_TEAM, child, date=when, rne="L", legal_status="C2")
                if ceased in ("E11", "E12"):
                    po = when + timedelta(days=rng.randint(30, 120))
                    if po < end:
                        self._emit("court.application", po - timedelta(days=40), LAC_TEAM, child,
                                   court_app_date=po - timedelta(days=40), order_sought="placement_order")
                        self._emit("lac.legal_status_changed", po, LAC_TEAM, child, date=po, rne="L", legal_status="E1")
        elif legal == "V2" and rng.random() < 0.25:
            when = start + timedelta(days=rng.randint(30, 200))
            if when < end:
                self._emit("court.application", when - timedelta(days=2), LAC_TEAM, child,
                           court_app_date=when - timedelta(days=2), order_sought="care_order")
                self._emit("lac.legal_status_changed", when, LAC_TEAM, child, date=when, rne="L", legal_status="C1")
                final = when + timedelta(days=120 + (when - start).days % 120)  # 17 to 34 weeks on
                if final < end:
                    self._emit("court.final_order", final, LAC_TEAM, child, final_order_date=final,
                               order_made="care_order")
        # placement moves
        rate = self.R.MOVES_PER_YEAR_UNSETTLED if rng.random() < self.R.UNSETTLED_SHARE else self.R.MOVES_PER_YEAR_SETTLED
        when = start
        while True:
            when = when + timedelta(days=max(1, int(rng.expovariate(rate) * 365)))
            if when >= end:
                break
            self._emit("placement.changed", when, LAC_TEAM, child, date=when, rne=rng.choice(("P", "P", "P", "T")),
                       placement=_pick(rng, self.R.LAC_PLACEMENTS), provider=_pick(rng, self.R.PROVIDERS),
                       reason_place_change=_pick(rng, self.R.PLACEMENT_CHANGE_REASONS), inside_la=rng.random() < 0.6)
        # reviews: first within 20 wd, second within 3 months, then 6-monthly
        due = cal.add(start, 20)
        previous = start
        months = 3
        while True:
            held = self._held(due, previous, self.R.LAC_REVIEW_ON_TIME, LAC_TEAM)
            if held >= end:
                break
            self._emit("lac_review.held", held, LAC_TEAM, child, date=held, due_date=due,
                       participation=self._participation(child, held))
            previous = held
            due = add_calendar_months(held, months)
            months = 6
        # statutory visits: within a week, then 6-weekly in the first year, then 3-monthly
        due = start + timedelta(days=7)
        previous = start
        while True:
            if rng.random() < self.R.VISIT_ON_TIME:
                held = max(previous + timedelta(days=1), due - timedelta(days=rng.randint(0, 10)))
                held = min(held, due)
            else:
                held = due + timedelta(days=rng.randint(1, 10))
            if held >= end:
                break
            self._emit("statutory_visit.held", held, LAC_TEAM, child, date=held, due_date=due)
            previous = held
            due = held + timedelta(days=42 if (held - start).days < 365 else 91)
        self._emit("lac.ended", end, LAC_TEAM, child, dec=end, reason_ceased=ceased)
        if at_18:
            self._close_cin(end, LAC_TEAM, child, "RC7")
            if age < 17.75:
                return self._care_leaver(end, child)
            return end
        closure = {"E11": "RC1", "E12": "RC1", "E45": "RC4", "E46": "RC4", "E47": "RC4", "E48": "RC4",
                   "E41": "RC3", "E3": "RC5"}.get(ceased, "RC7")
        self._close_cin(end, LAC_TEAM, child, closure)
        return end

    def _care_leaver(self, eighteen: date, child: _Child) -> date:
        """Statuses around the 18th to 21st birthdays (band 17-18 at 18, 19-21 after)."""
        rng = self.rng
        twenty_one = _birthday(child.birth, 21)
        self._segment(LEAVING_CARE_TEAM, "care_leaver", child, eighteen, twenty_one, "TSPROC")
        for age in (18, 19, 20, 21):
            when = _birthday(child.birth, age) + timedelta(days=rng.randint(0, 30))
            band = "17-18" if age <= 18 else "19-21"
            in_touch = _pick(rng, self.R.CARE_LEAVER_IN_TOUCH)
            if in_touch == "YES":
                activity = _pick(rng, self.R.EET_ACTIVITIES) if rng.random() < self.R.CARE_LEAVER_EET[band] \
                    else _pick(rng, self.R.NEET_ACTIVITIES)
                accommodation = _pick(rng, self.R.SUITABLE_ACCOM) if rng.random() < self.R.CARE_LEAVER_SUITABLE[band] \
                    else _pick(rng, self.R.UNSUITABLE_ACCOM)
            else:
                activity, accommodation = "0", "0"
            self._emit("care_leaver.status", when, LEAVING_CARE_TEAM, child, date=when, age_band=band,
                       in_touch=in_touch, activity=activity, accommodation=accommodation)
        return twenty_one + timedelta(days=31)

    # -- workforce ---------------------------------------------------------------------------------
    def _workforce(self, d: date) -> None:
        rng = self.rng
        for team in WORKFORCE_TEAMS:
            cases = self.team_cases[team] = [(s, e) for s, e in self.team_cases[team] if e >= d]
            open_cases = sum(1 for s, e in cases if s <= d)
            short = self._active("staff_shortage", d, team)
            caseload = (21.0 if short else self.R.CASELOAD_PER_FTE) * rng.uniform(0.93, 1.07)
            case_holding = max(1.0, open_cases / caseload)
            working = case_holding / self.R.CASE_HOLDING_SHARE
            agency_rate = 0.25 if short else self.R.AGENCY_RATE
            vacancy_rate = 0.35 if short else self.R.VACANCY_RATE
            agency = working * agency_rate
            inpost = working - agency
            vacancy = vacancy_rate / (1 - vacancy_rate) * inpost
            self._emit("workforce.snapshot", d, team, None, date=d,
                       establishment_fte=round(inpost + vacancy, 1), inpost_fte=round(inpost, 1),
                       vacancy_fte=round(vacancy, 1), agency_fte=round(agency, 1),
                       case_holding_fte=round(case_holding, 1),
                       leavers_fte=round(inpost * self.R.TURNOVER_PER_YEAR / 12 * rng.uniform(0.5, 1.5), 1),
                       absence_days=round(inpost * rng.uniform(0.5, 1.5), 1))


def _sort_key(event: dict, index: int) -> tuple:
    return (event["effective_date"], event["recorded_at"][11:19], index)


def authority_events(la_codes: list[str], population: int, seed: int, history_start: date,
                     until: date | None, scenarios: Iterable[Scenario] = (),
                     calendar: WorkingDayCalendar | None = None, warmup_years: int = 6,
                     profile: str = "national") -> Iterator[dict]:
    """Events of one or more authorities (each sized ``population``), merged in event-time order;
    ``profile``: the calibration profile of :mod:`casewatch.simulation.rates` (national or stockton)."""
    calendar = calendar or WorkingDayCalendar()
    scenarios = tuple(scenarios)
    streams = []
    for i, la in enumerate(la_codes):
        authority = Authority(la, population, seed, history_start, calendar, scenarios, index=i,
                              warmup_years=warmup_years, profile=profile)
        streams.append(((_sort_key(e, i), e) for e in authority.events(until)))
    if len(streams) == 1:
        yield from (e for _, e in streams[0])
        return
    for _, event in heapq.merge(*streams, key=lambda pair: pair[0]):
        yield event
