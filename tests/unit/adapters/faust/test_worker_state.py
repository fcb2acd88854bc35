"""WorkerState: the one reader of Faust's consumer for the exposition (flags and positions)."""
from __future__ import annotations

from collections import namedtuple

from casewatch.adapters.faust.changelog import WorkerState

TP = namedtuple("TP", "topic partition")


class _Consumer:
    def __init__(self):
        self._committed_offset = {TP("events", 0): 41}

    def assignment(self):
        return {TP("events", 0), TP("events", 1), TP("case_histories-changelog", 0)}

    def highwater(self, tp):
        return {0: 100, 1: None}[tp.partition]


class _App:
    rebalancing, in_recovery = True, False
    consumer = _Consumer()


class _NotStarted:
    rebalancing = in_recovery = False

    @property
    def consumer(self):
        raise RuntimeError("no consumer before the app starts")


def test_positions_of_the_events_topic_only_with_high_watermark_and_committed_offset():
    state = WorkerState(_App(), "events")
    assert state.positions() == {0: (100, 41), 1: (None, 0)}
    assert state.rebalancing is True and state.restoring is False


def test_nothing_is_assigned_before_the_app_starts():
    assert WorkerState(_NotStarted(), "events").positions() == {}
