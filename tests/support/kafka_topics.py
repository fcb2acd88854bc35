"""Reading a whole topic back, for tests that check what reached Kafka."""
from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from casewatch.config import Settings


def read_records(bootstrap: str, topic: str) -> list:
    """Every record of ``topic`` from the beginning to its current end (kafka-python
    ConsumerRecords: key, value, headers, partition, offset)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=10000, receive_message_max_bytes=64 * 1024 * 1024)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            batch = consumer.poll(timeout_ms=5000, max_records=5000)
            assert batch, "the topic stopped short of its end offsets"
            for messages in batch.values():
                out.extend(messages)
        return out
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic`` (partition -> offset), without reading it."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every record (key, value) of ``topic`` from the beginning to its current end."""
    return [(m.key, m.value) for m in read_records(settings.bootstrap, topic)]
