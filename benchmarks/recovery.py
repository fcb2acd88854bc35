"""Recovery of a large authority's state (issue 18, item 1), for one table store.

1. The uninterrupted run: one worker replays the whole set (the ``casewatch replay`` grouped form)
   until it has applied every event and is caught up; its /metrics figures are the reference.
2. ``kill -9`` of that, the only, worker; a new worker of the same app id starts at once on the
   same local directory (as systemd's Restart= would). Measured: from the kill until its figures
   equal the reference, with the phases on the way (process answering, partitions assigned, caught
   up) read from /healthz.
3. A partition move: a second worker of the same app id (its own local directory, as on a second
   machine) starts; measured until both hold partitions and the union of their figures (summed, the
   maximum for the *_max_* series, as the boards do) equals the reference again, and how long the
   union was not the reference ("stale": what a board showed wrong, or not at all).
4. ``kill -9`` of that second worker: measured until the first, alone again, serves the reference.
"""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from casewatch.stack.loopback import free_port
from workers import (combined, cpu_seconds, differences, dir_bytes, engine_env, get_text, health, kill_hard,
                     memory_mb, parse_figures, start_worker, stop_all)

POLL = 0.25


def replay_until_caught_up(procs, urls: list[str], n_events: int, timeout: float) -> dict:
    """Poll until the workers have applied ``n_events`` and every one is caught up: the seconds
    from start to the first applied event and to done, CPU per event and memory."""
    t_start = time.perf_counter()
    pids = [p.pid for p, _ in procs]
    first = cpu0 = None
    base_rss: list[float] = []
    deadline = time.monotonic() + timeout
    while True:
        if any(p.poll() is not None for p, _ in procs):
            raise RuntimeError("a measured engine exited early")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the engine(s) did not apply {n_events} events in {timeout:.0f} s")
        try:
            hs = [health(url) for url in urls]
        except OSError:
            time.sleep(POLL)
            continue
        done = sum(h["events_processed"] for h in hs)
        now = time.perf_counter()
        if not done:  # the start is the last poll that saw nothing applied (a small set may be
            # applied whole between two polls)
            first, cpu0 = now, cpu_seconds(pids)
            base_rss = [memory_mb(pid).get("rss", 0.0) for pid in pids]
        elif first is None:  # (applying already at the first answer)
            first, cpu0 = now, cpu_seconds(pids)
            base_rss = [memory_mb(pid).get("rss", 0.0) for pid in pids]
        if done >= n_events and all(h["caught_up"] for h in hs):
            cpu = cpu_seconds(pids) - (cpu0 or 0.0)
            mems = [memory_mb(pid) for pid in pids]
            return {"startup_s": first - t_start, "replay_s": max(now - first, POLL),
                    "with_startup_s": now - t_start, "cpu_us_per_event": cpu / n_events * 1e6,
                    "rss_base_mb": base_rss, "rss_mb": [m.get("rss", 0.0) for m in mems],
                    "peak_rss_mb": [m.get("hwm", 0.0) for m in mems],
                    "keys_tracked": [h["keys_tracked"] for h in hs],
                    "assigned": [h["assigned_partitions"] for h in hs]}
        time.sleep(POLL)


