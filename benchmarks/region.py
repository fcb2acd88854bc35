"""A region on one machine (issue 18, item 3): several authorities' two-year histories in one
events topic (the ``casewatch replay`` grouped form), replayed by one and by two workers of one
app id: time, peak RSS per worker (VmHWM), RSS per tracked child, CPU per event and the /metrics
render time for every authority. Each authority's set is generated once and cached on disk."""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from casewatch.stack.loopback import free_port
from event_sets import cached_grouped, event_set, load_cached
from recovery import replay_until_caught_up
from workers import engine_env, get_text, parse_figures, start_worker, stop_all

SEED = 31


def region_codes(authorities: int) -> list[str]:
    return [f"E06{i:06d}" for i in range(1, authorities + 1)]


def region_sets(cache_dir: Path, authorities: int, population: int, years: float) -> tuple[list[Path], dict]:
    """Each authority's cached set (authority i: its own seed); with their summed counts."""
    files, total = [], {"events": 0, "messages": 0, "children": 0, "generate_s": 0.0}
    for i, la in enumerate(region_codes(authorities)):
        name = f"region-{la}-p{population}-y{years:g}-s{SEED + i}"
        path, meta = cached_grouped(cache_dir, name,
                                    lambda la=la, i=i: event_set(population, years, SEED + i, [la]))
        files.append(path)
        for k in total:
            total[k] += meta[k]
    return files, total


def measure_region(bootstrap: str, cache_dir: Path, state: Path, authorities: int, population: int,
                   years: float, partitions: int, workers_list: tuple[int, ...], timeout: float) -> dict:
    files, meta = region_sets(cache_dir, authorities, population, years)
    topic = f"bench-region-{authorities}x{population}-y{years:g}-p{partitions}"
    load_s = load_cached(bootstrap, topic, files, meta["messages"], partitions)
    r: dict = {"region_authorities": authorities, "region_population_per_authority": population,
               "region_years": years, "region_events": meta["events"], "region_children": meta["children"],
               "region_messages": meta["messages"], "region_partitions": partitions}
    if load_s:
        r["region_load_s"] = load_s
    las = ",".join(region_codes(authorities))
    for workers in workers_list:
        app_id = f"bench-region-{workers}w-{uuid.uuid4().hex[:8]}"
        ports = [free_port() for _ in range(workers)]
        urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]
        procs = [start_worker(engine_env(bootstrap, topic, app_id, state, partitions, las,
                                         state_name=f"{app_id}-{i}"), port, state / f"{app_id}-{i}.log")
                 for i, port in enumerate(ports)]
        print(f"(g) region: {authorities} authorities, {meta['events']:,} events, {workers} worker(s) ...",
              file=sys.stderr, flush=True)
        try:
            run = replay_until_caught_up(procs, urls, meta["events"], timeout)
            renders, series = [], set()
            for url in urls:  # the first GET after the replay renders afresh
                body, seconds = get_text(url)
                renders.append(seconds * 1000)
                series.update(parse_figures(body))
        finally:
            stop_all(procs)
        p = f"region_{workers}w_"
        keys = run["keys_tracked"]
        r[p + "replay_s"] = run["replay_s"]
        r[p + "with_startup_s"] = run["with_startup_s"]
        r[p + "events_per_s"] = meta["events"] / run["replay_s"]
        r[p + "cpu_us_per_event"] = run["cpu_us_per_event"]
        r[p + "peak_rss_mb_per_worker"] = [round(x, 1) for x in run["peak_rss_mb"]]
        r[p + "peak_rss_mb_max"] = max(run["peak_rss_mb"])
        r[p + "keys_tracked_per_worker"] = keys
        r[p + "rss_kb_per_child"] = (sum(run["rss_mb"]) - sum(run["rss_base_mb"])) * 1024 / max(1, sum(keys))
        r[p + "peak_rss_kb_per_child"] = sum(run["peak_rss_mb"]) * 1024 / max(1, sum(keys))
        r[p + "metrics_render_ms_per_worker"] = [round(x, 1) for x in renders]
        r[p + "metrics_render_ms_max"] = max(renders)
        r[p + "metrics_series"] = len(series)
        print(f"(g) region, {workers} worker(s): {run['replay_s']:.0f} s, peak RSS "
              f"{max(run['peak_rss_mb']):,.0f} MB/worker, {r[p + 'rss_kb_per_child']:.2f} KB/child, "
              f"/metrics {max(renders):.0f} ms", file=sys.stderr, flush=True)
    return r


def project(r: dict, to_authorities: int = 20) -> dict:
    """Linear projection of a scaled region to ``to_authorities`` (time and memory per child
    scale with the events and children; the process base does not)."""
    k = r["region_authorities"]
    if k >= to_authorities:
        return {}
    f = to_authorities / k
    out = {"region_projected_to_authorities": to_authorities, "region_projected_events": int(r["region_events"] * f)}
    for workers in (1, 2):
        p = f"region_{workers}w_"
        if p + "replay_s" not in r:
            continue
        out[p + "projected_replay_s"] = r[p + "replay_s"] * f
        base = r[p + "peak_rss_mb_max"] - r[p + "rss_kb_per_child"] * max(r[p + "keys_tracked_per_worker"]) / 1024
        out[p + "projected_peak_rss_mb_per_worker"] = (
            base + r[p + "rss_kb_per_child"] * max(r[p + "keys_tracked_per_worker"]) * f / 1024)
    return out
