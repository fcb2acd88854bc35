"""Where a tracked child's memory goes in a worker (issue 18, item 3): one seeded authority's
stored histories rebuilt into the engine's figures (``PartitionedFigures.rebuild``, in this process,
under tracemalloc), then each part of the keys' state dropped in turn. The table's own value (the
JSON bytes a memory store keeps) is estimated from its length."""
from __future__ import annotations

import gc
import json
import tracemalloc
import zlib
from datetime import date

from casewatch.bootstrap import make_calendar
from casewatch.config import Settings
from casewatch.domain.events import event_partition_key
from casewatch.domain.history import compact
from casewatch.processing.figures import PartitionedFigures
from casewatch.processing.store import decode_history, encode_history
from event_sets import event_set

PARTITIONS = 6


def child_memory(population: int, seed: int = 23) -> dict:
    by_partition: dict[int, dict[str, list]] = {}
    for e in event_set(population, 2.0, seed, ["E06000004"]):
        key = event_partition_key(e)
        by_partition.setdefault(zlib.crc32(key.encode()) % PARTITIONS, {}).setdefault(key, []).append(compact(e))
    stored = {p: {k: encode_history(p, v) for k, v in keys.items()} for p, keys in by_partition.items()}
    del by_partition
    gc.collect()
    keys = sum(len(d) for d in stored.values())
    # bytes of the value and the key, plus CPython's bytes-object header, each
    table = sum(len(v) + len(k) + 2 * 33 for d in stored.values() for k, v in d.items())
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        figures = PartitionedFigures(make_calendar(Settings()), lambda: date(2026, 3, 31))
        for p, d in stored.items():
            figures.rebuild(p, ((k, decode_history(v)[1]) for k, v in d.items()))
        gc.collect()
        steps = [tracemalloc.get_traced_memory()[0]]
        states = [state for part in figures.partitions.values() for state in part.keys.values()]
        for part in ("parsed", "ids", "contribution"):
            for state in states:
                setattr(state, part, [] if part == "parsed" else set() if part == "ids" else None)
            gc.collect()
            steps.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    kb = 1024 * keys
    return {"child_memory_keys": keys,
            "child_memory_figures_kb_per_key": (steps[0] - start) / kb,
            "child_memory_parsed_events_kb_per_key": (steps[0] - steps[1]) / kb,
            "child_memory_event_id_set_kb_per_key": (steps[1] - steps[2]) / kb,
            "child_memory_contribution_kb_per_key": (steps[2] - steps[3]) / kb,
            "child_memory_aggregates_and_dicts_kb_per_key": (steps[3] - start) / kb,
            "child_memory_table_value_kb_per_key": table / kb}
