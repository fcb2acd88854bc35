"""The engine on the real stack: a worker killed with kill -9 halfway through a ~90,000-event load
and restarted on its changelog publishes no indicator while it restores, then ends with exactly the
figures of an uninterrupted run; two workers sharing the partitions give the same figures as one;
the live /metrics passes `promtool check metrics`, uses only allowed label names and never a
pseudonymised reference as a label value.

Every wait is the barrier of ``tests/support/engine_runs.py`` (every partition assigned, each one
applied up to the end offset read here from Kafka, every worker caught up), never "the figures
stopped changing". The kill -9 and two-worker tests run beside a CPU hog (a busy loop on one of
the machine's cores), as on a loaded CI machine.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from casewatch.adapters.kafka.topics import ensure_topics
from prometheus_client.parser import text_string_to_metric_families

from tests.support.engine_runs import cpu_hog, demo_events, health, indicator_names, publish, scrape, wait_until_caught_up

pytestmark = pytest.mark.integration

FIXED_TODAY = "2026-11-02"
ALLOWED_LABELS = {"la", "team", "window", "source_group", "factor_family", "category",
                  "legal_status_group", "outcome_group", "end_route", "meeting", "attended",
                  "case_type", "age_band", "process", "measure", "event_type", "reason", "stage",
                  "partition"}


@pytest.fixture
def loaded_machine():
    """A bounded busy loop on one core for the whole test."""
    with cpu_hog(seconds=1200) as hog:
        yield hog
    assert hog.returncode is not None


class Watch:
    """Polls workers' /healthz and /metrics in the background, keeping what each scrape showed:
    (worker, reasons it was catching up, its caught-up gauge, its indicator names, partitions whose
    figures it held)."""

    def __init__(self, urls: list[str]):
        self.urls = urls
        self.samples: list[tuple[int, tuple[str, ...], float | None, frozenset[str], int]] = []
        self.rounds: list[list[int]] = []  # per poll round: partitions with figures, per worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)

    def _run(self):
        while not self._stop.is_set():
            held = []
            for n, url in enumerate(self.urls):
                try:
                    h = health(url)
                    scraped = scrape(url)
                except OSError:
                    held.append(0)
                    continue
                gauge = scraped.get(("casewatch_engine_caught_up", ()))
                self.samples.append((n, tuple(h["catching_up"]), gauge, frozenset(indicator_names(scraped)),
                                     h["partitions"]))
                held.append(h["partitions"])
            self.rounds.append(held)
            time.sleep(0.05)

    def assert_no_indicator_while_catching_up(self):
        catching_up = [s for s in self.samples if s[2] != 1.0]
        published = [s for s in catching_up if s[3]]
        assert not published, f"indicators published while catching up: {published[:3]}"
        return catching_up


@pytest.fixture(scope="module")
def uninterrupted(local_stack):
    """One worker, one uninterrupted run over the whole event set: the reference figures."""
    settings = local_stack.settings_for(fixed_today=FIXED_TODAY)
    ensure_topics(settings)
    events = demo_events()
    publish(settings.bootstrap, settings.events_topic, events)
    local_stack.start_engine(settings)
    url = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
    try:
        result = wait_until_caught_up([url], settings.bootstrap, settings.events_topic)
        text = urllib.request.urlopen(url, timeout=30).read().decode()
        today = health(url)["today"]
    finally:
        local_stack.stop("engine")
    return {"figures": result, "metrics_text": text, "events": len(events), "today": today}


def test_the_reference_run_counts_every_referral(uninterrupted):
    referrals_12m = sum(v for (name, labels), v in uninterrupted["figures"].items()
                        if name == "casewatch_referrals" and ("window", "12m") in labels)
    expected = sum(1 for e in demo_events() if e["event_type"] == "referral.received"
                   and "2025-11-03" <= e["referral_date"] <= FIXED_TODAY)
    assert expected > 1000
    assert referrals_12m == expected


def test_the_engine_says_which_day_is_its_today(uninterrupted):
    assert uninterrupted["today"] == FIXED_TODAY
    samples = {s.name: s.value for f in text_string_to_metric_families(uninterrupted["metrics_text"])
               for s in f.samples if not s.labels}
    # 2 November 2026 is in GMT: 00:00 in London is 00:00 UTC, 1,793,577,600 s after the epoch.
    assert samples["casewatch_engine_today_timestamp_seconds"] == 1793577600.0
    assert samples["casewatch_engine_caught_up"] == 1.0


def test_kill_9_halfway_then_restart_restores_unpublished_and_gives_the_uninterrupted_figures(
        local_stack, uninterrupted, loaded_machine):
    settings = local_stack.settings_for(fixed_today=FIXED_TODAY)
    ensure_topics(settings)
    events = demo_events()
    half = len(events) // 2
    url = f"http://{settings.host}:{settings.engine_metrics_port}/metrics"
    publish(settings.bootstrap, settings.events_topic, events[:half])
    local_stack.start_engine(settings)
    try:
        # Kill the worker while it is still working through the first half.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            processed = sum(v for (n, _), v in scrape(url).items()
                            if n == "casewatch_events_processed_total")
            if processed >= half // 3:
                break
            time.sleep(0.2)
        assert processed < half, "the worker finished before it could be interrupted"
        local_stack.stop("engine", kill=True)
        publish(settings.bootstrap, settings.events_topic, events[half:])
        with Watch([url]) as watch:  # watching from before the restarted worker answers
            local_stack.start_engine(settings)
            after_restart = wait_until_caught_up([url], settings.bootstrap, settings.events_topic)
    finally:
        local_stack.stop("engine")
    catching_up = watch.assert_no_indicator_while_catching_up()
    reasons = {r for s in catching_up for r in s[1]}
    print("reasons seen while catching up:", sorted({s[1] for s in catching_up}))
    # The restarted worker was seen restoring its table from the changelog, publishing nothing then.
    assert "restore" in reasons, reasons
    assert after_restart == uninterrupted["figures"]


def test_two_workers_give_the_figures_of_one(local_stack, uninterrupted, loaded_machine):
    settings = local_stack.settings_for(fixed_today=FIXED_TODAY)
    ensure_topics(settings)
    publish(settings.bootstrap, settings.events_topic, demo_events())
    port2 = settings.engine_metrics_port + 1
    urls = [f"http://{settings.host}:{settings.engine_metrics_port}/metrics",
            f"http://{settings.host}:{port2}/metrics"]
    local_stack.start_engine(settings, name="engine")
    try:
        with Watch(urls) as watch:
            local_stack.start_engine(settings, name="engine-2", metrics_port=port2)
            together = wait_until_caught_up(urls, settings.bootstrap, settings.events_topic)
            assert all(health(u)["assigned_partitions"] > 0 for u in urls), "one worker got no partition"
            assert together == uninterrupted["figures"]
            # After a rebalance (one worker leaves) the survivor owns everything, with no stale series.
            local_stack.stop("engine-2")
            alone = wait_until_caught_up(urls[:1], settings.bootstrap, settings.events_topic)
            assert alone == uninterrupted["figures"]
    finally:
        local_stack.stop("engine-2")
        local_stack.stop("engine")
    watch.assert_no_indicator_while_catching_up()
    assert any(s[1] == ("rebalance",) or "rebalance" in s[1] for s in watch.samples if s[0] == 0), \
        "the first worker was never seen in a rebalance"
    # A partition's figures are held by one worker at a time: revoked ones are dropped at once.
    assert max(sum(r) for r in watch.rounds) <= settings.partitions


def test_live_metrics_pass_promtool_and_carry_only_allowed_labels(uninterrupted, tmp_path):
    text = uninterrupted["metrics_text"]
    assert shutil.which("promtool")
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    label_names = set(re.findall(r'[{,]([a-zA-Z_][a-zA-Z0-9_]*)="', text))
    assert label_names <= ALLOWED_LABELS, label_names - ALLOWED_LABELS
    values = re.findall(r'="([^"]*)"', text)
    assert values, "no labelled series"
    assert not [v for v in values if re.fullmatch(r"ps_[0-9a-f]{32}", v)]
    assert not [v for v in values if re.search(r"[0-9a-f]{16,}", v)]
