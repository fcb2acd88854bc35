"""The engine's per-partition state (casewatch/processing/figures.py) and its stored value
(casewatch/processing/store.py), without Kafka: applied one event at a time, in any order and with
repeats, the figures are those of the whole history computed at once; a bad event changes nothing;
the stored value restores the same figures."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from casewatch.domain.aggregate import combine_series
from casewatch.processing.store import decode_history, encode_history, extend_history
from casewatch.processing.figures import PartitionedFigures
from tests.unit.domain.test_golden import CALENDAR, SCENARIOS, key_of, load, run

LOADED = [load(p) for p in SCENARIOS]


def figures_for(as_of) -> PartitionedFigures:
    return PartitionedFigures(CALENDAR, lambda: as_of)


def samples_of(figures: PartitionedFigures) -> dict:
    # the golden helper's form: (metric, sorted labels) -> value, every series
    return {key: value for key, value in combine_series(
        f.aggregate.series() for f in figures.partitions.values()).items()}


def golden_samples(data) -> dict:
    return {(metric, labels): value for (metric, labels), value in run(data["events"], data["as_of"])[0].items()}


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(LOADED), st.data())
def test_one_event_at_a_time_in_any_order_gives_the_figures_of_the_whole_history(data, draw):
    events = list(data["events"])
    repeats = draw.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    arrival = draw.draw(st.permutations(events + repeats))
    figures = figures_for(data["as_of"])
    stored: dict[str, list[dict]] = {}
    for event in arrival:
        key = key_of(event)
        applied = figures.apply(hash(key) % 3, key, [event], None)
        if applied.history is not None:
            stored[key] = applied.to_store
    live, whole = samples_of(figures), golden_samples(data)
    # the same figures; a series seen on the way keeps being published at 0 (no vanishing series)
    assert {k: v for k, v in live.items() if v} == {k: v for k, v in whole.items() if v}
    assert set(whole) <= set(live)
    # and a worker rebuilding from the stored histories has the same figures
    rebuilt = figures_for(data["as_of"])
    for p in range(3):
        rebuilt.rebuild(p, [(k, v) for k, v in stored.items() if hash(k) % 3 == p])
    assert {k: v for k, v in samples_of(rebuilt).items() if v} == {k: v for k, v in live.items() if v}


def test_a_group_with_an_unusable_event_changes_nothing_and_its_valid_events_still_count():
    data = LOADED[0]
    key = key_of(data["events"][0])
    mine = [e for e in data["events"] if key_of(e) == key]
    bad = {**mine[0], "event_id": ["not", "an", "id"]}  # unhashable: as if it bypassed ingest
    figures = figures_for(data["as_of"])
    with pytest.raises(TypeError):
        figures.apply(0, key, [*mine, bad], None)
    assert figures.partition(0).keys[key].parsed == []
    # the engine then applies the group's events one by one: the valid ones are not "duplicates"
    counted = [figures.apply(0, key, [e], None) for e in mine]
    assert all(a.duplicates == 0 and a.history is not None for a in counted)


def test_the_stored_value_grows_by_appending_and_reads_back_as_the_whole_history():
    data = LOADED[0]
    key = key_of(data["events"][0])
    figures = figures_for(data["as_of"])
    value = None
    for event in [e for e in data["events"] if key_of(e) == key]:
        applied = figures.apply(2, key, [event], None)
        value = extend_history(value, 2, applied.appended, lambda: applied.to_store)
        assert value == encode_history(2, applied.to_store)
    partition, events = decode_history(value)
    assert partition == 2 and events == figures.partition(2).keys[key].events
    assert json.loads(value) == {"p": 2, "e": events}


# -- a simulated authority's stream: the kept walks against the whole computation ------------------
def test_a_simulated_stream_one_event_at_a_time_matches_the_whole_computation_and_mostly_extends():
    import random
    import uuid
    from datetime import date

    from casewatch.simulation.authority import authority_events
    until = date(2026, 3, 31)
    events = list(authority_events(["E06000004"], 400, 5, date(2025, 4, 1), until, warmup_years=1))
    rng = random.Random(7)
    stream: list[dict] = []
    for i, event in enumerate(events):
        stream.append(event)
        if i % 40 == 0:
            stream.append(dict(event))                         # a redelivery
        if i % 97 == 0 and event["event_type"] != "workforce.snapshot":
            # an amendment or a void of an earlier event of the same key, arriving later
            target = rng.choice([e for e in stream if key_of(e) == key_of(event)])
            fix = {**target, "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                   "correction_of": target["event_id"], "recorded_at": "2026-04-01T09:00:00+00:00"}
            if i % 2:
                fix = {k: fix[k] for k in ("event_id", "correction_of", "la_code", "team", "child_ref",
                                           "schema_version", "recorded_at", "effective_date") if k in fix}
                fix["event_type"] = "event.voided"
            stream.append(fix)
    figures = figures_for(until)
    figures.running_keys = 150  # fewer than the children: kept walks are also dropped and rebuilt
    for event in stream:
        key = key_of(event)
        figures.apply(hash(key) % 4, key, [event], None)
    live = samples_of(figures)
    whole = {(m, l): v for (m, l), v in run(stream, until)[0].items()}
    assert {k: v for k, v in live.items() if v} == {k: v for k, v in whole.items() if v}
    assert len(whole) > 50
    # most events took the kept walk, and at most running_keys walks are held
    assert figures.fast_path_events > len(events) / 3
    assert sum(1 for f in figures.partitions.values() for s in f.keys.values() if s.running) <= 150


@pytest.mark.parametrize("early", [
    {"event_type": "lac_review.held", "date": "2026-01-12", "due_date": "2026-02-01"},
    {"event_type": "lac.ended", "dec": "2026-01-12", "reason_ceased": "E11"},
    {"event_type": "cp_review.held", "date": "2026-01-12", "plan_ref": "P1", "due_date": "2026-02-01"},
    {"event_type": "icpc.held", "date": "2026-01-12", "s47_ref": "S1", "resulted_in_cpp": True},
])
def test_a_later_start_that_puts_an_earlier_event_before_it_is_computed_the_whole_way(early):
    from datetime import date
    base = {"la_code": "E06000004", "team": "cp_1", "child_ref": "ps_" + "1" * 32, "schema_version": 1}
    start = {"lac_review.held": {"event_type": "lac.started", "decom": "2026-01-20", "legal_status": "C2"},
             "lac.ended": {"event_type": "lac.started", "decom": "2026-01-20", "legal_status": "C2"},
             "cp_review.held": {"event_type": "cp_plan.started", "start_date": "2026-01-20", "plan_ref": "P1",
                                "initial_category": "NEG"},
             "icpc.held": {"event_type": "s47.started", "start_date": "2026-01-20", "s47_ref": "S1"}}[early["event_type"]]
    events = [{**base, "event_id": "00000000-0000-4000-8000-000000000001",
               "event_type": "referral.received", "referral_date": "2026-01-05", "source": "2A"},
              {**base, "event_id": "00000000-0000-4000-8000-000000000002", **early},
              {**base, "event_id": "00000000-0000-4000-8000-000000000003", **start}]
    as_of = date(2026, 3, 31)
    figures = figures_for(as_of)
    rejected = []
    for event in events:  # in date order: each one after the last
        rejected += figures.apply(0, base["child_ref"], [event], None).rejections
    whole, whole_rejections = run(events, as_of)
    assert {k: v for k, v in samples_of(figures).items() if v} == {k: v for k, v in whole.items() if v}
    assert [eid for eid, _ in whole_rejections] == ["00000000-0000-4000-8000-000000000002"]
