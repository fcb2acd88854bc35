"""The last state seen of each child, for the DfE API adapter (docs/feeds.md "DfE CSC API").

What is kept is minimal and holds no case-system identifier: per child, keyed by the child's
pseudonym, the events its last snapshot stood for —

    {"events": {<base event id>: {"id": <current event id>, "root": <the original it amends>,
                                  "fp": <content fingerprint>, "t": <event type>,
                                  "live": true|false, "gen": <times voided>}}}

A base event id is the UUIDv5 of the source record identity (``FeedContext.event_id``); the
fingerprint is a short hash of the event's content. No dates, codes or names are stored.

``SnapshotStateStore`` is the interface (get / put / delete per child key). ``delete`` is the
erasure path (a DfE ``purge`` of a child, ``casewatch erase``): the SQLite store overwrites the
deleted row's bytes (``secure_delete``), so the child's key does not linger in the file. ``SqliteSnapshotStore`` keeps it in
one SQLite file under the state directory; the same interface could be backed by a Kafka compacted
topic (key = child pseudonym, value = this JSON) without changing the adapter.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Protocol


class SnapshotStateStore(Protocol):
    def get(self, child_key: str) -> dict | None: ...

    def put(self, child_key: str, state: dict) -> None: ...

    def delete(self, child_key: str) -> bool: ...


class MemorySnapshotStore:
    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, child_key: str) -> dict | None:
        raw = self._data.get(child_key)
        return json.loads(raw) if raw is not None else None

    def put(self, child_key: str, state: dict) -> None:
        self._data[child_key] = json.dumps(state, sort_keys=True)

    def delete(self, child_key: str) -> bool:
        return self._data.pop(child_key, None) is not None

    def __len__(self) -> int:
        return len(self._data)


class SqliteSnapshotStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA secure_delete = ON")  # deleted rows are overwritten, not left in free pages
        self.path.chmod(0o600)
        self._db.execute("CREATE TABLE IF NOT EXISTS child_state (child_key TEXT PRIMARY KEY, state TEXT NOT NULL)")
        self._db.commit()

    def get(self, child_key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM child_state WHERE child_key = ?", (child_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, child_key: str, state: dict) -> None:
        with self._lock:
            self._db.execute("INSERT INTO child_state (child_key, state) VALUES (?, ?) "
                             "ON CONFLICT(child_key) DO UPDATE SET state = excluded.state",
                             (child_key, json.dumps(state, sort_keys=True)))
            self._db.commit()

    def delete(self, child_key: str) -> bool:
        with self._lock:
            gone = self._db.execute("DELETE FROM child_state WHERE child_key = ?", (child_key,)).rowcount
            self._db.commit()
        return bool(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()
