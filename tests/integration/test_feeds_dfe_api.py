"""The DfE CSC API adapter: contract (the published schema's example and 200 generated bodies are
accepted, invalid bodies get 4xx with reasons) and the events a sequence of snapshots of one child
yields (worked out by hand from docs/feeds.md)."""
from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, FormatChecker
import schemathesis
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from casewatch.domain.history import ChildHistory
from services.feeds.dfe_api import DEFAULT_OPENAPI, SnapshotAdapter, create_app as _create_app, load_schema
from casewatch.adapters.sqlite.snapshot_state import MemorySnapshotStore, SqliteSnapshotStore
from casewatch.edge.pseudonymise import Pseudonymiser

OPENAPI = DEFAULT_OPENAPI   # the copy vendored in the package (services/feeds/dfe_csc_api/SOURCE.md)
TOKEN = "supplier-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCHEMA = load_schema(str(OPENAPI))
URL = "/children_social_care_data/808/children"
PSEUDONYMISER = Pseudonymiser(b"feeds-test-key-0123456789abcdef-0123")


def create_app(adapter, openapi=OPENAPI, **kw):
    return _create_app(adapter, openapi, authenticate=lambda t: "supplier_a" if t == TOKEN else None, **kw)


def _adapter(store=None):
    sent, dead = [], []
    adapter = SnapshotAdapter({"808": "E06000004"}, lambda evs: sent.extend(evs), lambda dls: dead.extend(dls),
                              store if store is not None else MemorySnapshotStore(), PSEUDONYMISER.pseudonym)
    return adapter, sent, dead


@pytest.fixture()
def client():
    adapter, sent, dead = _adapter()
    with TestClient(create_app(adapter, OPENAPI), headers=AUTH) as c:
        c.sent, c.dead = sent, dead
        yield c


# -- contract ----------------------------------------------------------------------------------
# hypothesis-jsonschema 0.23.1 fails on object schemas with the installed hypothesis 6.170
# ("'many' object has no attribute 'more'"), so bodies are generated from the schema by this small
# builder, which covers the keywords openapi.json uses; every body is checked against the schema
# with jsonschema before it is posted, so the builder cannot pass off an invalid body as valid.
_ALPHABETS = {"^[A-Za-z0-9]+$": ("abcXYZ019", 1), "^[A-Za-z0-9_-]*$": ("abXY09_-", 0)}


def _strategy(schema: dict, top: bool = False):
    kind = schema.get("type")
    if kind == "object":
        props = {k: _strategy(v) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries({k: v for k, v in props.items() if k in required},
                                     optional={k: v for k, v in props.items() if k not in required})
    if kind == "array":
        cap = schema.get("maxItems", 4)
        return st.lists(_strategy(schema["items"]), max_size=min(cap, 6 if top else 3),
                        unique_by=(lambda x: json.dumps(x, sort_keys=True)) if schema.get("uniqueItems") else None)
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates().map(lambda d: d.isoformat())
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 12)
        if "pattern" in schema:
            alphabet, least = _ALPHABETS[schema["pattern"]]
            return st.text(alphabet, min_size=max(lo, least), max_size=hi)
        return st.text(min_size=lo, max_size=hi)
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=-1000, max_value=1000)
    raise AssertionError("a schema keyword the builder does not cover")


VALIDATOR = Draft7Validator(SCHEMA, format_checker=FormatChecker())

