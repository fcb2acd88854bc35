"""The ingest edge: pseudonymisation, the Kafka publisher, the HTTP API, the bulk loader and the
dead-letter tools. Raw case-system identifiers stop here; only pseudonyms go on to Kafka."""
