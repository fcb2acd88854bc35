"""CIN census XML -> casewatch events (docs/feeds.md "CIN census").

Streams the file with ``lxml.etree.iterparse``: one ``<Child>`` at a time, cleared once mapped, so
memory stays flat whatever the file size. Reads the 2023-24 to 2025-26 layouts (``GenderCurrent``
or ``Sex``, which are not used, and the 2025-26 ``PreProceedingsandFGDM`` module).

Per ``<CINdetails>`` (one CIN episode):

=============================  ==========================================================
CINreferralDate, ReferralSource, PrimaryNeedCode, ReferralNFA  ->  ``referral.received``
CINclosureDate, ReasonForClosure                               ->  ``cin_episode.closed``
Assessments                                                    ->  ``assessment.started`` / ``.completed``
Section47 (S47ActualStartDate, InitialCPCtarget, DateOfInitialCPC) -> ``s47.started`` / ``icpc.held``
DateOfInitialCPC on the episode (no Section47 of that date)    ->  ``icpc.held``
ChildProtectionPlans (+ Reviews)                               ->  ``cp_plan.started`` / ``category_changed``
                                                                   / ``cp_review.held`` / ``cp_plan.ended``
PreProceedingsandFGDM with CourtAppDate                        ->  dead letter (the census has no order
                                                                   sought, which ``court.application`` requires)
=============================  ==========================================================

Never read: UPN, former UPN, date of birth, ethnicity, disabilities, sex. A part that cannot be
mapped (invalid or missing date, end before start, a code not in the year's list, a module dated
before its episode's referral) goes to a dead letter with a reason code and the element's name;
the rest of the child is still mapped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

from lxml import etree

from schemas.code_lists import codes as code_list, collection_year_of

from services.feeds.envelope import DeadLetter, FeedContext, parse_date

SOURCE = "import:cin-census"
FACTOR_LIST = "assessment_factor"


class CinHeader:
    def __init__(self) -> None:
        self.lea: str | None = None
        self.year: str | None = None
        self.reference_date: date | None = None


def _local(el) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(el, name: str):
    return [c for c in el if _local(c) == name]


def _text(el, name: str) -> str | None:
    for c in el:
        if _local(c) == name:
            t = (c.text or "").strip()
            return t or None
    return None


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    return None


def _has_stray_text(el) -> bool:
    """Text outside the leaf elements (a broken export), e.g. ``<UPNunknown>..</UPNunknown>junk``."""
    for c in el.iter():
        if len(c) and (c.text or "").strip():
            return True
        if c is not el and (c.tail or "").strip():
            return True
    return False


@dataclass
class CinCensusImport:
    ctx_for: Callable[[CinHeader], FeedContext]   # builds the context once the header is read
    emit: Callable[[dict], None]
    dead: Callable[[DeadLetter], None]
    note: Callable[[str, int], None] = lambda name, n=1: None
    read: Callable[[str, int], None] = lambda name, n=1: None
    tick: Callable[[], None] = lambda: None

    def run(self, path: Path) -> CinHeader:
        header = CinHeader()
        ctx: FeedContext | None = None
        try:
            for _, el in etree.iterparse(str(path), events=("end",), remove_comments=True, huge_tree=False):
                name = _local(el)
                if name == "Header":
                    details = next(iter(_children(el, "CollectionDetails")), None)
                    source = next(iter(_children(el, "Source")), None)
                    if details is not None:
                        header.year = _text(details, "Year")
                        try:
                            header.reference_date = parse_date(_text(details, "ReferenceDate"))
                        except ValueError:
                            header.reference_date = None
                    if source is not None:
                        header.lea = _text(source, "LEA")
                elif name == "Child":
                    if ctx is None:
                        ctx = self.ctx_for(header)
                    self.read("Child", 1)
                    self._child(ctx, header, el)
                    self.tick()
                    el.clear()
                    parent = el.getparent()
                    if parent is not None:
                        while el.getprevious() is not None:
                            del parent[0]
        except etree.XMLSyntaxError:
            self.dead(DeadLetter("unparseable_xml", "Message", {}))
        return header

    # -- one child --------------------------------------------------------------------------
    def _child(self, ctx: FeedContext, header: CinHeader, el) -> None:
        ids = next(iter(_children(el, "ChildIdentifiers")), None)
        child = _text(ids, "LAchildID") if ids is not None else None
        if not child:
            self.dead(DeadLetter("missing_identifier", "Child.ChildIdentifiers.LAchildID", {}))
            return
        if _has_stray_text(el):
            self.dead(DeadLetter("stray_text", "Child", {"child_ref": child}))
        seen_keys: dict[str, int] = {}
        for details in _children(el, "CINdetails"):
            self.read("CINdetails", 1)
            self._episode(ctx, header, child, details, seen_keys)

    def _date(self, el, name: str, loc: str, payload: dict, required: bool = False) -> tuple[bool, date | None]:
        try:
            value = parse_date(_text(el, name))
        except ValueError:
            self.dead(DeadLetter("invalid_date", f"{loc}.{name}", payload))
            return False, None
        if value is None and required:
            self.dead(DeadLetter("missing_date", f"{loc}.{name}", payload))
            return False, None
        return True, value

    def _code_ok(self, list_name: str, code: str | None, on: date) -> bool:
        return code is not None and code in code_list(list_name, collection_year_of(on))

    def _episode(self, ctx: FeedContext, header: CinHeader, child: str, el, seen_keys: dict[str, int]) -> None:
        base = {"child_ref": child}
        ok, referral = self._date(el, "CINreferralDate", "CINdetails", base, required=True)
        if not ok:
            return
        key = referral.isoformat()
        seen_keys[key] = seen_keys.get(key, 0) + 1
        if seen_keys[key] > 1:
            key = f"{key}#{seen_keys[key]}"
        episode_ref = f"{child}/cin/{key}"
        payload = {**base, "referral_date": referral.isoformat()}
        source = _text(el, "ReferralSource")
        if not self._code_ok("referral_source", source, referral):
            self.dead(DeadLetter("unknown_code" if source else "missing_code", "CINdetails.ReferralSource", payload))
            return
        need = _text(el, "PrimaryNeedCode")
        if need is not None and not self._code_ok("primary_need", need, referral):
            self.dead(DeadLetter("unknown_code", "CINdetails.PrimaryNeedCode", payload))
            need = None
        nfa_text = _text(el, "ReferralNFA")
        nfa = _flag(nfa_text)
        if nfa_text is not None and nfa is None:
            self.dead(DeadLetter("unknown_code", "CINdetails.ReferralNFA", payload))
        self.emit(ctx.event("referral.received", child, (key,), referral_date=referral, source=source,
                            referral_nfa=nfa, primary_need=need, episode_ref=episode_ref))

        ok, closure = self._date(el, "CINclosureDate", "CINdetails", payload)
        if ok and closure is not None:
            reason = _text(el, "ReasonForClosure")
            if closure < referral:
                self.dead(DeadLetter("end_before_start", "CINdetails.CINclosureDate", payload))
            elif not self._code_ok("reason_for_closure", reason, closure):
                self.dead(DeadLetter("unknown_code" if reason else "missing_code",
                                     "CINdetails.ReasonForClosure", payload))
            else:
                self.emit(ctx.event("cin_episode.closed", child, (key,), closure_date=closure, reason=reason,
                                    episode_ref=episode_ref))

        plan_starts = self._plan_starts(el)
        for i, a in enumerate(_children(el, "Assessments")):
            self._assessment(ctx, child, key, episode_ref, referral, a, i, payload)
        s47_icpc_dates: set[date] = set()
        for i, s in enumerate(_children(el, "Section47")):
            self._section47(ctx, child, key, referral, s, i, payload, plan_starts, s47_icpc_dates)
        ok, icpc = self._date(el, "DateOfInitialCPC", "CINdetails", payload)
        if ok and icpc is not None and icpc not in s47_icpc_dates:
            if icpc < referral:
                self.dead(DeadLetter("before_referral", "CINdetails.DateOfInitialCPC", payload))
            else:
                self.emit(ctx.event("icpc.held", child, (key, icpc.isoformat()), date=icpc,
                                    resulted_in_cpp=icpc in plan_starts))
        for i, p in enumerate(_children(el, "ChildProtectionPlans")):
            self._plan(ctx, header, child, key, referral, p, i, payload)
        for pp in _children(el, "PreProceedingsandFGDM"):
            ok, court = self._date(pp, "CourtAppDate", "PreProceedingsandFGDM", payload)
            if ok and court is not None:
                self.dead(DeadLetter("required_field_not_in_source", "PreProceedingsandFGDM.order_sought",
                                     {**payload, "court_app_date": court.isoformat()},
                                     msg="the census does not say which order was sought"))
        if _children(el, "CINPlanDates"):
            self.note("cin_plans_not_mapped", len(_children(el, "CINPlanDates")))

    def _plan_starts(self, el) -> set[date]:
        out: set[date] = set()
        for p in _children(el, "ChildProtectionPlans"):
            try:
                d = parse_date(_text(p, "CPPstartDate"))
            except ValueError:
                continue
            if d is not None:
                out.add(d)
        return out

    def _assessment(self, ctx, child, key, episode_ref, referral, a, index, payload) -> None:
        loc = "CINdetails.Assessments"
        ok1, start = self._date(a, "AssessmentActualStartDate", loc, payload, required=True)
        ok2, done = self._date(a, "AssessmentAuthorisationDate", loc, payload)
        if not (ok1 and ok2):
            return
        if start < referral:
            self.dead(DeadLetter("before_referral", f"{loc}.AssessmentActualStartDate", payload))
            return
        if done is not None and done < start:
            self.dead(DeadLetter("end_before_start", f"{loc}.AssessmentAuthorisationDate", payload))
            return
        ident = (key, "assessment", start.isoformat())
        assessment_ref = f"{child}/cin/{key}/assessment/{start.isoformat()}"
        self.emit(ctx.event("assessment.started", child, ident, assessment_ref=assessment_ref, start_date=start,
                            referral_ref=episode_ref))
        if done is None:
            return
        factors: list[str] = []
        for group in _children(a, "FactorsIdentifiedAtAssessment"):
            for f in _children(group, "AssessmentFactors"):
                code = (f.text or "").strip()
                if not code:
                    continue
                if self._code_ok(FACTOR_LIST, code, done):
                    if code not in factors:
                        factors.append(code)
                else:
                    self.dead(DeadLetter("unknown_code", f"{loc}.AssessmentFactors", payload))
        self.emit(ctx.event("assessment.completed", child, ident, assessment_ref=assessment_ref,
                            authorisation_date=done, factors=factors or None))

    def _section47(self, ctx, child, key, referral, s, index, payload, plan_starts, icpc_dates) -> None:
        loc = "CINdetails.Section47"
        ok1, start = self._date(s, "S47ActualStartDate", loc, payload, required=True)
        ok2, target = self._date(s, "InitialCPCtarget", loc, payload)
        ok3, icpc = self._date(s, "DateOfInitialCPC", loc, payload)
        if not (ok1 and ok2 and ok3):
            return
        if start < referral:
            self.dead(DeadLetter("before_referral", f"{loc}.S47ActualStartDate", payload))
            return
        if target is not None and target < start:
            self.dead(DeadLetter("end_before_start", f"{loc}.InitialCPCtarget", payload))
            target = None
        s47_ref = f"{child}/cin/{key}/s47/{start.isoformat()}"
        ident = (key, "s47", start.isoformat())
        self.emit(ctx.event("s47.started", child, ident, s47_ref=s47_ref, start_date=start, icpc_target_date=target))
        if icpc is not None:
            if icpc < start:
                self.dead(DeadLetter("end_before_start", f"{loc}.DateOfInitialCPC", payload))
                return
            icpc_dates.add(icpc)
            self.emit(ctx.event("icpc.held", child, ident, date=icpc, s47_ref=s47_ref,
                                resulted_in_cpp=icpc in plan_starts))

    def _plan(self, ctx, header, child, key, referral, p, index, payload) -> None:
        loc = "CINdetails.ChildProtectionPlans"
        ok1, start = self._date(p, "CPPstartDate", loc, payload, required=True)
        ok2, end = self._date(p, "CPPendDate", loc, payload)
        if not (ok1 and ok2):
            return
        if start < referral:
            self.dead(DeadLetter("before_referral", f"{loc}.CPPstartDate", payload))
            return
        if end is not None and end < start:
            self.dead(DeadLetter("end_before_start", f"{loc}.CPPendDate", payload))
            return
        initial = _text(p, "InitialCategoryOfAbuse")
        if not self._code_ok("abuse_category", initial, start):
            self.dead(DeadLetter("unknown_code" if initial else "missing_code", f"{loc}.InitialCategoryOfAbuse",
                                 payload))
            return
        previous_text = _text(p, "NumberOfPreviousCPP")
        previous = int(previous_text) if previous_text and previous_text.isdigit() else None
        if previous_text and previous is None:
            self.dead(DeadLetter("unknown_code", f"{loc}.NumberOfPreviousCPP", payload))
        plan_ref = f"{child}/cin/{key}/cpp/{start.isoformat()}"
        ident = (key, "cpp", start.isoformat())
        self.emit(ctx.event("cp_plan.started", child, ident, plan_ref=plan_ref, start_date=start,
                            initial_category=initial, previous_plans=previous))
        latest = _text(p, "LatestCategoryOfAbuse")
        if latest is not None and latest != initial:
            # The census does not date the change; we date it at the plan's end, else the census
            # reference date (when the plan was last known), never before the start.
            when = end or header.reference_date
            if not self._code_ok("abuse_category", latest, start):
                self.dead(DeadLetter("unknown_code", f"{loc}.LatestCategoryOfAbuse", payload))
            elif when is not None and when >= start:
                self.emit(ctx.event("cp_plan.category_changed", child, ident, plan_ref=plan_ref, date=when,
                                    latest_category=latest))
        for reviews in _children(p, "Reviews"):
            for r in _children(reviews, "CPPreviewDate"):
                try:
                    when = parse_date(r.text)
                except ValueError:
                    self.dead(DeadLetter("invalid_date", f"{loc}.Reviews.CPPreviewDate", payload))
                    continue
                if when is None:
                    continue
                if when < start:
                    self.dead(DeadLetter("end_before_start", f"{loc}.Reviews.CPPreviewDate", payload))
                    continue
                self.emit(ctx.event("cp_review.held", child, (*ident, "review", when.isoformat()), plan_ref=plan_ref,
                                    date=when))
        if end is not None:
            self.emit(ctx.event("cp_plan.ended", child, ident, plan_ref=plan_ref, end_date=end, end_route="other"))

