"""One dead-letter record (services/ingest/dead_letters.DeadLetterRecord): the ingest publisher
and the feeds' mapping rejections write it, ``casewatch dlq`` reads it back, with one encoder and
one decoder. The expected JSON objects are written out here by hand."""
from __future__ import annotations

import json

from casewatch.config import Settings
from services.feeds.envelope import DeadLetter
from casewatch.adapters.kafka.dead_letters import DeadLetterRecord, StoredDeadLetter
from casewatch.adapters.kafka.publisher import EventPublisher

KEY = "dead-letter-record-test-key-0123456789"
WHEN = "2026-12-01T09:00:00.000+00:00"


class Producer:
    def __init__(self):
        self.records = []

    def send(self, topic, key=None, value=None):
        self.records.append((topic, key, value))


def test_the_publisher_writes_the_record_the_reader_decodes():
    publisher = EventPublisher(Settings(pseudonymisation_key=KEY), source_system="mosaic", source="ingest")
    publisher._producer = Producer()
    errors = [{"loc": "team", "msg": "not a configured team", "type": "team"}]
    publisher.dead_letter({"event_type": "contact.received"}, errors, "validation")
    topic, key, value = publisher._producer.records[0]
    assert topic == Settings().deadletter_topic and key is None
    written = json.loads(value)
    assert set(written) == {"payload", "errors", "source", "received_at", "stage"}
    assert (written["payload"], written["errors"], written["source"], written["stage"]) == (
        {"event_type": "contact.received"}, errors, "ingest", "validation")
    record = DeadLetterRecord.decode(value)
    assert record.encode() == value
    assert StoredDeadLetter(0, 7, record).value == written


def test_a_feed_mapping_rejection_is_the_same_record():
    rejection = DeadLetter("unknown_code", "CINdetails.PrimaryNeedCode", {"event_type": "referral.received"},
                           also=[("invalid_date", "CINdetails.CINreferralDate")])
    record = rejection.record("cin_census", WHEN)
    assert isinstance(record, DeadLetterRecord)
    assert rejection.to_record("cin_census", WHEN) == {
        "payload": {"event_type": "referral.received"},
        "errors": [{"loc": "CINdetails.PrimaryNeedCode", "msg": "not a code of the list for this collection year",
                    "type": "unknown_code"},
                   {"loc": "CINdetails.CINreferralDate", "msg": "not a valid date", "type": "invalid_date"}],
        "source": "cin_census", "received_at": WHEN, "stage": "map"}
    assert DeadLetterRecord.decode(record.encode()) == record


def test_bytes_that_are_no_record_decode_to_a_record_saying_so():
    for raw in (b"\xff\xfe", b"[1, 2]", b"not json"):
        record = DeadLetterRecord.decode(raw)
        assert record.payload is None
        assert [e["type"] for e in record.errors] in (["undecodable"], [])
    assert DeadLetterRecord.decode(b"\xff").errors == [{"loc": "", "msg": "unreadable dead letter", "type": "undecodable"}]