def until_reference(procs, urls: list[str], reference: dict, t0: float, partitions: int, timeout: float) -> dict:
    """Poll every worker until all hold partitions, all are caught up and the union of their
    figures equals ``reference``; seconds from ``t0`` to each phase."""
    n = len(urls)
    up: list[float | None] = [None] * n
    assigned: list[float | None] = [None] * n
    caught: list[float | None] = [None] * n
    first_unequal = all_assigned = None
    reasons_seen: set[str] = set()
    spans: list[dict[str, list[float]]] = [{} for _ in urls]  # per worker: reason -> [first, last seen]
    deadline = time.monotonic() + timeout
    while True:
        if any(p.poll() is not None for p, _ in procs):
            raise RuntimeError("a measured engine exited early")
        if time.monotonic() > deadline:
            raise RuntimeError("the figures did not come back to the reference in time")
        now = time.perf_counter() - t0
        hs: list[dict | None] = []
        for i, url in enumerate(urls):
            try:
                h = health(url)
            except OSError:
                h = None
            hs.append(h)
            if h is None:
                continue
            up[i] = up[i] if up[i] is not None else now
            reasons_seen.update(h["catching_up"])
            for reason in h["catching_up"]:
                spans[i].setdefault(reason, [now, now])[1] = now
            if h["assigned_partitions"] > 0 and assigned[i] is None:
                assigned[i] = now
            if h["caught_up"] and assigned[i] is not None and caught[i] is None:
                caught[i] = now
        if (all_assigned is None and all(h is not None and h["assigned_partitions"] > 0 for h in hs)
                and sum(h["assigned_partitions"] for h in hs) == partitions):
            all_assigned = now  # every worker holds partitions and together all of them
        parts = []
        for h, url in zip(hs, urls):
            if h is not None and h["caught_up"]:
                try:
                    parts.append(parse_figures(get_text(url)[0]))
                except OSError:
                    pass
        diff = differences(combined(parts), reference)
        if diff and first_unequal is None:
            first_unequal = now
        holding = all(h is not None and h["assigned_partitions"] > 0 for h in hs)
        if (not diff and holding and all(h["caught_up"] for h in hs)
                and sum(h["assigned_partitions"] for h in hs) == partitions):
            return {"equal_s": now, "up_s": up, "assigned_s": assigned, "caught_up_s": caught,
                    "all_assigned_s": all_assigned,
                    "reason_spans": [{k: [round(a, 1), round(b, 1)] for k, (a, b) in sp.items()} for sp in spans],
                    "stale_s": 0.0 if first_unequal is None else now - first_unequal,
                    "catching_up_reasons_seen": sorted(reasons_seen)}
        time.sleep(POLL)


