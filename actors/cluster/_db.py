"""One SQL surface over two engines, for the tables a cluster shares.

The media library and its search history are written once, in the SQL both
engines speak, with `?` placeholders; a `Database` runs it on SQLite (the
node's own store file: one node) or on PostgreSQL (one database: a cluster).
What differs is said here once each: placeholders, `FOR UPDATE SKIP LOCKED`
(`Database.skip_locked`, `Database.for_update`; SQLite's `BEGIN IMMEDIATE`
already holds the whole file), the column types of a schema (`{id}`, `{real}`
in its text), and how errors are translated (every engine error becomes
`StoreError`).

Threads: each thread gets its own connection; every call blocks on the
engine for at most its timeout. A PostgreSQL connection that broke (the
server restarted) is made again on the next call; the call that saw it break
raises `StoreError`, and what it did not commit did not happen.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from pipecast.actors.runtime import Store, StoreError

__all__ = ["Database", "PostgresDatabase", "SqliteDatabase", "Tx", "open_database"]

_TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION"},
}


class Tx(Protocol):
    """A transaction's statements: `execute(sql, params)` -> a cursor (fetchone,
    fetchall, rowcount)."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...


class Database(Protocol):
    engine: str
    shared: bool  # other nodes may write here too (nobody tells this one)
    for_update: str  # appended to a SELECT that locks its rows until the commit
    skip_locked: str  # ... and passes rows another transaction holds

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None: ...

    def transaction(self) -> contextlib.AbstractContextManager[Tx]: ...

    def migrate(self, name: str, migrations: Mapping[int, tuple[str, ...]]) -> int: ...

    def release(self) -> None: ...


def _apply(db: Tx, engine: str, name: str, migrations: Mapping[int, tuple[str, ...]]) -> int:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY, version INTEGER)"
    )
    found = db.execute("SELECT version FROM schema_versions WHERE name=?", (name,)).fetchone()
    current = int(found[0]) if found else 0
    for version in sorted(v for v in migrations if v > current):
        for statement in migrations[version]:
            db.execute(statement.format(**_TYPES[engine]))
        current = version
    db.execute(
        "INSERT INTO schema_versions (name, version) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET version=excluded.version",
        (name, current),
    )
    return current


class SqliteDatabase:
    """The tables in the node's own store file (its connections, one per thread)."""

    engine = "sqlite"
    for_update = ""
    skip_locked = ""

    def __init__(self, store: Store, owned: bool = False) -> None:
        self.store = store
        self._owned = owned  # a file of its own (sqlite:///PATH): closed with it
        self.shared = owned  # the node's own file is its alone

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self.store.connection().execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from None

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        try:
            found: tuple[Any, ...] | None = self.store.connection().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from None
        return found

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.store.transaction() as db:
            yield db

    def migrate(self, name: str, migrations: Mapping[int, tuple[str, ...]]) -> int:
        with self.transaction() as db:
            return _apply(db, self.engine, name, migrations)

    def release(self) -> None:
        self.store.release()

    def close(self) -> None:
        """Close the store if it is this database's own (not the node's)."""
        if self._owned:
            self.store.close()


class _Placeholders:
    """A psycopg connection that takes `?` placeholders."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), params)


class PostgresDatabase:
    """The tables in one PostgreSQL database, shared by every node that names it.

    `idle_seconds` bounds how long a transaction may sit idle (a node stopped
    with SIGSTOP inside one): PostgreSQL then ends the session, its locks go,
    and the others carry on.
    """

    engine = "postgresql"
    shared = True
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, timeout: float = 5.0, idle_seconds: float = 10.0) -> None:
        try:
            import psycopg  # noqa: PLC0415 - an extra: pipecast[postgres]
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'pipecast[postgres]'") from None
        self._psycopg = psycopg
        self._dsn = dsn
        self._timeout = timeout
        self._idle = idle_seconds
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                self._forget(conn)
            conn = self._psycopg.connect(
                self._dsn, connect_timeout=max(1, int(self._timeout)), autocommit=True
            )
            conn.execute(f"SET statement_timeout = {int(self._timeout * 1000)}")
            conn.execute(f"SET idle_in_transaction_session_timeout = {int(self._idle * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _forget(self, conn: Any) -> None:
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def _error(self, exc: Exception) -> StoreError:
        return StoreError(f"postgresql: {type(exc).__name__}: {str(exc).strip()[:300]}")

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(_Placeholders(self._connection()).execute(sql, params).fetchall())
        except self._psycopg.Error as exc:
            raise self._error(exc) from None

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        try:
            found: tuple[Any, ...] | None = (
                _Placeholders(self._connection()).execute(sql, params).fetchone()
            )
        except self._psycopg.Error as exc:
            raise self._error(exc) from None
        return found

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        try:
            conn = self._connection()
            with conn.transaction():
                yield _Placeholders(conn)
        except self._psycopg.Error as exc:
            raise self._error(exc) from None

    def migrate(self, name: str, migrations: Mapping[int, tuple[str, ...]]) -> int:
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(7355609)")  # nodes starting together
            return _apply(db, self.engine, name, migrations)

    def release(self) -> None:
        """Close the calling thread's connection (a stage's thread as it ends)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            self._forget(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


def open_database(
    url: str, store: Store, timeout: float = 5.0
) -> SqliteDatabase | PostgresDatabase:
    """The library's database: `""` -> the node's own store file; `sqlite:///PATH` ->
    that SQLite file (nodes of one machine may share it); `postgresql://...` -> that
    database. `StoreError` for anything else, or a file that cannot be opened."""
    if url == "":
        return SqliteDatabase(store)
    if url.startswith("sqlite:///"):
        return SqliteDatabase(Store(url[len("sqlite://") :], timeout), owned=True)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, timeout)
    raise StoreError(f"a store is sqlite:///PATH or postgresql://..., not {url[:40]!r}")
