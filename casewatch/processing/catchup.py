"""Whether an engine worker is caught up, and why not.

A worker is *catching up* (``casewatch_engine_caught_up 0``) while any of these holds:

* ``starting``: it has not yet been assigned its partitions and rebuilt its figures once;
* ``rebalance``: a consumer-group rebalance is in progress, from the moment its partitions are
  revoked until its figures are rebuilt from the table after the new assignment;
* ``restore``: its table is being restored from the changelog;
* ``lag``: more than ``max_lag`` messages on its partitions are not yet applied (or their end is
  not yet known);
* ``replay``: one of its partitions is inside a replay run (``casewatch/adapters/kafka/replay_marking.py``): from
  the first replay-marked record applied until that partition's replay-end of the run. A run that
  sent neither a record nor its end for ``replay_silence_seconds`` is taken as ended.

No Faust here: ``app.py`` tells it what happens, and asks it on every scrape.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

log = logging.getLogger("casewatch.engine")

REASONS = ("starting", "rebalance", "restore", "lag", "replay")


class CatchUp:
    def __init__(self, max_lag: int, replay_silence_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.max_lag = max_lag
        self.replay_silence_seconds = replay_silence_seconds
        self.clock = clock
        self.started = False        # the first assignment's figures were rebuilt
        self.rebalancing = False    # between a revocation and the rebuild after the next assignment
        # partition -> {run id: when a record of that run was last applied there}
        self._replays: dict[int, dict[str, float]] = {}

    # -- rebalances ------------------------------------------------------------------------------
    def rebalance_started(self) -> None:
        self.rebalancing = True

    def partitions_revoked(self, partitions: Iterable[int]) -> None:
        """A rebalance revoked ``partitions`` (with Faust's eager protocol: every partition). The
        replay runs of those the worker keeps go on (their records before the committed offset
        are not read again); those of partitions not re-assigned are forgotten at ``rebuilt``."""
        self.rebalancing = True

    def rebuilt(self, assigned: Iterable[int]) -> None:
        """The figures of the new assignment were rebuilt from the table."""
        assigned = set(assigned)
        for p in [p for p in self._replays if p not in assigned]:
            del self._replays[p]
        self.started = True
        self.rebalancing = False

    # -- replay runs -----------------------------------------------------------------------------
    def replay_record(self, partition: int, run_id: str) -> None:
        runs = self._replays.get(partition)
        if runs is None:
            runs = self._replays[partition] = {}
            log.info("partition %d: a replay run began; catching up until its end", partition)
        runs[run_id] = self.clock()

    def replay_end(self, partition: int, run_id: str) -> None:
        runs = self._replays.get(partition)
        if runs is None or runs.pop(run_id, None) is None:
            return  # a run this worker never saw a record of on this partition (or already over)
        if not runs:
            del self._replays[partition]
            log.info("partition %d: replay run ended", partition)

    def replaying_partitions(self) -> set[int]:
        """Partitions inside a replay run (runs silent for too long are dropped here)."""
        now = self.clock()
        for p in list(self._replays):
            runs = self._replays[p]
            for run_id in [r for r, seen in runs.items() if now - seen > self.replay_silence_seconds]:
                del runs[run_id]
                log.warning("partition %d: a replay run sent no record and no end for %.0f s; taken as ended",
                            p, self.replay_silence_seconds)
            if not runs:
                del self._replays[p]
        return set(self._replays)

    # -- the answer ------------------------------------------------------------------------------
    def reasons(self, *, rebalancing: bool, restoring: bool, lag: int | None) -> list[str]:
        """Why the worker is not caught up (empty when it is). ``rebalancing`` and ``restoring``
        are Faust's own flags; ``lag`` the unapplied messages on the worker's partitions (None
        while a partition's end is not yet known)."""
        out = []
        if not self.started:
            out.append("starting")
        if self.rebalancing or rebalancing:
            out.append("rebalance")
        if restoring:
            out.append("restore")
        if lag is None or lag > self.max_lag:
            out.append("lag")
        if self._replays and self.replaying_partitions():
            out.append("replay")
        return out