def measure_recovery(bootstrap: str, topic: str, n_events: int, children: int, state: Path, partitions: int,
                     store: str, timeout: float, la_codes: str = "E06000004",
                     session_timeout: float | None = None) -> tuple[dict, dict]:
    """The figures of the four steps for ``store`` (keys ``recovery_<store>_*``) and the reference.
    ``session_timeout``: Faust's broker_session_timeout for every worker (its BROKER_SESSION_TIMEOUT
    variable, which wins over the engine's Settings.engine_session_timeout), keys
    ``recovery_<store>_session<S>s_*``; without it, the engine's own."""
    app_id = f"bench-recovery-{store}-{uuid.uuid4().hex[:8]}"
    env_a = engine_env(bootstrap, topic, app_id, state, partitions, la_codes, store, state_name=f"{app_id}-a")
    env_b = engine_env(bootstrap, topic, app_id, state, partitions, la_codes, store, state_name=f"{app_id}-b")
    p = f"recovery_{store}_"
    if session_timeout is not None:
        for env in (env_a, env_b):
            env["BROKER_SESSION_TIMEOUT"] = str(session_timeout)
        p += f"session{session_timeout:g}s_"
    r: dict = {}
    procs = []
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}/metrics"
        procs.append(start_worker(env_a, port, state / f"{app_id}-a.log"))
        print(f"(r) {store}: one worker replays {n_events:,} events ...", file=sys.stderr, flush=True)
        run = replay_until_caught_up(procs, [url], n_events, timeout)
        body, render_s = get_text(url)
        reference = parse_figures(body)
        r[p + "replay_s"] = run["replay_s"]
        r[p + "replay_events_per_s"] = n_events / run["replay_s"]
        r[p + "replay_cpu_us_per_event"] = run["cpu_us_per_event"]
        r[p + "keys_tracked"] = run["keys_tracked"][0]
        r[p + "peak_rss_mb"] = run["peak_rss_mb"][0]
        r[p + "rss_mb"] = run["rss_mb"][0]
        r[p + "rss_kb_per_child"] = (run["rss_mb"][0] - run["rss_base_mb"][0]) * 1024 / max(1, run["keys_tracked"][0])
        r[p + "reference_series"] = len(reference)
        r[p + "metrics_render_ms"] = render_s * 1000
        print(f"(r) {store}: replayed in {run['replay_s']:.1f} s, {len(reference):,} series; kill -9",
              file=sys.stderr, flush=True)

        # 2. kill -9 of the only worker; a new one starts at once on the same directory
        proc, log = procs.pop()
        t0 = time.perf_counter()
        kill_hard(proc)
        log.close()
        r[p + "local_state_mb"] = dir_bytes(state / f"{app_id}-a") / 1e6
        # the same --metrics-port: the worker's local directory is per port (worker_datadir)
        port2 = port
        url2 = url
        procs.append(start_worker(env_a, port2, state / f"{app_id}-a2.log"))
        back = until_reference(procs, [url2], reference, t0, partitions, timeout)
        r[p + "kill9_restart_s"] = back["equal_s"]
        r[p + "kill9_process_up_s"] = back["up_s"][0]
        r[p + "kill9_assigned_s"] = back["assigned_s"][0]
        r[p + "kill9_caught_up_s"] = back["caught_up_s"][0]
        r[p + "kill9_s_per_million_events"] = back["equal_s"] / (n_events / 1e6)
        r[p + "kill9_reasons_seen"] = back["catching_up_reasons_seen"]
        # when each catching-up reason was first and last seen (s from the kill): the group's wait
        # for the dead member ("rebalance"), the table's restore ("restore"), the rebuild
        r[p + "kill9_reason_spans"] = back["reason_spans"][0]
        print(f"(r) {store}: kill -9 -> reference figures in {back['equal_s']:.1f} s "
              f"(up {back['up_s'][0]:.1f}, assigned {back['assigned_s'][0]:.1f}, "
              f"caught up {back['caught_up_s'][0]:.1f}); a second worker joins",
              file=sys.stderr, flush=True)

        # 3. a second worker takes over some partitions
        port3 = free_port()
        url3 = f"http://127.0.0.1:{port3}/metrics"
        t0 = time.perf_counter()
        procs.append(start_worker(env_b, port3, state / f"{app_id}-b.log"))
        moved = until_reference(procs, [url2, url3], reference, t0, partitions, timeout)
        r[p + "move_s"] = moved["equal_s"]
        r[p + "move_stale_s"] = moved["stale_s"]
        r[p + "move_second_assigned_s"] = moved["assigned_s"][1]
        r[p + "move_partitions_moved"] = health(url3)["assigned_partitions"]
        r[p + "move_reason_spans"] = moved["reason_spans"]  # [first worker, second]
        print(f"(r) {store}: partition move -> reference figures {moved['equal_s']:.1f} s after the second "
              f"worker started (stale for {moved['stale_s']:.1f} s); kill -9 of the second worker",
              file=sys.stderr, flush=True)

        # 4. kill -9 of one of two workers: the other takes its partitions back
        proc, log = procs.pop()
        t0 = time.perf_counter()
        kill_hard(proc)
        log.close()
        back = until_reference(procs, [url2], reference, t0, partitions, timeout)
        r[p + "kill9_one_of_two_s"] = back["equal_s"]
        r[p + "kill9_one_of_two_assigned_s"] = back["all_assigned_s"]
        r[p + "kill9_one_of_two_reason_spans"] = back["reason_spans"][0]
        print(f"(r) {store}: kill -9 of one of two workers -> reference figures in {back['equal_s']:.1f} s",
              file=sys.stderr, flush=True)
        r[p + "events"] = n_events
        r[p + "children"] = children
        return r, reference
    finally:
        stop_all(procs)
