"""The events, dead-letter and event-sources topics, created with explicit configs. Idempotent: a topic that exists
already is left as it is. The stack manager and the engine call ``ensure_topics(settings)``."""
from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from casewatch.adapters.kafka.security import kafka_python_config
from casewatch.config import Settings

YEAR_MS = 365 * 24 * 3600 * 1000

# Events are the record every figure is rebuilt from: kept without a time limit.
EVENTS_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1",
                       "min.insync.replicas": "1"}
# Dead letters are kept two years, long enough to fix a code list or a source and replay.
DEADLETTER_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(2 * YEAR_MS), "retention.bytes": "-1",
                           "min.insync.replicas": "1"}
# event_id -> source system and event type of every stored event (casewatch/adapters/kafka/event_sources.py):
# compacted, one record per event id, kept as long as the events.
EVENT_SOURCES_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.insync.replicas": "1",
                              "min.compaction.lag.ms": "0", "segment.ms": str(24 * 3600 * 1000)}
LOCAL_REPLICATION = 1


def topic_specs(settings: Settings) -> list[NewTopic]:
    return [
        NewTopic(settings.events_topic, settings.partitions, LOCAL_REPLICATION, topic_configs=dict(EVENTS_TOPIC_CONFIG)),
        # one partition: dead letters are listed and numbered in arrival order
        NewTopic(settings.deadletter_topic, 1, LOCAL_REPLICATION, topic_configs=dict(DEADLETTER_TOPIC_CONFIG)),
        NewTopic(settings.events_sources_topic, settings.partitions, LOCAL_REPLICATION,
                 topic_configs=dict(EVENT_SOURCES_TOPIC_CONFIG)),
    ]


def _admin(settings: Settings, timeout: float) -> KafkaAdminClient:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=10000,
                                    client_id="casewatch-topics", **kafka_python_config(settings))
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the missing topics; returns the names created (empty when all existed)."""
    admin = _admin(settings, timeout)
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for spec in topic_specs(settings):
            if spec.name in existing:
                continue
            try:
                admin.create_topics([spec], timeout_ms=int(timeout * 1000))
                created.append(spec.name)
            except TopicAlreadyExistsError:  # created by someone else meanwhile
                pass
    finally:
        admin.close()
    return created
