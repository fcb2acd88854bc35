"""Feeds councils already produce, turned into casewatch events (docs/feeds.md).

* ``cin_census``       — CIN census XML (2023-24 to 2025-26 schemas), streamed with lxml iterparse.
* ``ssda903``          — SSDA903 returns (header, episodes, reviews, OC3), several years stitched
                         into one history by the rules in ``episode_stitching``.
* ``dfe_api``          — the DfE children's social care data API (full child snapshots), turned into
                         events by comparing each snapshot with the last one seen (``snapshot_state``).

Every feed yields events in the wire format of docs/events.md with raw case-system identifiers in
the identifier fields (the edge pseudonymiser replaces them before Kafka) and dead letters for what
cannot be mapped. ``envelope`` holds what they share: deterministic event ids, the LA code, the
dead-letter records.
"""