def test_the_schemas_own_example_is_accepted(client):
    example = SCHEMA["items"]["example"]
    r = client.post(URL, json=[example])
    assert r.status_code == 200
    assert len(r.json()) == 36  # a receipt: a UUID string
    types = sorted(ev["event_type"] for ev in client.sent)
    # The example's episode: referral, closure, assessment started and authorised, S47 with ICPC
    # and end, CP plan started and ended, placement started (S) and ended (E3), its care worker
    # (case.allocated: worker_ref, pseudonymised by the publisher, for O12).
    assert types == sorted(["referral.received", "cin_episode.closed", "assessment.started",
                            "assessment.completed", "s47.started", "icpc.held", "s47.completed",
                            "cp_plan.started", "cp_plan.ended", "lac.started", "lac.ended", "case.allocated"])
    # the example's name, UPN, postcode and date of birth reach no event
    text = json.dumps(client.sent)
    for value in ("John", "Doe", "ABC0123456789", "AB12 3DE", "DEF0123456789"):
        assert value not in text


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(body=_strategy(SCHEMA, top=True))
def test_generated_valid_bodies_are_all_accepted(body):
    assert not list(VALIDATOR.iter_errors(body))
    adapter, sent, dead = _adapter()
    with TestClient(create_app(adapter, OPENAPI), headers=AUTH) as c:
        r = c.post(URL, json=body)
    assert r.status_code == (204 if body == [] else 200)


# The official contract documents 400 "Payload was malformed" for these (never 422).
@pytest.mark.parametrize("body, status, loc, kind", [
    ([{"mis_child_id": "x"}], 400, "0", "required"),                               # no la_child_id
    ([{"la_child_id": "has space"}], 400, "0.la_child_id", "pattern"),
    ([{"la_child_id": "A1", "nickname": "Bob"}], 400, "0", "additionalProperties"),
    ([{"la_child_id": "A1", "child_details": {"date_of_birth": "2020-13-45"}}], 400,
     "0.child_details.date_of_birth", "format"),
    ({"la_child_id": "A1"}, 400, "", "type"),                                      # not an array
])
def test_invalid_bodies_get_400_with_the_place_and_rule_never_the_value(client, body, status, loc, kind):
    r = client.post(URL, json=body)
    assert r.status_code == status
    errors = r.json()["detail"]
    assert {"loc": loc, "type": kind} in [{"loc": e["loc"], "type": e["type"]} for e in errors]
    for value in ("has space", "Bob", "nickname", "2020-13-45"):
        assert value not in r.text
    assert client.sent == []


