"""The documents the meetings read: the Cabinet activity-and-performance pack, the fortnightly
workload-pressures sheet and the regional collation (``casewatch report ...``).

Every figure comes from Prometheus's HTTP API (the same series and recording rules the boards
draw), so a pack and a board can never disagree. See docs/reports.md.
"""
