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

The census period is the DfE validator's: 1 April of the year before the header's ReferenceDate
up to the ReferenceDate. A record dated after the reference date, or an episode closed before the
period, is a dead letter; a record with several problems gets one dead letter listing all of them
(an episode that cannot be sent lists the problems of its modules too). Text between elements is
a note (nothing is dropped).

Never read: UPN, former UPN, date of birth, ethnicity, disabilities, sex. A part that cannot be
mapped (invalid or missing date, end before start, a code not in the year's list, a module dated
before its episode's referral) goes to a dead letter with a reason code and the element's name;
the rest of the child is still mapped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from lxml import etree

from casewatch import bootstrap
from schemas.code_lists import codes as code_list, collection_year_of

from services.feeds.envelope import DeadLetter, FeedContext, parse_date

SOURCE = "import:cin-census"
FACTOR_LIST = "assessment_factor"


class CinHeader:
    def __init__(self) -> None:
        self.lea: str | None = None
        self.year: str | None = None
        self.reference_date: date | None = None

    @property
    def census_end(self) -> date | None:
        """The last day a record of this census may be dated: the header's ReferenceDate (the
        census reference date, normally 31 March), else 31 March of its Year."""
        if self.reference_date is not None:
            return self.reference_date
        if self.year and self.year.isdigit():
            return date(int(self.year), 3, 31)
        return None

    @property
    def census_start(self) -> date | None:
        """The first day of the census period: 1 April of the year before the reference date's
        (as the DfE validator's census period: 1 April of the previous year to the reference date)."""
        end = self.census_end
        return date(end.year - 1, 4, 1) if end is not None else None

    @property
    def label(self) -> str:
        start = self.census_start
        return f"{start.year}-{(start.year + 1) % 100:02d}" if start else "year unknown"


class Problems:
    """Every problem of one source record, so its dead letter reports all of them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, reason: str, loc: str) -> None:
        if (reason, loc) not in self.items:
            self.items.append((reason, loc))

    def __bool__(self) -> bool:
        return bool(self.items)

    def dead_letter(self, payload: dict, msg: str = "") -> DeadLetter:
        (reason, loc), *rest = self.items
        return DeadLetter(reason, loc, payload, msg=msg, also=rest)


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
    # "today" (bootstrap's one rule: London, CASEWATCH_FIXED_TODAY honoured) picks the code lists' collection
    # year only for a child with no dates in a census whose header has no end date either.
    today: Callable[[], date] = field(default_factory=lambda: bootstrap.build().today)

    def run(self, path: Path) -> CinHeader:
        header = CinHeader()
        ctx: FeedContext | None = None
        try:
            for _, el in etree.iterparse(str(path), events=("end",), remove_comments=True, huge_tree=False):
                name = _local(el)
                if name == "Header":
                    _read_header_element(el, header)
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
            # Text between elements: nothing is dropped (the elements are read as usual), so this
            # is a note of the summary, not a dead letter.
            self.note("stray_text", 1)
        seen_keys: dict[str, int] = {}
        for details in _children(el, "CINdetails"):
            self.read("CINdetails", 1)
            self._episode(ctx, header, child, details, seen_keys)

    def _date(self, el, name: str, loc: str, problems: Problems, header: CinHeader | None = None,
              required: bool = False) -> date | None:
        """The element's date; a problem is recorded (and None returned) when it is malformed,
        missing though required, or dated after the census reference date."""
        try:
            value = parse_date(_text(el, name))
        except ValueError:
            problems.add("invalid_date", f"{loc}.{name}")
            return None
        if value is None:
            if required:
                problems.add("missing_date", f"{loc}.{name}")
            return None
        end = header.census_end if header is not None else None
        if end is not None and value > end:
            problems.add("after_census_reference_date", f"{loc}.{name}")
        return value

    def _code_ok(self, list_name: str, code: str | None, on: date) -> bool:
        return code is not None and code in code_list(list_name, collection_year_of(on))

    def _episode(self, ctx: FeedContext, header: CinHeader, child: str, el, seen_keys: dict[str, int]) -> None:
        base = {"child_ref": child}
        problems = Problems()
        referral = self._date(el, "CINreferralDate", "CINdetails", problems, header, required=True)
        source = _text(el, "ReferralSource")
        on = referral or header.census_end or self.today()
        if not self._code_ok("referral_source", source, on):
            problems.add("unknown_code" if source else "missing_code", "CINdetails.ReferralSource")
        try:
            closed = parse_date(_text(el, "CINclosureDate"))
        except ValueError:
            closed = None
        if closed is not None and header.census_start is not None and closed < header.census_start:
            # Closed before the census period: not an episode of this census (the DfE validator
            # rejects a closure date outside the census period).
            problems.add("before_census_year", "CINdetails.CINclosureDate")
        if problems or referral is None:
            # The episode cannot be sent; its assessments, S47s and plans go with it, and the one
            # dead letter lists their problems too.
            payload = {**base, "referral_date": referral.isoformat()} if referral else base
            self._closure_problems(el, header, referral, problems)
            for a in _children(el, "Assessments"):
                self._assessment(None, header, child, "", "", referral, a, 0, payload, into=problems)
            for s47 in _children(el, "Section47"):
                self._section47(None, header, child, "", referral, s47, 0, payload, set(), set(), into=problems)
            for p in _children(el, "ChildProtectionPlans"):
                self._plan(None, header, child, "", referral, p, 0, payload, into=problems)
            icpc = self._date(el, "DateOfInitialCPC", "CINdetails", problems, header)
            if icpc is not None and referral is not None and icpc < referral:
                problems.add("before_referral", "CINdetails.DateOfInitialCPC")
            for pp in _children(el, "PreProceedingsandFGDM"):
                if self._date(pp, "CourtAppDate", "PreProceedingsandFGDM", problems, header) is not None:
                    problems.add("required_field_not_in_source", "PreProceedingsandFGDM.order_sought")
            self.dead(problems.dead_letter(payload))
            return
        key = referral.isoformat()
        seen_keys[key] = seen_keys.get(key, 0) + 1
        if seen_keys[key] > 1:
            key = f"{key}#{seen_keys[key]}"
        episode_ref = f"{child}/cin/{key}"
        payload = {**base, "referral_date": referral.isoformat()}
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
        if header.census_start is not None and referral < header.census_start:
            self.note("episode_referred_before_census_year", 1)  # carried over into the census: sent

        problems = Problems()
        closure, reason = self._closure_problems(el, header, referral, problems)
        if closure is not None or problems:
            if problems:
                self.dead(problems.dead_letter(payload))
            else:
                self.emit(ctx.event("cin_episode.closed", child, (key,), closure_date=closure, reason=reason,
                                    episode_ref=episode_ref))

        plan_starts = self._plan_starts(el)
        for i, a in enumerate(_children(el, "Assessments")):
            self._assessment(ctx, header, child, key, episode_ref, referral, a, i, payload)
        s47_icpc_dates: set[date] = set()
        for i, s47 in enumerate(_children(el, "Section47")):
            self._section47(ctx, header, child, key, referral, s47, i, payload, plan_starts, s47_icpc_dates)
        problems = Problems()
        icpc = self._date(el, "DateOfInitialCPC", "CINdetails", problems, header)
        if icpc is not None and icpc < referral:
            problems.add("before_referral", "CINdetails.DateOfInitialCPC")
        if problems:
            self.dead(problems.dead_letter(payload))
        elif icpc is not None and icpc not in s47_icpc_dates:
            self.emit(ctx.event("icpc.held", child, (key, icpc.isoformat()), date=icpc,
                                resulted_in_cpp=icpc in plan_starts))
        for i, p in enumerate(_children(el, "ChildProtectionPlans")):
            self._plan(ctx, header, child, key, referral, p, i, payload)
        for pp in _children(el, "PreProceedingsandFGDM"):
            problems = Problems()
            court = self._date(pp, "CourtAppDate", "PreProceedingsandFGDM", problems, header)
            if court is not None or problems:
                problems.add("required_field_not_in_source", "PreProceedingsandFGDM.order_sought")
                extra = {"court_app_date": court.isoformat()} if court else {}
                self.dead(problems.dead_letter({**payload, **extra}))
        if _children(el, "CINPlanDates"):
            self.note("cin_plans_not_mapped", len(_children(el, "CINPlanDates")))

    def _closure_problems(self, el, header, referral, problems: Problems) -> tuple[date | None, str | None]:
        before = len(problems.items)
        closure = self._date(el, "CINclosureDate", "CINdetails", problems, header)
        reason = _text(el, "ReasonForClosure")
        if closure is not None or len(problems.items) > before:
            if closure is not None and referral is not None and closure < referral:
                problems.add("end_before_start", "CINdetails.CINclosureDate")
            on = closure or referral or header.census_end or self.today()
            if not self._code_ok("reason_for_closure", reason, on):
                problems.add("unknown_code" if reason else "missing_code", "CINdetails.ReasonForClosure")
        return closure, reason

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

    def _assessment(self, ctx, header, child, key, episode_ref, referral, a, index, payload,
                    into: Problems | None = None) -> None:
        loc = "CINdetails.Assessments"
        problems = Problems()
        start = self._date(a, "AssessmentActualStartDate", loc, problems, header, required=True)
        done = self._date(a, "AssessmentAuthorisationDate", loc, problems, header)
        if start is not None and referral is not None and start < referral:
            problems.add("before_referral", f"{loc}.AssessmentActualStartDate")
        if start is not None and done is not None and done < start:
            problems.add("end_before_start", f"{loc}.AssessmentAuthorisationDate")
        if into is not None:
            for item in problems.items:
                into.add(*item)
            return
        if problems:
            self.dead(problems.dead_letter(payload))
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

    def _section47(self, ctx, header, child, key, referral, s, index, payload, plan_starts, icpc_dates,
                   into: Problems | None = None) -> None:
        loc = "CINdetails.Section47"
        problems = Problems()
        start = self._date(s, "S47ActualStartDate", loc, problems, header, required=True)
        target_problems = Problems()
        target = self._date(s, "InitialCPCtarget", loc, target_problems)  # a target may lie after the census
        icpc = self._date(s, "DateOfInitialCPC", loc, problems, header)
        if start is not None and referral is not None and start < referral:
            problems.add("before_referral", f"{loc}.S47ActualStartDate")
        if start is not None and icpc is not None and icpc < start:
            problems.add("end_before_start", f"{loc}.DateOfInitialCPC")
        if into is not None:
            for item in problems.items:
                into.add(*item)
            return
        if problems:
            self.dead(problems.dead_letter(payload))
            return
        if target is not None and target < start:
            target_problems.add("end_before_start", f"{loc}.InitialCPCtarget")
        if target_problems:
            self.dead(target_problems.dead_letter(payload))  # the target is dropped, the S47 sent
            target = None
        s47_ref = f"{child}/cin/{key}/s47/{start.isoformat()}"
        ident = (key, "s47", start.isoformat())
        self.emit(ctx.event("s47.started", child, ident, s47_ref=s47_ref, start_date=start, icpc_target_date=target))
        if icpc is not None:
            icpc_dates.add(icpc)
            self.emit(ctx.event("icpc.held", child, ident, date=icpc, s47_ref=s47_ref,
                                resulted_in_cpp=icpc in plan_starts))

    def _plan(self, ctx, header, child, key, referral, p, index, payload, into: Problems | None = None) -> None:
        loc = "CINdetails.ChildProtectionPlans"
        problems = Problems()
        start = self._date(p, "CPPstartDate", loc, problems, header, required=True)
        end = self._date(p, "CPPendDate", loc, problems, header)
        if start is not None and referral is not None and start < referral:
            problems.add("before_referral", f"{loc}.CPPstartDate")
        if start is not None and end is not None and end < start:
            problems.add("end_before_start", f"{loc}.CPPendDate")
        initial = _text(p, "InitialCategoryOfAbuse")
        if not self._code_ok("abuse_category", initial, start or referral or header.census_end or self.today()):
            problems.add("unknown_code" if initial else "missing_code", f"{loc}.InitialCategoryOfAbuse")
        if into is not None:
            for item in problems.items:
                into.add(*item)
            return
        if problems:
            self.dead(problems.dead_letter(payload))
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
                review_problems = Problems()
                try:
                    when = parse_date(r.text)
                except ValueError:
                    self.dead(DeadLetter("invalid_date", f"{loc}.Reviews.CPPreviewDate", payload))
                    continue
                if when is None:
                    continue
                if when < start:
                    review_problems.add("end_before_start", f"{loc}.Reviews.CPPreviewDate")
                if header.census_end is not None and when > header.census_end:
                    review_problems.add("after_census_reference_date", f"{loc}.Reviews.CPPreviewDate")
                if review_problems:
                    self.dead(review_problems.dead_letter(payload))
                    continue
                self.emit(ctx.event("cp_review.held", child, (*ident, "review", when.isoformat()), plan_ref=plan_ref,
                                    date=when))
        if end is not None:
            self.emit(ctx.event("cp_plan.ended", child, ident, plan_ref=plan_ref, end_date=end, end_route="other"))


def _read_header_element(el, header: CinHeader) -> None:
    """The collection year, census reference date and LA number of a ``Header`` element."""
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


def read_header(path: Path) -> CinHeader:
    """The header of a CIN census file (read up to its end, the children are not parsed)."""
    header = CinHeader()
    try:
        for _, el in etree.iterparse(str(path), events=("end",), remove_comments=True):
            name = _local(el)
            if name == "Header":
                _read_header_element(el, header)
                break
            if name == "Child":
                break
    except etree.XMLSyntaxError:
        pass
    return header


def find_census_files(paths: list[Path]) -> list[Path]:
    """The XML files given, and every ``*.xml`` directly in a folder given, in name order."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() == ".xml")
            if not found:
                raise FileNotFoundError(f"{p.name}: no .xml file in the folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p.name}: no such file or folder")
    return out
