"""Prometheus: the engine's exposition and the TSDB backfill."""
