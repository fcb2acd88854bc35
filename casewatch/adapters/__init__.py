"""Adapters to the technologies casewatch runs on (Kafka, Faust, Prometheus, SQLite)."""
