"""Any arrival order of a scenario's events, with repeats, gives identical figures."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tests.unit.test_golden import SCENARIOS, load, run

LOADED = [load(p) for p in SCENARIOS]


@st.composite
def shuffled_with_duplicates(draw):
    data = draw(st.sampled_from(LOADED))
    events = list(data["events"])
    extra = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return data, draw(st.permutations(events + extra))


@settings(max_examples=150, deadline=None)
@given(shuffled_with_duplicates())
def test_permutations_and_duplicates_give_identical_samples(case):
    data, events = case
    assert run(events, data["as_of"]) == run(data["events"], data["as_of"])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(LOADED), st.data())
def test_stored_order_of_compacted_events_does_not_matter_for_a_later_as_of(data, draw):
    events = draw.draw(st.permutations(data["events"]))
    from datetime import timedelta
    later = data["as_of"] + timedelta(days=draw.draw(st.integers(min_value=0, max_value=400)))
    assert run(events, later) == run(data["events"], later)
