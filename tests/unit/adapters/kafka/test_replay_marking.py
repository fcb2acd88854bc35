"""Replay marking (casewatch/adapters/kafka/replay_marking.py): the header every replayed record carries and the
replay-end control record sent to every partition. The producer here records what it is asked to
send (kafka-python's ``send`` signature); tests/integration/test_replay.py reads the headers back
from a real Kafka."""
from __future__ import annotations

import pytest

from casewatch.adapters.kafka.replay_marking import (CONTROL_HEADER, CONTROL_KEY, REPLAY_END, REPLAY_HEADER, is_control,
                                                     mark_producer, new_run_id, replay_marking, replay_run, send_replay_end,
                                                     unmark_producer)


class Acknowledged:
    def get(self, timeout=None):
        return None


class RecordingProducer:
    """Keeps every record it is asked to send, as kafka-python's KafkaProducer would send it."""

    def __init__(self, partitions=(0, 1, 2)):
        self.sent: list[dict] = []
        self.flushes = 0
        self._partitions = set(partitions)

    def send(self, topic, value=None, key=None, headers=None, partition=None, timestamp_ms=None):
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers, "partition": partition})
        return Acknowledged()

    def flush(self, timeout=None):
        self.flushes += 1

    def partitions_for(self, topic):
        return self._partitions


def test_a_run_id_is_ascii_and_names_its_kind():
    run = new_run_id("import")
    assert run.startswith("import-") and run.isascii() and len(run) < 60
    assert new_run_id() != new_run_id()
    with pytest.raises(ValueError):
        new_run_id("import; drop")


def test_a_marked_producer_adds_the_header_only_to_the_events_topic_and_keeps_callers_headers():
    producer = RecordingProducer()
    mark_producer(producer, "replay-1", topic="events")
    producer.send("events", value=b"{}", key=b"ps_1")
    producer.send("events", value=b"{}", key=b"ps_2", headers=[("trace", b"x")])
    producer.send("deadletters", value=b"{}")
    unmark_producer(producer)
    producer.send("events", value=b"{}", key=b"ps_3")
    headers = [r["headers"] for r in producer.sent]
    assert headers == [[(REPLAY_HEADER, b"replay-1")], [("trace", b"x"), (REPLAY_HEADER, b"replay-1")], None, None]


def test_replay_end_goes_to_every_partition_after_the_runs_records_without_a_second_run_header():
    producer = RecordingProducer(partitions=(0, 1, 2, 3, 4, 5))
    with replay_run(producer, "events", run_id="replay-7") as run:
        assert run == "replay-7"
        producer.send("events", value=b"[]", key=b"ps_1")
    ends = producer.sent[1:]
    assert sorted(r["partition"] for r in ends) == [0, 1, 2, 3, 4, 5]
    for record in ends:
        assert record["key"] == CONTROL_KEY and record["value"] == b"" and record["topic"] == "events"
        assert sorted(record["headers"]) == sorted([(CONTROL_HEADER, REPLAY_END), (REPLAY_HEADER, b"replay-7")])
    assert producer.sent[0]["headers"] == [(REPLAY_HEADER, b"replay-7")]
    assert producer.flushes >= 1
    producer.send("events", value=b"{}")  # the block unmarked the producer
    assert producer.sent[-1]["headers"] is None


def test_a_failed_run_still_sends_its_end():
    producer = RecordingProducer(partitions=(0, 1))
    with pytest.raises(RuntimeError):
        with replay_run(producer, "events", run_id="replay-8"):
            raise RuntimeError("the file could not be read")
    assert [r["partition"] for r in producer.sent] == [0, 1]


def test_send_replay_end_refuses_a_topic_without_partitions():
    with pytest.raises(ValueError):
        send_replay_end(RecordingProducer(partitions=()), "events", "replay-9")


def test_reading_the_headers_back():
    assert replay_marking(()) == (None, False)
    assert replay_marking(((REPLAY_HEADER, b"replay-1"),)) == ("replay-1", False)
    assert replay_marking([(CONTROL_HEADER, REPLAY_END), (REPLAY_HEADER, b"replay-1")]) == ("replay-1", True)
    assert replay_marking({REPLAY_HEADER: b"r", CONTROL_HEADER: b"replay-end"}) == ("r", True)
    assert is_control([(CONTROL_HEADER, b"something-else")]) and not is_control([(REPLAY_HEADER, b"r")])
    assert not is_control(None)
