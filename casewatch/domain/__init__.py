"""The pure-Python domain core of casewatch: the England working-day calendar, statutory clocks,
a child's de-duplicated and corrected event history, the indicators each child contributes, and
the aggregate a worker sums them into.

Nothing here imports Kafka, Faust or Prometheus: the engine service wires these to the stream and
the exporter. See docs/metrics.md for the figures and docs/definitions.md for the definitions.
"""
