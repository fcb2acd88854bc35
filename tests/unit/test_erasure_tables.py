"""Erasure removes this machine's engine table directories (an on-disk table does not follow the
rewritten changelog: docs/operations.md "Table store")."""
from __future__ import annotations

from casewatch.config import Settings
from casewatch.erasure import remove_engine_tables


def test_every_worker_directory_of_the_app_goes_and_nothing_else(tmp_path):
    settings = Settings(state_dir=tmp_path, engine_app_id="casewatch-engine")
    tables = tmp_path / "engine" / "casewatch-engine"
    for worker in ("worker-9101", "worker-9102"):
        (tables / worker / "tables").mkdir(parents=True)
        (tables / worker / "tables" / "case_histories-0.db").write_bytes(b"history of an erased child")
    (tmp_path / "engine" / "another-app" / "worker-9101").mkdir(parents=True)
    (tmp_path / "feeds").mkdir()
    lines = []
    assert remove_engine_tables(settings, lines.append) == 2
    assert not list(tables.glob("worker-*"))
    assert (tmp_path / "engine" / "another-app" / "worker-9101").is_dir() and (tmp_path / "feeds").is_dir()
    assert len(lines) == 1 and "2 engine table directory" in lines[0]
    assert settings.engine_worker_dir == tables / f"worker-{settings.engine_metrics_port}"


def test_nothing_to_remove_is_said_by_nothing(tmp_path):
    lines = []
    assert remove_engine_tables(Settings(state_dir=tmp_path), lines.append) == 0 and lines == []