def test_100_children_are_accepted_101_are_413_and_not_json_is_400(client):
    assert client.post(URL, json=[{"la_child_id": f"C{i}"} for i in range(100)]).status_code == 200
    r = client.post(URL, json=[{"la_child_id": f"C{i}"} for i in range(101)])
    assert r.status_code == 413
    r = client.post(URL, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert client.post("/children_social_care_data/999/children", json=[]).status_code == 403


# -- a snapshot sequence for one child ---------------------------------------------------------
def _child(**episode_parts):
    episode = {"social_care_episode_id": "EP1", "referral_date": "2025-05-01", "referral_source": "6",
               "referral_no_further_action_flag": False}
    episode.update(episode_parts)
    return {"la_child_id": "Child77", "child_details": {"first_name": "Ann", "date_of_birth": "2015-02-03"},
            "social_care_episodes": [episode]}


def _post(c, child):
    before = len(c.sent)
    assert c.post(URL, json=[child]).status_code == 200
    return c.sent[before:]


def test_a_childs_snapshot_sequence_yields_the_expected_events(client):
    c = client
    # 1. a new child with no episode: nothing to count
    assert _post(c, {"la_child_id": "Child77"}) == []

    # 2. a referral
    new = _post(c, _child())
    assert [(e["event_type"], e["referral_date"], e["source"]) for e in new] == \
        [("referral.received", "2025-05-01", "6")]
    referral_id = new[0]["event_id"]
    assert new[0]["child_ref"] == "Child77" and new[0]["la_code"] == "E06000004" and new[0]["team"] == "unassigned"

    # 3. an assessment starts; 4. it is authorised
    a = {"child_and_family_assessment_id": "A1", "start_date": "2025-05-02"}
    new = _post(c, _child(child_and_family_assessments=[a]))
    assert [(e["event_type"], e["start_date"]) for e in new] == [("assessment.started", "2025-05-02")]
    started_id = new[0]["event_id"]
    a2 = {**a, "authorisation_date": "2025-06-10", "factors": ["3B", "4B"]}
    new = _post(c, _child(child_and_family_assessments=[a2]))
    assert [(e["event_type"], e["authorisation_date"], e["factors"]) for e in new] == \
        [("assessment.completed", "2025-06-10", ["3B", "4B"])]
    completed_id = new[0]["event_id"]

    # 5. an S47 enquiry
    s = {"section_47_assessment_id": "S1", "start_date": "2025-06-12"}
    new = _post(c, _child(child_and_family_assessments=[a2], section_47_assessments=[s]))
    assert [(e["event_type"], e["start_date"]) for e in new] == [("s47.started", "2025-06-12")]
    s47_id = new[0]["event_id"]

    # 6. the ICPC on 1 July makes a CP plan that day
    s2 = {**s, "icpc_date": "2025-07-01", "icpc_required_flag": True}
    p = {"child_protection_plan_id": "P1", "start_date": "2025-07-01"}
    full = _child(child_and_family_assessments=[a2], section_47_assessments=[s2], child_protection_plans=[p])
    new = _post(c, full)
    assert sorted((e["event_type"], e.get("date") or e.get("start_date")) for e in new) == \
        [("cp_plan.started", "2025-07-01"), ("icpc.held", "2025-07-01")]
    icpc = next(e for e in new if e["event_type"] == "icpc.held")
    plan = next(e for e in new if e["event_type"] == "cp_plan.started")
    assert icpc["resulted_in_cpp"] is True

    # 7. the same snapshot again: nothing new
    assert _post(c, full) == []

    # 8. the plan is purged: its event is voided, and the ICPC no longer resulted in a plan on
    #    record, so the ICPC is amended (correction_of the original)
    purged = copy.deepcopy(full)
    purged["social_care_episodes"][0]["child_protection_plans"][0]["purge"] = True
    new = _post(c, purged)
    voids = [e for e in new if e["event_type"] == "event.voided"]
    assert [v["correction_of"] for v in voids] == [plan["event_id"]]
    amended = [e for e in new if e["event_type"] == "icpc.held"]
    assert len(amended) == 1 and amended[0]["correction_of"] == icpc["event_id"]
    assert amended[0]["resulted_in_cpp"] is False and amended[0]["event_id"] != icpc["event_id"]
    assert len(new) == 2

    # 9. re-sending the purge: nothing new
    assert _post(c, purged) == []

    # 10. the whole child purged: the five live originals are voided (referral, assessment started
    #     and completed, S47, ICPC — voiding the ICPC's original removes its amendment too); the
    #     plan, already voided, is not voided again
    new = _post(c, {"la_child_id": "Child77", "purge": True})
    assert all(e["event_type"] == "event.voided" for e in new)
    assert {e["correction_of"] for e in new} == {referral_id, started_id, completed_id, s47_id, icpc["event_id"]}

    # 11. the effective history of everything sent is empty (checked with the domain's ChildHistory)
    assert ChildHistory(c.sent).events == []


def test_the_same_snapshot_gives_the_same_ids_in_a_fresh_adapter_and_state_survives_a_restart(tmp_path):
    child = _child(child_and_family_assessments=[{"child_and_family_assessment_id": "A1",
                                                  "start_date": "2025-05-02"}])
    ids = []
    for _ in range(2):
        adapter, sent, _ = _adapter(MemorySnapshotStore())
        with TestClient(create_app(adapter, OPENAPI), headers=AUTH) as c:
            c.post(URL, json=[child])
        ids.append(sorted(e["event_id"] for e in sent))
    assert ids[0] == ids[1] and len(ids[0]) == 2

    path = tmp_path / "state.sqlite"
    adapter, sent, _ = _adapter(SqliteSnapshotStore(path))
    with TestClient(create_app(adapter, OPENAPI), headers=AUTH) as c:
        c.post(URL, json=[child])
    adapter.store.close()
    adapter2, sent2, _ = _adapter(SqliteSnapshotStore(path))
    with TestClient(create_app(adapter2, OPENAPI), headers=AUTH) as c:
        c.post(URL, json=[child])
    assert len(sent) == 2 and sent2 == []
    # the state holds no case-system identifier, name or date
    raw = path.read_bytes()
    for value in (b"Child77", b"EP1", b"A1", b"2025-05-02", b"Ann"):
        assert value not in raw


def test_unmappable_parts_go_to_dead_letters_and_the_rest_is_sent(client):
    child = _child(referral_source="ZZ", child_and_family_assessments=[
        {"child_and_family_assessment_id": "A1", "start_date": "2025-06-10", "authorisation_date": "2025-05-01"}])
    new = _post(client, child)
    assert new == []
    assert sorted((d.reason, d.loc) for d in client.dead) == [
        ("end_before_start", "child_and_family_assessments.authorisation_date"),
        ("unknown_code", "social_care_episodes.referral_source")]


# -- doors: authentication, limits, the contract's status codes --------------------------------
def test_no_or_a_garbage_token_gets_401_and_nothing_is_sent():
    adapter, sent, dead = _adapter()
    with TestClient(create_app(adapter, OPENAPI)) as c:
        child = {"la_child_id": "Child77", "social_care_episodes": [{
            "social_care_episode_id": "EP1", "referral_date": "2025-05-01", "referral_source": "6"}]}
        for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic " + TOKEN},
                        {"Authorization": f"Bearer {TOKEN}x"}):
            r = c.post(URL, json=[child], headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in r.text
        assert c.post(URL, json=[{"la_child_id": "Child77", "purge": True}]).status_code == 401
    assert sent == [] and dead == []


def test_a_token_not_allowed_for_the_authority_gets_403():
    adapter, sent, _ = _adapter()
    app = create_app(adapter, OPENAPI, may_write=lambda source, la: la != "E06000004")
    with TestClient(app, headers=AUTH) as c:
        assert c.post(URL, json=[{"la_child_id": "A1"}]).status_code == 403
    assert sent == []


def test_body_size_and_nesting_limits_and_a_bad_path_give_the_contracts_codes(client):
    small = create_app(_adapter()[0], OPENAPI, max_body_bytes=2000)
    with TestClient(small, headers=AUTH) as c:
        r = c.post(URL, content=b"[" + b'{"la_child_id":"A1"},' * 200 + b'{"la_child_id":"A1"}]',
                   headers={"content-type": "application/json"})
        assert r.status_code == 413
    for depth in (40, 5000, 100_000):   # a RecursionError used to give a 500
        r = client.post(URL, content=b"[" * depth + b"]" * depth, headers={"content-type": "application/json"})
        assert r.status_code == 400, depth
    deep_inside = b'[{"la_child_id":"A1","child_details":' + b"[" * 3000 + b"]" * 3000 + b"}]"
    assert client.post(URL, content=deep_inside, headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/children_social_care_data/abc/children", json=[]).status_code == 400
    assert client.post("/children_social_care_data/1000/children", json=[]).status_code == 400
    assert client.sent == []


def test_a_purge_of_the_whole_child_deletes_its_state_and_requests_its_erasure():
    requested = []
    store = MemorySnapshotStore()
    adapter, sent, _ = _adapter(store)
    adapter.request_erasure = lambda la, key: requested.append((la, key))
    with TestClient(create_app(adapter, OPENAPI), headers=AUTH) as c:
        assert c.post(URL, json=[_child()]).status_code == 200
        assert len(store) == 1
        assert c.post(URL, json=[{"la_child_id": "Child77", "purge": True}]).status_code == 200
    key = PSEUDONYMISER.pseudonym("Child77", "E06000004")
    assert requested == [("E06000004", key)]
    assert len(store) == 0
    assert [e["event_type"] for e in sent] == ["referral.received", "event.voided"]


# schemathesis 4.32's requests transport counts open connections through urllib3's pool container
# (``pools.keys()``), which the urllib3-future that grafana-client's niquests installs under the
# name ``urllib3`` does not have. That count only serves to resend on a dropped connection, which an
# in-process (ASGI) app never has: it is answered as 0.
from schemathesis.transport import requests as _st_requests  # noqa: E402

_st_requests._count_opened_connections = lambda session: 0
_SCHEMATHESIS_SENT: list = []
_ST_APP = create_app(SnapshotAdapter({str(n): "E06000004" for n in range(-999, 1000)},  # every LA number
                                     _SCHEMATHESIS_SENT.extend, lambda dls: None, MemorySnapshotStore(),
                                     PSEUDONYMISER.pseudonym), OPENAPI)
ST_SCHEMA = schemathesis.openapi.from_path(OPENAPI)
ST_SCHEMA.app = _ST_APP
ST_SCHEMA.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
ST_CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance,
             st_checks.content_type_conformance, st_checks.response_schema_conformance]


@ST_SCHEMA.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schemathesis_against_the_official_contract_finds_no_deviation_and_no_server_error(case):
    """schemathesis with the official openapi.json (positive and negative cases, a bounded number):
    every answer is a status code the contract documents, never a server error, and a 200's body
    is the contract's receipt."""
    # the contract's server has a base path (/api); the adapter serves the operation at the root
    response = case.call(base_url="http://testserver", headers=AUTH)
    case.validate_response(response, checks=ST_CHECKS)
    if case.method.upper() == "POST":   # (schemathesis also tries methods the contract does not have)
        unauthenticated = case.call(base_url="http://testserver", headers={"Authorization": "Bearer not-a-token"})
        assert unauthenticated.status_code == 401


def test_suppliers_use_the_ingest_tokens_and_their_authorities():
    """The adapter's doors are ingest's grants (CASEWATCH_INGEST_TOKENS): a token of a source bound
    to another authority is 403 here; an unknown token 401; the right one 200."""
    import json as _json

    from casewatch.config import Settings
    from services.feeds.dfe_api import supplier_doors

    settings = Settings(la_codes="E06000004,E06000005", ingest_tokens=_json.dumps({
        "supplier_a": {"token": "token-a-0123456789", "la_codes": ["E06000004"]},
        "supplier_b": {"token": "token-b-0123456789", "la_codes": ["E06000005"]}}))
    authenticate, may_write = supplier_doors(settings)
    adapter, sent, _ = _adapter()
    app = _create_app(adapter, OPENAPI, authenticate=authenticate, may_write=may_write)
    with TestClient(app) as c:
        body = [{"la_child_id": "A1", "purge": True}]
        assert c.post(URL, json=body, headers={"Authorization": "Bearer token-b-0123456789"}).status_code == 403
        assert c.post(URL, json=body, headers={"Authorization": "Bearer token-c"}).status_code == 401
        assert c.post(URL, json=body, headers={"Authorization": "Bearer token-a-0123456789"}).status_code == 200


def test_a_purge_below_the_child_requests_the_erasure_of_the_voided_events_only():
    requested = []
    adapter, sent, _ = _adapter()
    adapter.request_erasure = lambda la, key, *events: requested.append((la, key, *events))
    a = {"child_and_family_assessment_id": "A1", "start_date": "2025-05-02"}
    with TestClient(create_app(adapter, OPENAPI), headers=AUTH) as c:
        assert c.post(URL, json=[_child(child_and_family_assessments=[a])]).status_code == 200
        started = next(e for e in sent if e["event_type"] == "assessment.started")
        # left out of the full state (not purged): a void, but no erasure request
        assert c.post(URL, json=[_child()]).status_code == 200
        assert requested == []
        assert c.post(URL, json=[_child(child_and_family_assessments=[a])]).status_code == 200
        back = sent[-1]
        assert back["event_type"] == "assessment.started" and back["event_id"] != started["event_id"]
        # purged: voided and its erasure requested (the referral stays)
        assert c.post(URL, json=[_child(child_and_family_assessments=[{**a, "purge": True}])]).status_code == 200
    key = PSEUDONYMISER.pseudonym("Child77", "E06000004")
    assert requested == [("E06000004", key, [back["event_id"]])]
    assert sent[-1]["event_type"] == "event.voided" and sent[-1]["correction_of"] == back["event_id"]
