"""The Kafka topics casewatch owns. One definition, kept with the ingest edge that writes them;
re-exported here for the stack manager, the engine's tests and the tools."""
from services.ingest.topics import ensure_topics, topic_specs

__all__ = ["ensure_topics", "topic_specs"]
