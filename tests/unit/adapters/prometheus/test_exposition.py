"""The engine's hand-written exposition says exactly what prometheus_client would say for the same
figures, passes `promtool check metrics`, and folds unknown label values into `other`."""
from __future__ import annotations

import subprocess
from datetime import date

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from casewatch.config import Settings
from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.adapters.prometheus.exposition import EngineMetrics
from casewatch.processing.figures import PartitionedFigures

TODAY = date(2026, 3, 31)


def _event(n, event_type, team="assessment_1", la="E06000004", **fields):
    return {"event_id": f"00000000-0000-4000-8000-{n:012d}", "event_type": event_type, "la_code": la,
            "team": team, "child_ref": "ps_" + f"{n:032x}", "schema_version": 1, **fields}


def _figures():
    figures = PartitionedFigures(WorkingDayCalendar(), lambda: TODAY)
    events = [
        _event(1, "referral.received", referral_date="2026-03-02", source="6", effective_date="2026-03-02"),
        _event(2, "referral.received", referral_date="2026-03-03", source="2A", effective_date="2026-03-03"),
        _event(3, "referral.received", team="a-team-nobody-configured", referral_date="2026-03-04",
               source="3A", effective_date="2026-03-04"),
        _event(4, "cp_plan.started", team="cp_1", plan_ref="ps_" + "9" * 32, start_date="2026-01-05",
               initial_category="NEG", effective_date="2026-01-05"),
    ]
    for i, event in enumerate(events):
        figures.apply(i % 3, event["child_ref"], [event], None)
    return figures


def _caught_up(metrics: EngineMetrics) -> EngineMetrics:
    """As after the worker's first assignment was rebuilt (no Faust app here: no lag, no rebalance)."""
    metrics.catch_up.rebuilt({0, 1, 2})
    return metrics


def _parse(text: bytes) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def test_direct_rendering_equals_prometheus_client_rendering():
    metrics = EngineMetrics(_figures(), Settings(la_codes="E06000004"))
    registry = CollectorRegistry()
    registry.register(metrics.collector)
    direct = _parse(metrics.collector.render_text())
    assert direct == _parse(generate_latest(registry))
    # 2 March is 29 days before 31 March: in the 12-month window, outside the 28-day one.
    police = (("la", "E06000004"), ("source_group", "police"), ("team", "assessment_1"))
    assert direct[("casewatch_referrals", police + (("window", "12m"),))] == 1.0
    assert direct[("casewatch_referrals", police + (("window", "28d"),))] == 0.0


def test_unknown_team_is_published_as_other_and_output_passes_promtool():
    metrics = _caught_up(EngineMetrics(_figures(), Settings(la_codes="E06000004")))
    body = metrics.render()
    assert b"a-team-nobody-configured" not in body
    parsed = _parse(body)
    assert parsed[("casewatch_referrals", (("la", "E06000004"), ("source_group", "health"),
                                           ("team", "other"), ("window", "12m")))] == 1.0
    done = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_rendering_is_redone_when_a_figure_changes():
    figures = _figures()
    metrics = _caught_up(EngineMetrics(figures, Settings(la_codes="E06000004")))
    before = _parse(metrics.render())
    event = _event(5, "referral.received", referral_date="2026-03-05", source="6", effective_date="2026-03-05")
    figures.apply(0, event["child_ref"], [event], None)
    after = _parse(metrics.render())
    key = ("casewatch_referrals", (("la", "E06000004"), ("source_group", "police"),
                                   ("team", "assessment_1"), ("window", "28d")))
    assert (before[key], after[key]) == (0.0, 1.0)  # 5 March is inside the 28 days to 31 March


def _indicator_names(parsed: dict) -> set[str]:
    return {name for name, _ in parsed if not name.startswith(("casewatch_engine_", "casewatch_events_",
            "casewatch_consumer_lag", "casewatch_assigned_", "casewatch_children_", "casewatch_newest_",
            "casewatch_calendar_"))}


