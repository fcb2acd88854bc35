"""The ingest service: the HTTP API case systems post events to (``api``, ``openapi``) and the
``casewatch ingest | load | dlq`` commands (``commands``, ``dlq``). What it stands on is in the
library: the checks and pseudonymisation at casewatch/edge (with the bulk loader), the publisher
and the dead-letter record at casewatch/adapters/kafka. Raw case-system identifiers stop at the
edge; only pseudonyms go on to Kafka."""
