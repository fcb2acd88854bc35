"""The ``case_histories`` table addressed by partition (casewatch/adapters/faust/changelog.py,
``TableHistories``), on a real Faust table of each store (not started: nothing is consumed).

* values are read and written in the key's own partition, whatever Faust's "current event" is
  (the rocksdb store keeps one database per partition);
* one partition's keys are listed without the others', for keys the engine wrote and keys a
  restore brought;
* a restore that only replays the values the worker itself wrote changes nothing it kept; one that
  brings another value for a kept partition's key is reported, by partition.
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import pytest

from casewatch.adapters.faust.changelog import TableHistories


@pytest.fixture(params=["memory", "rocksdb"])
def histories(request, tmp_path):
    app = faust.App(f"test-histories-{request.param}", broker="kafka://127.0.0.1:9",
                    store=f"{request.param}://", datadir=str(tmp_path), web_enabled=False,
                    key_serializer="raw", value_serializer="raw")
    stored = TableHistories()
    table = app.Table("case_histories", default=None, partitions=6, key_type=bytes, value_type=bytes,
                      on_changelog_event=stored.restored)
    stored.bind(table)
    assert stored.on_disk == (request.param == "rocksdb")
    return stored


def restore(stored: TableHistories, records: list[tuple[int, bytes, bytes]]) -> None:
    """What Faust's recovery does with changelog records: the hook for each, then the batch."""
    events = [SimpleNamespace(message=SimpleNamespace(partition=p, key=k, value=v, tp=None, offset=n),
                              key=k, value=v)
              for n, (p, k, v) in enumerate(records)]
    for event in events:
        asyncio.run(stored.restored(event))
    if stored.on_disk:  # Faust's rocksdb store writes each record to its partition's database
        for p, k, v in records:
            stored.table.data._db_for_partition(p).put(k, v)
    else:
        stored.table.data.apply_changelog_batch(events, to_key=lambda k: k, to_value=lambda v: v)


def test_values_live_in_their_own_partition_and_a_partition_lists_only_its_keys(histories):
    histories.put(1, b"child-a", b"a1")
    histories.put(4, b"child-b", b"b1")
    restore(histories, [(4, b"child-c", b"c1")])
    assert histories.get(1, b"child-a") == b"a1" and histories.get(4, b"child-b") == b"b1"
    assert sorted(histories.items(4)) == [(b"child-b", b"b1"), (b"child-c", b"c1")]
    assert list(histories.items(1)) == [(b"child-a", b"a1")]
    assert list(histories.items(2)) == []
    if histories.on_disk:  # one database per partition: the key is not in another's
        assert histories.get(4, b"child-a") is None


def test_a_restore_replaying_the_workers_own_values_changes_nothing_it_kept(histories):
    histories.put(1, b"child-a", b"a2")
    histories.put(2, b"child-b", b"b1")
    histories.watch(lambda p: p in {1, 2})
    # the tail of partition 1's changelog: an older value, then the newest (the store's own)
    restore(histories, [(1, b"child-a", b"a1"), (1, b"child-a", b"a2"), (3, b"child-z", b"z1")])
    assert histories.changed_by_restore({1, 2}) == {}
    assert histories.get(1, b"child-a") == b"a2"


def test_a_restore_that_changes_a_kept_partitions_value_is_reported(histories):
    histories.put(1, b"child-a", b"a2")
    histories.put(2, b"child-b", b"b1")
    histories.watch(lambda p: p in {1, 2})
    restore(histories, [(2, b"child-b", b"b-from-elsewhere"), (2, b"child-new", b"n1"), (1, b"child-a", b"a2")])
    assert histories.changed_by_restore({1, 2}) == {2: 2}
    assert histories.changed_by_restore({1, 2}) == {}  # asked once per restore


def test_forgetting_a_partition_drops_its_values_from_a_memory_table(histories):
    histories.put(1, b"child-a", b"a1")
    histories.put(2, b"child-b", b"b1")
    histories.forget({1})
    assert histories.get(2, b"child-b") == b"b1"
    if not histories.on_disk:  # (rocksdb: Faust closes a revoked partition's database itself)
        assert histories.get(1, b"child-a") is None and list(histories.items(1)) == []
