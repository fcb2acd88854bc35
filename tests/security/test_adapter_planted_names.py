"""Property: names, addresses and ids planted in a DfE CSC API body (the free-text fields the
contract has — names, postcodes, UPNs, the supplier's own ids, worker ids — and the code fields)
never reach an event or a dead letter as they go to Kafka: free text is never read, code fields
that are not codes become dead letters with a reason and no value, and ids are pseudonymised at the
edge (``Pseudonymiser.event``, as the publisher does)."""
from __future__ import annotations

import copy
import json

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.feeds.dfe_api import DEFAULT_OPENAPI, SOURCE, SnapshotAdapter, create_app, load_schema
from casewatch.adapters.sqlite.snapshot_state import MemorySnapshotStore
from casewatch.edge.pseudonymise import Pseudonymiser

PSEUDONYMISER = Pseudonymiser(b"planted-names-test-key-0123456789abcdef")
EXAMPLE = load_schema(str(DEFAULT_OPENAPI))["items"]["example"]
TOKEN = "supplier-token-0123456789"

# field path -> longest value the contract allows there (all plain text: no pattern but the ids')
FREE = {("child_details", "first_name"): 30, ("child_details", "surname"): 30, ("child_details", "postcode"): 8,
        ("mis_child_id",): 36}
UPN = {("child_details", "unique_pupil_number"): 13, ("child_details", "former_unique_pupil_number"): 13}
EPISODE_FREE = {("care_worker_details", 0, "worker_id"): 12, ("child_looked_after_placements", 0, "postcode"): 8}
EPISODE_CODES = {("referral_source",): 2, ("closure_reason",): 3,
                 ("child_looked_after_placements", 0, "placement_type"): 3,
                 ("child_looked_after_placements", 0, "end_reason"): 3,
                 ("child_and_family_assessments", 0, "factors", 0): 3}
IDS = {("la_child_id",): 20}
EPISODE_IDS = {("social_care_episode_id",): 36, ("section_47_assessments", 0, "section_47_assessment_id"): 36}

# A planted token: "Q" and lower-case consonants, so it cannot occur by chance in a pseudonym (hex),
# a UUID, a date, a code or an event type.
def token(max_len: int, exact: bool = False):
    low = max_len - 1 if exact else min(2, max_len - 1)
    return st.text("bcdfghjkmnpqrstvwxz", min_size=low, max_size=min(max(9, low), max_len - 1)).map(
        lambda s: "Q" + s)


def _set(node, path, value):
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


plant = st.one_of(
    *[st.tuples(st.just(("child", p)), token(n)) for p, n in {**FREE, **IDS}.items()],
    *[st.tuples(st.just(("child", p)), token(n, exact=True)) for p, n in UPN.items()],  # 13 characters
    *[st.tuples(st.just(("episode", p)), token(n)) for p, n in {**EPISODE_FREE, **EPISODE_CODES,
                                                                **EPISODE_IDS}.items()])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(plants=st.lists(plant, min_size=1, max_size=6, unique_by=lambda p: p[0]))
def test_planted_text_reaches_no_event_and_no_dead_letter(plants):
    child = copy.deepcopy(EXAMPLE)
    for (where, path), value in plants:
        _set(child if where == "child" else child["social_care_episodes"][0], path, value)
    sent, dead = [], []
    adapter = SnapshotAdapter({"808": "E06000004"}, sent.extend, dead.extend, MemorySnapshotStore(),
                              PSEUDONYMISER.pseudonym)
    app = create_app(adapter, DEFAULT_OPENAPI, authenticate=lambda t: "supplier" if t == TOKEN else None)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        reply = client.post("/children_social_care_data/808/children", json=[child])
    assert reply.status_code == 200, reply.text
    # what goes to Kafka: events and dead letters with their identifier fields pseudonymised
    to_kafka = [PSEUDONYMISER.event(ev) for ev in sent]
    to_kafka += [{**dl.to_record(SOURCE), "payload": PSEUDONYMISER.event(dl.payload)} for dl in dead]
    text = json.dumps(to_kafka) + reply.text
    assert sent, "the example child still yields events"
    for _, value in plants:
        assert value not in text
