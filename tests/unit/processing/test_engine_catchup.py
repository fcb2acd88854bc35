"""When an engine worker counts as caught up (casewatch/processing/catchup.py). The real-stack
behaviour (a restore, a rebalance, a replay into a running engine) is in
tests/integration/test_engine_consistency.py and test_replay.py."""
from __future__ import annotations

from casewatch.processing.catchup import CatchUp


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def started(max_lag=10, silence=60.0, clock=None) -> CatchUp:
    catch_up = CatchUp(max_lag, silence, clock or Clock())
    catch_up.rebuilt({0, 1})
    return catch_up


def test_not_caught_up_until_the_first_assignment_is_rebuilt():
    catch_up = CatchUp(10, 60.0)
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == ["starting"]
    catch_up.rebuilt({0, 1})
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == []


def test_fausts_flags_and_the_lag_each_hold_it_back():
    catch_up = started(max_lag=10)
    assert catch_up.reasons(rebalancing=True, restoring=False, lag=0) == ["rebalance"]
    assert catch_up.reasons(rebalancing=True, restoring=True, lag=0) == ["rebalance", "restore"]
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=10) == []
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=11) == ["lag"]
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=None) == ["lag"]  # end not known yet


def test_a_rebalance_counts_from_the_revocation_to_the_rebuild():
    catch_up = started()
    catch_up.partitions_revoked({0, 1})
    # Faust's own flag may already be down again while the figures are not yet rebuilt.
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == ["rebalance"]
    catch_up.rebuilt({0})
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == []


def test_a_replay_run_holds_each_partition_until_its_own_end():
    catch_up = started()
    catch_up.replay_record(0, "replay-a")
    catch_up.replay_record(1, "replay-a")
    catch_up.replay_end(0, "replay-a")
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == ["replay"]
    catch_up.replay_end(1, "replay-other")  # another run's end changes nothing
    assert catch_up.replaying_partitions() == {1}
    catch_up.replay_end(1, "replay-a")
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == []
    catch_up.replay_end(1, "replay-a")  # an end seen again (redelivery): still caught up
    assert catch_up.replaying_partitions() == set()


def test_two_runs_at_once_on_one_partition_both_must_end():
    catch_up = started()
    catch_up.replay_record(0, "replay-a")
    catch_up.replay_record(0, "import-b")
    catch_up.replay_end(0, "replay-a")
    assert catch_up.replaying_partitions() == {0}
    catch_up.replay_end(0, "import-b")
    assert catch_up.replaying_partitions() == set()


def test_a_run_that_went_silent_without_its_end_is_taken_as_ended():
    clock = Clock()
    catch_up = started(silence=60.0, clock=clock)
    catch_up.replay_record(0, "replay-a")
    clock.now += 59
    catch_up.replay_record(0, "replay-a")  # still sending
    clock.now += 59
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == ["replay"]
    clock.now += 2
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == []


def test_revoked_partitions_forget_their_replay_runs():
    catch_up = started()
    catch_up.replay_record(1, "replay-a")
    catch_up.partitions_revoked({0, 1})
    catch_up.rebuilt({0})
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == []


def test_a_partition_kept_through_a_rebalance_is_still_inside_its_replay_run():
    # Its replay records before the committed offset are not read again after the rebalance: the
    # run is remembered, and the worker publishes nothing until the run's end.
    catch_up = started()
    catch_up.replay_record(1, "replay-a")
    catch_up.partitions_revoked({0, 1})
    catch_up.rebuilt({0, 1})
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == ["replay"]
    catch_up.replay_end(1, "replay-a")
    assert catch_up.reasons(rebalancing=False, restoring=False, lag=0) == []
