"""The DfE children's social care data API, received locally and turned into casewatch events.

``POST /children_social_care_data/{la_code}/children`` takes the body of the published schema
(``dfe_csc_api/openapi.json`` in this package: DFE-Digital/children-in-social-care-schemas v1.0.1,
MIT, see ``dfe_csc_api/SOURCE.md``): up to 100 children, each a *full* nested state with a
``purge`` flag at every level. Answers are the status codes that contract documents:

* 401 without a valid bearer token (the tokens of the ingest API: one per supplier/source system,
  checked by ``services.ingest``'s own code, in constant time);
* 403 for an authority this service does not take, or one the token may not write;
* 413 for a body over ``max_body_bytes`` or more than 100 children;
* 400 for a body that is not JSON, is nested deeper than ``MAX_NESTING``, or breaks the schema
  (with the failing location and rule, never the value); a path ``la_code`` that is not a number;
* 200 with a receipt (a UUID) once the events are stored; 204 for an empty list.

Each child's snapshot is mapped to the events it stands for (``snapshot_events``) and compared with
the last snapshot seen of that child (``snapshot_state``):

* an event not seen before                -> sent (its id: UUIDv5 of the source record identity)
* the same record with changed content    -> an amendment (``correction_of`` = the original)
* an event the snapshot no longer implies -> ``event.voided`` (a ``purge`` at any level, or the
                                             record left out of the full state)
* unchanged                               -> nothing. Re-sending a snapshot sends nothing.

A ``purge`` of the whole child also takes the erasure path (``casewatch.erasure``): its voids take
it out of the figures at once, its snapshot state is deleted, and an erasure request is queued so
``casewatch erase --pending`` removes the child from every topic.

Mapping (docs/feeds.md has the full table): referral -> ``referral.received``; closure ->
``cin_episode.closed``; assessment start/authorisation -> ``assessment.started``/``.completed``;
S47 start/ICPC/end -> ``s47.started``/``icpc.held``/``s47.completed``; CP plan start/end ->
``cp_plan.started``/``cp_plan.ended``; placement start (start_reason S) -> ``lac.started``, other
start reasons -> ``placement.changed``; placement end with a leaving reason -> ``lac.ended``.
Names, UPNs, postcodes and SDQ scores are never read; of the date of birth only the month is kept,
as ``birth_month`` on ``lac.started`` (O11 needs the child's age); a social worker's id leaves only
as the ``worker_ref`` of ``case.allocated`` (care_worker_details start dates), which the publisher
pseudonymises like every reference (O12 counts distinct workers).
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from jsonschema import Draft7Validator, FormatChecker

from schemas.code_lists import codes as code_list, collection_year_of

from casewatch.access import grant_for_token, json_depth
from services.feeds.envelope import FEEDS_NAMESPACE, OLD_LA_NUMBERS, DeadLetter, FeedContext, parse_date
from casewatch.adapters.sqlite.snapshot_state import MemorySnapshotStore, SnapshotStateStore

SOURCE = "dfe_api"
MAX_CHILDREN = 100
DEFAULT_OPENAPI = Path(__file__).resolve().parent / "dfe_csc_api" / "openapi.json"
MAX_BODY_BYTES = 10_000_000   # 100 full child states fit comfortably; 413 above
MAX_NESTING = 32              # the schema nests 6 deep; anything deeper is refused before parsing
PLACEMENT_RNE = frozenset({"P", "T", "B", "U"})


# -- schema ------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def load_schema(path: str) -> dict:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return doc["components"]["schemas"]["CSC"]


def schema_errors(body: Any, schema: dict) -> list[dict]:
    """Schema violations as ``{"loc", "msg", "type"}``; never the offending value."""
    validator = Draft7Validator(schema, format_checker=FormatChecker())
    out = []
    for err in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
        loc = ".".join(str(p) for p in err.absolute_path)
        kind = str(err.validator)
        if kind == "additionalProperties":
            msg = "has a property the schema does not allow"
        elif kind == "required":
            msg = "lacks a required property"
        else:
            msg = f"fails the schema's {kind} rule"
        out.append({"loc": loc, "msg": msg, "type": kind})
        if len(out) >= 50:
            break
    return out


# -- snapshot -> events ------------------------------------------------------------------------
@dataclass
class Planned:
    """An event a snapshot stands for, before ids are decided."""
    identity: tuple
    event: dict  # without event_id


def _d(value: Any) -> date | None:
    try:
        return parse_date(value)
    except ValueError:
        return None


def _code(list_name: str, value: Any, on: date) -> bool:
    return isinstance(value, str) and value in code_list(list_name, collection_year_of(on))


def snapshot_events(ctx: FeedContext, child: Mapping[str, Any]) -> tuple[list[Planned], list[DeadLetter]]:
    """The events a child's full state stands for, and what cannot be mapped. Purged parts are
    left out (their earlier events are then voided by the comparison)."""
    child_id = child["la_child_id"]
    planned: list[Planned] = []
    dead: list[DeadLetter] = []
    if child.get("purge"):
        return planned, dead
    base = {"child_ref": child_id}
    born = _d((child.get("child_details") or {}).get("date_of_birth"))
    birth_month = born.strftime("%Y-%m") if born is not None else None  # never the day (O11)

    def add(event_type: str, identity: tuple, **fields: Any) -> None:
        ev = ctx.event(event_type, child_id, identity, **fields)
        ev.pop("event_id")
        planned.append(Planned((event_type, *identity), ev))

    for episode in child.get("social_care_episodes") or []:
        if episode.get("purge"):
            continue
        ep_id = episode["social_care_episode_id"]
        ep_key = ("episode", ep_id)
        episode_ref = f"{child_id}/episode/{ep_id}"
        referral = _d(episode.get("referral_date"))
        if referral is not None:
            source = episode.get("referral_source") or "10"  # absent: T1 "unknown"
            if _code("referral_source", source, referral):
                add("referral.received", ep_key, referral_date=referral, source=source,
                    referral_nfa=episode.get("referral_no_further_action_flag"), episode_ref=episode_ref)
            else:
                dead.append(DeadLetter("unknown_code", "social_care_episodes.referral_source", dict(base)))
        closure = _d(episode.get("closure_date"))
        if closure is not None:
            reason = episode.get("closure_reason")
            if referral is not None and closure < referral:
                dead.append(DeadLetter("end_before_start", "social_care_episodes.closure_date", dict(base)))
            elif not _code("reason_for_closure", reason, closure):
                dead.append(DeadLetter("unknown_code" if reason else "missing_code",
                                       "social_care_episodes.closure_reason", dict(base)))
            else:
                add("cin_episode.closed", ep_key, closure_date=closure, reason=reason, episode_ref=episode_ref)

        # Allocated social workers (O12 counts a looked-after child's distinct workers in 12 months):
        # the worker id goes out only as worker_ref, which the publisher pseudonymises; the event's
        # identity holds the start date and a same-day counter, never the id.
        same_day: dict[date, int] = {}
        for w in sorted(episode.get("care_worker_details") or [], key=lambda w: str(w.get("start_date"))):
            worker, started = w.get("worker_id"), _d(w.get("start_date"))
            if not worker or started is None:
                continue
            same_day[started] = same_day.get(started, 0) + 1
            add("case.allocated", (*ep_key, "worker", started.isoformat(), same_day[started]), case_type="cin",
                allocation_date=started, worker_ref=worker)

        plan_starts = {_d(p.get("start_date")) for p in episode.get("child_protection_plans") or []
                       if not p.get("purge")}
        for a in episode.get("child_and_family_assessments") or []:
            if a.get("purge"):
                continue
            key = (*ep_key, "assessment", a["child_and_family_assessment_id"])
            ref = f"{child_id}/assessment/{a['child_and_family_assessment_id']}"
            start, done = _d(a.get("start_date")), _d(a.get("authorisation_date"))
            if start is not None and done is not None and done < start:
                dead.append(DeadLetter("end_before_start", "child_and_family_assessments.authorisation_date",
                                       dict(base)))
                continue
            if start is not None:
                add("assessment.started", key, assessment_ref=ref, start_date=start,
                    referral_ref=episode_ref if referral is not None else None)
            if done is not None:
                factors = []
                for f in a.get("factors") or []:
                    if _code("assessment_factor", f, done):
                        factors.append(f)
                    else:
                        dead.append(DeadLetter("unknown_code", "child_and_family_assessments.factors", dict(base)))
                add("assessment.completed", key, assessment_ref=ref, authorisation_date=done,
                    factors=factors or None)
        for s in episode.get("section_47_assessments") or []:
            if s.get("purge"):
                continue
            key = (*ep_key, "s47", s["section_47_assessment_id"])
            ref = f"{child_id}/s47/{s['section_47_assessment_id']}"
            start, icpc, end = _d(s.get("start_date")), _d(s.get("icpc_date")), _d(s.get("end_date"))
            if start is not None and ((icpc is not None and icpc < start) or (end is not None and end < start)):
                dead.append(DeadLetter("end_before_start", "section_47_assessments", dict(base)))
                continue
            if start is not None:
                add("s47.started", key, s47_ref=ref, start_date=start)
            if icpc is not None:
                add("icpc.held", key, date=icpc, s47_ref=ref, resulted_in_cpp=icpc in plan_starts)
            if end is not None:
                flag = s.get("icpc_required_flag")
                add("s47.completed", key, s47_ref=ref, end_date=end,
                    icpc_not_required=(not flag) if isinstance(flag, bool) else None)
        for p in episode.get("child_protection_plans") or []:
            if p.get("purge"):
                continue
            key = (*ep_key, "cpp", p["child_protection_plan_id"])
            ref = f"{child_id}/cpp/{p['child_protection_plan_id']}"
            start, end = _d(p.get("start_date")), _d(p.get("end_date"))
            if start is not None and end is not None and end < start:
                dead.append(DeadLetter("end_before_start", "child_protection_plans.end_date", dict(base)))
                continue
            if start is not None:
                # The API carries no category of abuse: initial_category is left out (docs/feeds.md).
                add("cp_plan.started", key, plan_ref=ref, start_date=start)
            if end is not None:
                add("cp_plan.ended", key, plan_ref=ref, end_date=end, end_route="other")
        for pl in episode.get("child_looked_after_placements") or []:
            if pl.get("purge"):
                continue
            key = (*ep_key, "placement", pl["child_looked_after_placement_id"])
            start, end = _d(pl.get("start_date")), _d(pl.get("end_date"))
            if start is not None and end is not None and end < start:
                dead.append(DeadLetter("end_before_start", "child_looked_after_placements.end_date", dict(base)))
                continue
            if start is not None:
                place, rne = pl.get("placement_type"), pl.get("start_reason")
                if not _code("placement", place, start):
                    dead.append(DeadLetter("unknown_code" if place else "missing_code",
                                           "child_looked_after_placements.placement_type", dict(base)))
                    continue
                change = pl.get("change_reason")
                change = change if _code("reason_place_change", change, start) else None
                if rne == "S":
                    # The API carries no legal status: legal_status is left out (docs/feeds.md).
                    add("lac.started", key, decom=start, rne="S", placement=place, birth_month=birth_month)
                elif rne in PLACEMENT_RNE:
                    add("placement.changed", key, date=start, rne=rne, placement=place, reason_place_change=change)
                elif rne == "L":
                    pass  # a legal status change only: the API does not say to what
                else:
                    dead.append(DeadLetter("unknown_code" if rne else "missing_code",
                                           "child_looked_after_placements.start_reason", dict(base)))
            if end is not None:
                reason = pl.get("end_reason")
                if reason == "X1":
                    continue
                if _code("reason_ceased", reason, end):
                    add("lac.ended", key, dec=end, reason_ceased=reason)
                else:
                    dead.append(DeadLetter("unknown_code" if reason else "missing_code",
                                           "child_looked_after_placements.end_reason", dict(base)))
    return planned, dead


# -- comparison with the last state ------------------------------------------------------------
def _fingerprint(event: Mapping[str, Any]) -> str:
    content = {k: v for k, v in event.items() if k not in ("event_id", "correction_of", "recorded_at")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _derived(*parts: str) -> str:
    return str(uuid.uuid5(FEEDS_NAMESPACE, "|".join(parts)))


@dataclass
class ChildChanges:
    events: list[dict] = field(default_factory=list)
    new_state: dict = field(default_factory=dict)
    voided: int = 0
    amended: int = 0
    voided_roots: list[str] = field(default_factory=list)   # event ids of the originals voided now


def compare(ctx: FeedContext, child_id: str, planned: Iterable[Planned], state: dict | None,
            now: str | None = None) -> ChildChanges:
    """Events to send for a child whose last state was ``state`` and whose snapshot stands for
    ``planned``; plus the state to keep once they are sent."""
    now = now or datetime.now(timezone.utc).isoformat(timespec="seconds")
    held: dict[str, dict] = {k: dict(v) for k, v in ((state or {}).get("events") or {}).items()}
    out = ChildChanges()
    wanted: set[str] = set()
    for p in planned:
        base = ctx.event_id(child_id, *p.identity)
        wanted.add(base)
        fp = _fingerprint(p.event)
        entry = held.get(base)
        ev = dict(p.event)
        if entry is not None and entry["live"] and entry["fp"] == fp:
            continue  # unchanged
        if entry is None:
            ev["event_id"] = base
            held[base] = {"id": base, "root": base, "fp": fp, "t": ev["event_type"], "live": True, "gen": 0}
        elif not entry["live"]:  # came back after a void: a fresh original
            ev["event_id"] = _derived(base, fp, f"gen{entry['gen']}")
            held[base] = {"id": ev["event_id"], "root": ev["event_id"], "fp": fp, "t": ev["event_type"],
                          "live": True, "gen": entry["gen"]}
        else:  # changed content: amend the original (the latest recorded_at wins)
            ev["event_id"] = _derived(base, fp, f"gen{entry['gen']}", "amend")
            ev["correction_of"] = entry["root"]
            ev["recorded_at"] = now
            held[base] = {**entry, "id": ev["event_id"], "fp": fp}
            out.amended += 1
        out.events.append(ev)
    for base, entry in held.items():
        if base in wanted or not entry["live"]:
            continue
        void_of = entry["root"]  # voiding the original removes every amendment made through it
        out.events.append({
            "event_id": _derived(void_of, "void"),
            "event_type": "event.voided",
            "schema_version": 1,
            "la_code": ctx.la_code,
            "team": ctx.team,
            "child_ref": child_id,
            "correction_of": void_of,
            "recorded_at": now,
        })
        held[base] = {**entry, "live": False, "gen": entry["gen"] + 1, "fp": ""}
        out.voided += 1
        out.voided_roots.append(void_of)
    out.new_state = {"events": held}
    return out


def _purges_below(node: Any) -> bool:
    """Whether a ``purge: true`` appears anywhere below the child itself."""
    if isinstance(node, dict):
        return any((k == "purge" and v is True) or _purges_below(v) for k, v in node.items() if k != "la_child_id")
    if isinstance(node, list):
        return any(_purges_below(v) for v in node)
    return False


# -- the service -------------------------------------------------------------------------------
@dataclass
class SnapshotAdapter:
    """Maps posted children to events and keeps their last state. ``publish`` gets each request's
    events (raw identifiers; the publisher pseudonymises) and must raise if they were not stored:
    the state is then not advanced, so re-sending the request sends them again."""
    la_codes: Mapping[str, str]                     # old 3-digit number -> ONS code
    publish: Callable[[list[dict]], None]
    publish_dead_letters: Callable[[list[DeadLetter]], None]
    store: SnapshotStateStore = field(default_factory=MemorySnapshotStore)
    child_key: Callable[[str, str], str] | None = None   # (id, la_code) -> pseudonym: the state's key
    team: str = "unassigned"
    # The erasure path (casewatch.erasure.ErasureQueue.request), called once the voids are stored:
    # a purge of the whole child -> (la_code, child key), and its snapshot state is deleted; a purge
    # below it (an episode, a plan ...) -> (la_code, child key, event ids of the voided originals).
    request_erasure: Callable[..., None] | None = None

    def context(self, la_number: int) -> FeedContext | None:
        ons = self.la_codes.get(str(la_number))
        if ons is None:
            return None
        return FeedContext(la_code=ons, source=SOURCE, team=self.team, child_identity=self.child_key)

    def receive(self, ctx: FeedContext, children: list[dict]) -> dict:
        counts = {"children": len(children), "events": 0, "voided": 0, "amended": 0, "dead_letters": 0}
        for child in children:
            child_id = child["la_child_id"]
            key = ctx.identity_of_child(child_id)
            planned, dead = snapshot_events(ctx, child)
            changes = compare(ctx, child_id, planned, self.store.get(key))
            if changes.events:
                self.publish(changes.events)
            if dead:
                self.publish_dead_letters(dead)
            if child.get("purge"):
                # The erasure path: nothing of the child is kept here, and its erasure from the
                # topics is queued (the voids above already took it out of the figures).
                self.store.delete(key)
                if self.request_erasure is not None:
                    self.request_erasure(ctx.la_code, key)
                counts["erasures_requested"] = counts.get("erasures_requested", 0) + 1
            else:
                self.store.put(key, changes.new_state)
                if changes.voided_roots and self.request_erasure is not None and _purges_below(child):
                    self.request_erasure(ctx.la_code, key, changes.voided_roots)
                    counts["erasures_requested"] = counts.get("erasures_requested", 0) + 1
            counts["events"] += len(changes.events)
            counts["voided"] += changes.voided
            counts["amended"] += changes.amended
            counts["dead_letters"] += len(dead)
        return counts


Authenticate = Callable[[Optional[str]], Optional[str]]


def supplier_doors(settings) -> tuple[Authenticate, Callable[[str, str], bool]]:
    """(authenticate, may_write) for suppliers. They present the bearer tokens of the ingest API
    (one per source system, ``CASEWATCH_INGEST_TOKENS``), checked by the doors ingest uses too
    (``casewatch.access``, every token compared in constant time); a token may write only for
    the authorities of its grant (``la_codes``)."""
    grants = settings.read_ingest_grants()

    def authenticate(presented: str | None) -> str | None:
        grant = grant_for_token(grants, presented)
        return grant.source if grant is not None else None

    def may_write(source: str, la_code: str) -> bool:
        grant = grants.get(source)
        return grant is not None and la_code in grant.la_codes

    return authenticate, may_write


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _problem(status: int, detail: Any, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def create_app(adapter: SnapshotAdapter, openapi_path: Path | str = DEFAULT_OPENAPI, *,
               authenticate: Authenticate, may_write: Callable[[str, str], bool] = lambda source, la: True,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The adapter's HTTP app. ``authenticate`` maps a presented bearer token to its source system
    (None: refused with 401); ``may_write(source, la_code)`` says whether it may write for that
    authority (else 403). Read endpoints: ``/healthz`` only."""
    schema = load_schema(str(openapi_path))
    app = FastAPI(title="casewatch DfE CSC API adapter", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.adapter = adapter
    app.state.last_counts = None

    @app.post("/children_social_care_data/{la_code}/children")
    async def children(la_code: str, request: Request):
        source = authenticate(_bearer(request))
        if source is None:
            return _problem(401, "a valid bearer token is required", **{"WWW-Authenticate": "Bearer"})
        if not re.fullmatch(r"-?\d{1,6}", la_code) or int(la_code) > 999:
            return _problem(400, [{"loc": "path.la_code", "msg": "must be the 3-digit DfE LA number",
                                   "type": "maximum"}])
        ctx = adapter.context(int(la_code))
        if ctx is None:
            return _problem(403, "this service does not take data for that local authority")
        if not may_write(source, ctx.la_code):
            return _problem(403, "this token may not write for that local authority")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return _problem(413, f"the body is over {max_body_bytes} bytes")
        raw = bytearray()
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > max_body_bytes:
                return _problem(413, f"the body is over {max_body_bytes} bytes")
        raw = bytes(raw)
        if json_depth(raw) > MAX_NESTING:
            return _problem(400, [{"loc": "body", "msg": f"nested deeper than {MAX_NESTING} levels",
                                   "type": "json_too_deep"}])
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _problem(400, [{"loc": "body", "msg": "not valid JSON", "type": "json_invalid"}])
        if isinstance(body, list) and len(body) > MAX_CHILDREN:
            return _problem(413, f"at most {MAX_CHILDREN} children a request")
        try:
            errors = schema_errors(body, schema)
        except RecursionError:
            errors = [{"loc": "body", "msg": "nested too deeply to check", "type": "json_too_deep"}]
        if errors:
            return _problem(400, errors)
        if not body:
            return Response(status_code=204)
        app.state.last_counts = await run_in_threadpool(adapter.receive, ctx, body)
        return JSONResponse(str(uuid.uuid4()))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app


def default_la_codes(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    table = dict(OLD_LA_NUMBERS)
    table.update(extra or {})
    return table
