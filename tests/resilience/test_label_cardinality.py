"""Label cardinality under adversarial code values written straight to the events topic.

Events that never passed the ingest edge may carry anything in the fields that become labels.
2,000 distinct unknown values each of team, LA code, referral source, CP category, legal status
and event type (and 500 each of end route, case type and care-leaver age band) go to a real
engine after a clean set of events. The engine's series count must stay close to the clean run's,
every label value must come from the configured or catalogued lists (``other`` being the bounded
catch-all), and no label value may equal an adversarial input.

Until December 2026 it sent 10,000 (and 1,000) per dimension, 63,000 events; 13,500 prove the same:
any one adversarial value in a label fails the per-value check, and one dimension leaking its values
would add at least 500 series (1,000 of each form in the major dimensions, 500 in the minor ones),
which the bound of fewer than 500 new series rejects, as it did for 10,000.
"""
from __future__ import annotations

import json
import time
import uuid

from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from schemas.code_lists import codes, collection_years
from schemas.events import EVENT_TYPES
from schemas.examples import valid_examples
from casewatch.adapters.kafka.topics import ensure_topics
from casewatch.domain.events import event_partition_key
from tests.support.engine_io import child_ref, sample_sum, scrape

TODAY = "2025-10-01"
PER_DIMENSION = 2_000
PER_MINOR_DIMENSION = 500
PROCESSED = "casewatch_events_processed_total"
DUPLICATES = "casewatch_events_duplicate_total"
DEAD = "casewatch_events_dead_lettered_total"


def every_year(list_name: str) -> set[str]:
    return {c for y in collection_years() for c in codes(list_name, y)}


def allowed_label_values(settings) -> dict[str, set[str]]:
    """The label values docs/metrics.md allows (configured lists, catalogue, the documented group
    names), plus ``other`` as the one catch-all for a value outside them."""
    return {
        "la": set(settings.la_code_list) | {"other"},
        "team": set(settings.team_list) | {"unassigned", "other"},
        "event_type": set(EVENT_TYPES) | {"other"},
        "source_group": {"individual", "schools_education", "health", "housing", "la_services", "police", "legal",
                         "other", "anonymous_unknown"},
        "category": every_year("abuse_category") | {"not_recorded", "other"},
        "legal_status_group": {"care_order", "placement_freeing", "voluntary_s20", "emergency_protection",
                               "youth_justice", "other", "not_recorded"},
        "end_route": {"cin_plan", "early_help", "became_lac", "moved_la", "other"},
        "case_type": {"cin", "cp", "lac", "care_leaver", "other"},
        "age_band": {"17-18", "19-21", "unknown", "other"},
        "window": {"28d", "12m", "fytd", "month", "quarter", "cohort_12m", "cohort_quarter"},
    }


def series(text: str) -> list[tuple[str, dict]]:
    return [(s.name, s.labels) for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("casewatch_") and not s.name.endswith("_created")]


def adversarial_events() -> tuple[list[dict], set[str]]:
    ex = valid_examples()
    events, inputs = [], set()
    n = 0

    def add(example: str, field: str, value: str) -> None:
        nonlocal n
        n += 1
        event = dict(ex[example], event_id=str(uuid.uuid4()), child_ref=child_ref(500_000 + n))
        event[field] = value
        events.append(event)
        inputs.add(value)

    for i in range(PER_DIMENSION):
        # Half of each: values of the right form (they pass a pattern check), half anything at all.
        add("referral.received", "team", f"adv_team_{i}" if i % 2 else f"Team of Jane Doe #{i}")
        add("referral.received", "la_code", f"E09{i:06d}" if i % 2 else f"Council {i} <script>")
        add("referral.received", "source", f"9{i}Z" if i % 2 else f"a neighbour called Smith {i}")
        add("cp_plan.started", "initial_category", f"NEG{i}" if i % 2 else f"category {i} of child X")
        add("lac.started", "legal_status", f"C{i + 3}" if i % 2 else f"legal status of child {i}")
        add("referral.received", "event_type", f"referral.received_{i}" if i % 2 else f"Type Jane {i}")
    for i in range(PER_MINOR_DIMENSION):
        add("cp_plan.ended", "end_route", f"route_{i}")
        add("case.allocated", "case_type", f"case_{i}")
        add("care_leaver.status", "age_band", f"{i + 30}-{i + 31}")
    return events, inputs


def clean_events() -> list[dict]:
    out = []
    for n, event in enumerate(valid_examples().values()):
        out.append(dict(event, event_id=str(uuid.uuid4())))
    return out


def publish(settings, events: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    for e in events:
        key = event_partition_key(e)
        producer.send(settings.events_topic, key=key.encode(), value=json.dumps(e).encode())
    producer.flush(timeout=120)
    producer.close()


def wait_accounted(settings, expected: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    text = scrape(settings)
    while time.monotonic() < deadline:
        done = (sample_sum(text, PROCESSED) + sample_sum(text, DUPLICATES) + sample_sum(text, DEAD)
                - sample_sum(text, DEAD, stage="rules"))
        if done >= expected:
            return text
        time.sleep(2)
        text = scrape(settings)
    raise AssertionError(f"the engine accounted for {done} of {expected} events within {timeout}s")


def test_adversarial_code_values_never_become_label_values(local_stack):
    settings = local_stack.settings_for(fixed_today=TODAY)
    ensure_topics(settings)
    proc = local_stack.start_engine(settings, name="engine-cardinality")
    try:
        clean = clean_events()
        publish(settings, clean)
        clean_text = wait_accounted(settings, len(clean), timeout=60)
        time.sleep(6)  # one lag refresh, so operational series are all present
        clean_series = series(scrape(settings))

        adversarial, inputs = adversarial_events()
        started = time.monotonic()
        publish(settings, adversarial)
        text = wait_accounted(settings, len(clean) + len(adversarial), timeout=170)
        took = time.monotonic() - started
        assert proc.alive
        after = series(text)
        print(f"\n[cardinality] clean run: {len(clean)} events, {len(clean_series)} series; "
              f"+{len(adversarial)} adversarial events ({len(inputs)} distinct values) in {took:.0f}s: "
              f"{len(after)} series")

        # Bounded: the adversarial run adds at most a few "other" series per metric, never one
        # per value (each dimension alone would add at least PER_MINOR_DIMENSION = 500).
        assert len(after) - len(clean_series) < 500, (len(clean_series), len(after))

        allowed = allowed_label_values(settings)
        outside: dict[str, set[str]] = {}
        for name, labels in after:
            for label, value in labels.items():
                assert value not in inputs, f"{name} carries an adversarial value in label {label}"
                if label in allowed and value not in allowed[label]:
                    outside.setdefault(label, set()).add(value)
        assert not outside, {k: len(v) for k, v in outside.items()}
        distinct = {label: {labels[label] for _, labels in after if label in labels} for label in allowed}
        for label, values in distinct.items():
            assert len(values) <= len(allowed[label]), label
        # Nothing vanished either: every adversarial event was applied or dead-lettered.
        assert sample_sum(clean_text, PROCESSED) == len(clean)
    finally:
        local_stack.stop("engine-cardinality")
