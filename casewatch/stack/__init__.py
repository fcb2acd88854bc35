"""The local stack manager: Kafka, Prometheus, Alertmanager and the casewatch services, no Docker."""
