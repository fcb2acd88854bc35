"""The Kafka topics casewatch owns, created with explicit configs (idempotent)."""
from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from casewatch.config import Settings

# Events are the system of record for every figure: keep them (no time limit) so a worker can be
# rebuilt by replaying. Dead letters are kept a year so a fix can be replayed.
EVENTS_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "min.insync.replicas": "1"}
DEADLETTER_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(365 * 24 * 3600 * 1000),
                     "min.insync.replicas": "1"}


def topic_specs(settings: Settings) -> list[NewTopic]:
    return [
        NewTopic(settings.events_topic, settings.partitions, 1, topic_configs=EVENTS_CONFIG),
        NewTopic(settings.deadletter_topic, 1, 1, topic_configs=DEADLETTER_CONFIG),
    ]


def ensure_topics(settings: Settings, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=10000)
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topic_specs(settings) if t.name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