def test_a_worker_that_is_catching_up_publishes_no_indicator_and_says_why():
    figures = _figures()
    metrics = EngineMetrics(figures, Settings(la_codes="E06000004"))
    starting = _parse(metrics.render())  # never assigned yet
    assert _indicator_names(starting) == set()
    assert starting[("casewatch_engine_caught_up", ())] == 0.0
    assert starting[("casewatch_engine_catching_up", (("reason", "starting"),))] == 1.0
    metrics.catch_up.rebuilt({0, 1, 2})
    caught_up = _parse(metrics.render())
    assert caught_up[("casewatch_engine_caught_up", ())] == 1.0
    assert "casewatch_referrals" in _indicator_names(caught_up)
    # A replay run on partition 1: nothing but self-metrics until its end marker was applied.
    metrics.catch_up.replay_record(1, "replay-1")
    replaying = _parse(metrics.render())
    assert _indicator_names(replaying) == set()
    assert replaying[("casewatch_engine_catching_up", (("reason", "replay"),))] == 1.0
    assert metrics.health()["catching_up"] == ["replay"] and metrics.health()["replaying_partitions"] == [1]
    metrics.catch_up.replay_end(1, "replay-1")
    assert _parse(metrics.render()) == caught_up
    # A rebalance: from the revocation on.
    metrics.catch_up.partitions_revoked({0, 1, 2})
    assert _indicator_names(_parse(metrics.render())) == set()
    assert metrics.health()["catching_up"] == ["rebalance"]


def test_the_engines_today_is_midnight_in_london():
    metrics = EngineMetrics(_figures(), Settings(la_codes="E06000004"))
    parsed = _parse(metrics.render())
    # 31 March 2026 is in British Summer Time: 00:00 BST is 23:00 UTC on 30 March.
    assert parsed[("casewatch_engine_today_timestamp_seconds", ())] == 1774911600.0
    assert metrics.health()["today"] == "2026-03-31"


class _Worker:
    """What the engine binds (casewatch.adapters.faust.changelog.WorkerState), without Faust."""

    def __init__(self, positions, rebalancing=False, restoring=False):
        self._positions, self.rebalancing, self.restoring = positions, rebalancing, restoring

    def positions(self):
        return self._positions


def test_lag_is_the_high_watermark_less_the_next_offset_from_applied_or_committed():
    metrics = _caught_up(EngineMetrics(_figures(), Settings(la_codes="E06000004", engine_caught_up_max_lag=500)))
    # partition 0: applied up to offset 59 (next 60), committed 40; partition 1: nothing applied, committed 70.
    metrics.bind(_Worker({0: (100, 40), 1: (75, 70), 2: (None, 0)}))
    metrics.applied_offsets({0: 59})
    assert metrics.positions() == {0: (100, 60), 1: (75, 70), 2: (None, 0)}
    assert metrics.refresh_lag() is None  # an end still unknown: the lag is unknown, not 0
    metrics.bind(_Worker({0: (100, 40), 1: (75, 70)}))
    assert metrics.refresh_lag() == 40 + 5
    assert metrics.health()["applied_offsets"] == {"0": 60, "1": 70}
    assert metrics.catching_up_reasons() == []
    metrics.bind(_Worker({0: (1000, 40)}))
    assert metrics.catching_up_reasons() == ["lag"]  # 940 > 500


def test_the_workers_rebalance_and_restore_flags_hold_figures_back():
    metrics = _caught_up(EngineMetrics(_figures(), Settings(la_codes="E06000004")))
    metrics.bind(_Worker({}, rebalancing=True))
    assert metrics.catching_up_reasons() == ["rebalance"]
    assert _indicator_names(_parse(metrics.render())) == set()
    metrics.bind(_Worker({}, restoring=True))
    assert metrics.catching_up_reasons() == ["restore"]
    metrics.bind(_Worker({}))
    assert "casewatch_referrals" in _indicator_names(_parse(metrics.render()))
    metrics.set_assigned({0, 1, 2})
    assert metrics.health()["assigned_partitions"] == 3
