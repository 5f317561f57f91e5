"""The node's durable store: SQLite (WAL) in the data directory.

Work queues live here, not only in mailboxes, so a restarted actor picks up
where the store says: an item that was `running` when its actor died is put
back to `queued` when the stage starts again. A stage's paused flag lives here
too, so pause survives a restart.

Each thread gets its own connection (sqlite3 objects are not shared across
threads); every method blocks on SQLite I/O for at most `busy_timeout`.
Errors from sqlite3 are translated to `StoreError`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecast.transport import ErrorType, PipecastError

__all__ = ["Store", "StoreError", "WorkItem"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS work (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stage TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS work_by_stage ON work (stage, state, id);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    network TEXT NOT NULL,
    prompt TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_network ON runs (network, id);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY,
    network TEXT NOT NULL,
    run INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    model TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    error TEXT,
    UNIQUE (network, run, sequence)
);
CREATE INDEX IF NOT EXISTS invocations_in_flight ON invocations (network, state);
CREATE TABLE IF NOT EXISTS stage_flags (
    stage TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);
"""


class StoreError(PipecastError):
    """The store could not be read or written (disk, lock, corruption, a shared
    PostgreSQL restarting)."""

    wire_type = ErrorType.STORE_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class WorkItem:
    id: int
    stage: str
    payload: dict[str, Any]
    attempts: int


class Store:
    """The SQLite store of one node (see module docstring)."""

    def __init__(self, path: str | Path, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self._busy = busy_timeout
        self._local = threading.local()
        # every connection with the thread that owns it: only that thread may
        # close it while it lives (closing under a running query can crash)
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._conn().executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot set up the store {self.path}: {exc}") from None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self._busy, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the store {self.path}: {exc}") from None
            with self._lock:
                if self._closed:  # a late user after close() would leak it: refuse
                    conn.close()
                    raise StoreError(f"the store {self.path} is closed")
                self._all.append((threading.current_thread(), conn))
            self._local.conn = conn
        return conn

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"store busy or broken: {exc}") from None
            return self.conn

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            except sqlite3.Error as err:
                raise StoreError(f"store commit failed: {err}") from None
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"store error: {exc}") from None

    def _tx(self) -> Store._Tx:
        return Store._Tx(self._conn())

    def transaction(self) -> Store._Tx:
        """`with store.transaction() as db:` one IMMEDIATE transaction (this thread's)."""
        return self._tx()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        return self._conn()

    def ensure_schema(self, sql: str) -> None:
        """Create the tables another module keeps in this store (idempotent DDL)."""
        try:
            self._conn().executescript(sql)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot set up tables in {self.path}: {exc}") from None

    def release(self) -> None:
        """Close the calling thread's connection (actors call this as they end)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._all = [(t, c) for t, c in self._all if c is not conn]
        conn.close()

    def close(self) -> None:
        """Refuse new connections; close those whose threads are done or are this one.

        Connections of threads still alive are theirs to close (`release()`):
        closing one under a running query can crash the process.
        """
        me = threading.current_thread()
        with self._lock:
            self._closed = True
            keep = []
            for thread, conn in self._all:
                if thread is me or not thread.is_alive():
                    conn.close()
                else:
                    keep.append((thread, conn))
            self._all = keep
        self._local = threading.local()

    # -- queue ------------------------------------------------------------------

    def enqueue(self, stage: str, payloads: Iterable[dict[str, Any]]) -> list[int]:
        now = time.time()
        ids = []
        with self._tx() as db:
            for payload in payloads:
                cur = db.execute(
                    "INSERT INTO work (stage, payload, created, updated) VALUES (?, ?, ?, ?)",
                    (stage, json.dumps(payload), now, now),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def requeue_running(self, stage: str) -> int:
        """Put items a dead incarnation was working on back in the queue."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE work SET state='queued', updated=? WHERE stage=? AND state='running'",
                (time.time(), stage),
            )
            return cur.rowcount

    def take(self, stage: str) -> WorkItem | None:
        """Mark the oldest queued item running and return it (None if none)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id, payload, attempts FROM work WHERE stage=? AND state='queued' "
                "ORDER BY id LIMIT 1",
                (stage,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE work SET state='running', attempts=attempts+1, updated=? WHERE id=?",
                (time.time(), row[0]),
            )
        return WorkItem(row[0], stage, json.loads(row[1]), row[2] + 1)

    def finish(self, item_id: int, result: dict[str, Any]) -> None:
        self._end(item_id, "done", json.dumps(result), None)

    def fail(self, item_id: int, error: str) -> None:
        self._end(item_id, "failed", None, error)

    def _end(self, item_id: int, state: str, result: str | None, error: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE work SET state=?, result=?, error=?, updated=? WHERE id=?",
                (state, result, error, time.time(), item_id),
            )

    def counts(self, stage: str) -> dict[str, int]:
        rows = (
            self._conn()
            .execute("SELECT state, COUNT(*) FROM work WHERE stage=? GROUP BY state", (stage,))
            .fetchall()
        )
        out = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        out.update(dict(rows))
        return out

    def result(self, item_id: int) -> tuple[str, dict[str, Any] | None, str | None]:
        row = (
            self._conn()
            .execute("SELECT state, result, error FROM work WHERE id=?", (item_id,))
            .fetchone()
        )
        if row is None:
            raise StoreError(f"no work item {item_id}")
        return row[0], json.loads(row[1]) if row[1] else None, row[2]

    # -- flags ------------------------------------------------------------------

    def set_paused(self, stage: str, paused: bool) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO stage_flags (stage, paused) VALUES (?, ?) "
                "ON CONFLICT(stage) DO UPDATE SET paused=excluded.paused",
                (stage, int(paused)),
            )

    def is_paused(self, stage: str) -> bool:
        row = (
            self._conn()
            .execute("SELECT paused FROM stage_flags WHERE stage=?", (stage,))
            .fetchone()
        )
        return bool(row and row[0])
