"""Issue 19 finding 5, as a property: whatever a source system types where (a child's name in
``team``, in a code field, in a date, in an unknown field or its name, in a list, beside a lone
surrogate...), the name reaches no dead letter, no Kafka record, no log line, no HTTP answer and no
metric — at the ingest API and in the bulk loader.

Hypothesis generates the payloads: a valid example of every event type with 1-4 names planted in
fields drawn at random (known and unknown), plus other damage (a field removed, a wrong type).
"""
from __future__ import annotations

import json
import logging
import uuid

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from schemas import IDENTIFIER_FIELDS
from schemas.examples import valid_examples
from casewatch.edge.bulk_load import load_files
from casewatch.adapters.kafka.publisher import EventPublisher
from tests.security.test_ingest_attacks import LCS, client_for, settings
from tests.unit.services.ingest.test_ingest_api import RecordingProducer

EXAMPLES = valid_examples()
# Names that cannot be mistaken for a code, a field name or a date: two capitalised words.
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=9).map(lambda w: "Zq" + w)
name = st.tuples(word, word).map(lambda ws: f"{ws[0].capitalize()} {ws[1].capitalize()}")


@st.composite
def planted(draw) -> tuple[dict, list[str]]:
    """(a payload as a case system might send it, the names planted in it)."""
    event_type = draw(st.sampled_from(sorted(EXAMPLES)))
    event = dict(EXAMPLES[event_type])
    event.pop("source_system", None)
    event["event_id"] = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    for field in IDENTIFIER_FIELDS:
        if isinstance(event.get(field), str):
            event[field] = f"LCS-{field}-{draw(st.integers(0, 999))}"
    names = []
    for _ in range(draw(st.integers(1, 4))):
        planted_name = draw(name)
        names.append(planted_name)
        where = draw(st.sampled_from(["field", "field", "field", "unknown_value", "unknown_key", "list", "nested",
                                      "with_surrogate", "team", "la_code"]))
        fields = sorted(event)
        if where == "field":
            event[draw(st.sampled_from(fields))] = planted_name
        elif where == "team":
            event["team"] = planted_name.lower().replace(" ", "_")  # the shape of a team code
            names.append(event["team"])
        elif where == "la_code":
            event["la_code"] = planted_name
        elif where == "unknown_value":
            event[draw(st.sampled_from(["notes", "child_name", "address", "x"]))] = planted_name
        elif where == "unknown_key":
            event[planted_name] = draw(st.sampled_from([True, 1, "yes"]))
        elif where == "list":
            event[draw(st.sampled_from(fields))] = ["1A", planted_name]
        elif where == "nested":
            event[draw(st.sampled_from(fields))] = {"name": planted_name, "more": [planted_name]}
        else:
            event[draw(st.sampled_from(fields))] = planted_name + "\ud800"
    if draw(st.booleans()):
        removable = [f for f in sorted(event) if f != "event_type"]
        if removable:
            event.pop(draw(st.sampled_from(removable)))
    return event, names


def assert_absent(names: list[str], where: str, text: str) -> None:
    low = text.lower()
    for planted_name in names:
        for part in [planted_name, *planted_name.split()]:
            if len(part) >= 6:
                assert part.lower() not in low, f"a planted name reached {where}"


def kafka_text(producer: RecordingProducer) -> str:
    return "\n".join(json.dumps(value, ensure_ascii=False) + json.dumps(value) for _, _, value in producer.records)


def test_no_planted_name_reaches_a_dead_letter_log_answer_or_metric_at_ingest(caplog):
    caplog.set_level(logging.DEBUG)
    s = settings(ingest_max_body_bytes=100_000)
    with client_for(s) as api:
        @hsettings(max_examples=500, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))
        @given(st.lists(planted(), min_size=1, max_size=3), st.booleans())
        def post(cases, as_batch):
            api.producer.records.clear()
            caplog.clear()
            payloads = [c[0] for c in cases]
            names = [n for c in cases for n in c[1]]
            if as_batch:
                r = api.post("/v1/events:batch", content=json.dumps(payloads).encode(), headers=LCS)
            else:
                r = api.post("/v1/events", content=json.dumps(payloads[0]).encode(), headers=LCS)
                names = cases[0][1]
            assert r.status_code < 500
            assert_absent(names, "the HTTP answer", r.text)
            assert_absent(names, "a Kafka record", kafka_text(api.producer))
            assert_absent(names, "a log line", caplog.text)
            assert_absent(names, "/metrics", api.get("/metrics").text)

        post()


def test_no_planted_name_reaches_a_dead_letter_or_the_summary_of_the_bulk_loader(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    counter = iter(range(10**6))

    @hsettings(max_examples=200, deadline=None, database=None, derandomize=True,
               suppress_health_check=list(HealthCheck))
    @given(st.lists(planted(), min_size=1, max_size=5))
    def load(cases):
        caplog.clear()
        path = tmp_path / f"extract-{next(counter)}.jsonl"
        path.write_text("\n".join(json.dumps(payload) for payload, _ in cases) + "\n")
        names = [n for _, ns in cases for n in ns]
        producer = RecordingProducer()
        publisher = EventPublisher(settings(), source_system="loader", source="loader", producer=producer)
        summary = load_files([path], publisher)
        assert summary.read == len(cases)
        assert_absent(names, "a Kafka record", kafka_text(producer))
        assert_absent(names, "the summary", summary.render(False) + "\n".join(summary.rejections))
        assert_absent(names, "a log line", caplog.text)

    load()
