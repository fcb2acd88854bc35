"""Kafka: client security, topics, the publisher, dead letters, replay marking."""
