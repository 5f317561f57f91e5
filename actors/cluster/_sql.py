"""The claims contract in SQL, once, over two engines: SQLite and PostgreSQL.

The statements are written with `?` placeholders; the PostgreSQL engine turns
them into `%s`. What differs is said in one place each: how a transaction
starts (SQLite `BEGIN IMMEDIATE` takes the write lock at once; PostgreSQL
claims with `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass each other
by instead of waiting), how migrations are serialised between nodes starting
together (PostgreSQL: an advisory lock), and how errors are translated.

Threads: an instance is used by one thread (the stage that owns it); every
call blocks on the engine for at most its timeout. A PostgreSQL connection
that broke (the server restarted) is made again on the next call; the call
that saw it break raises `StoreError`, and whatever it did not commit did not
happen (a claim committed just before the break is the claimer's, and expires
if it never hears of it: the fencing makes that safe).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from ._claims import Claim, ClaimsStatistics, ClaimState, JobRecord, LeaseLost, StoreError

__all__ = ["SCHEMA_VERSION", "PostgresClaims", "SqliteClaims", "open_claims"]

# version -> statements; a version is applied once, in one transaction
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE cluster_jobs (
            id {serial} PRIMARY KEY,
            stage TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            node TEXT,
            attempt INTEGER NOT NULL DEFAULT 0,
            lease_until DOUBLE PRECISION,
            result TEXT,
            error TEXT,
            created DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX cluster_jobs_queue ON cluster_jobs (stage, state, id)",
        "CREATE INDEX cluster_jobs_leases ON cluster_jobs (state, lease_until)",
        """CREATE TABLE cluster_stage_flags (
            stage TEXT PRIMARY KEY,
            paused INTEGER NOT NULL DEFAULT 0
        )""",
    ),
}
SCHEMA_VERSION = max(_MIGRATIONS)
_FIELDS = "id, stage, state, node, attempt, lease_until, result, error"


class _SqlClaims:
    """The contract's SQL (see module docstring); engines fill in the differences."""

    engine = ""
    _serial = ""
    _claim_pick = ""  # the SELECT of the job to claim
    # what this instance did (telemetry; `statistics`)
    _claimed = 0
    _renewed = 0
    _lost = 0
    _expired = 0

    def statistics(self) -> ClaimsStatistics:
        """This instance's counts, and the store's jobs by state (one query)."""
        with self._tx() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM cluster_jobs GROUP BY state")
            by_state = {str(state): int(n) for state, n in rows.fetchall()}
        return ClaimsStatistics(
            self.engine, self._claimed, self._renewed, self._lost, self._expired, by_state
        )

    def _tx(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _lock_migrations(self, db: Any) -> None:
        """Serialise nodes that migrate at once (inside the migration's transaction)."""

    # -- schema -----------------------------------------------------------------

    def migrate(self) -> int:
        with self._tx() as db:
            self._lock_migrations(db)
            db.execute("CREATE TABLE IF NOT EXISTS cluster_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM cluster_schema").fetchone()
            current = row[0] or 0
            for version in sorted(v for v in _MIGRATIONS if v > current):
                for statement in _MIGRATIONS[version]:
                    db.execute(statement.format(serial=self._serial))
                db.execute("INSERT INTO cluster_schema (version) VALUES (?)", (version,))
                current = version
        return int(current)

    # -- work ---------------------------------------------------------------------

    def enqueue(self, stage: str, payloads: Iterable[dict[str, Any]]) -> list[int]:
        ids = []
        with self._tx() as db:
            for payload in payloads:
                row = db.execute(
                    "INSERT INTO cluster_jobs (stage, payload, created, updated) "
                    "VALUES (?, ?, 0, 0) RETURNING id",
                    (stage, json.dumps(payload)),
                ).fetchone()
                ids.append(int(row[0]))
        return ids

    def claim(self, stage: str, node: str, now: float, lease: float) -> Claim | None:
        with self._tx() as db:
            if self._paused(db, stage):
                return None
            picked = db.execute(self._claim_pick, (stage,)).fetchone()
            if picked is None:
                return None
            row = db.execute(
                "UPDATE cluster_jobs SET state='claimed', node=?, attempt=attempt+1, "
                "lease_until=?, updated=? WHERE id=? RETURNING attempt, payload",
                (node, now + lease, now, picked[0]),
            ).fetchone()
        self._claimed += 1
        return Claim(int(picked[0]), stage, node, int(row[0]), now + lease, json.loads(row[1]))

    def renew(self, claim: Claim, now: float, lease: float) -> Claim:
        with self._tx() as db:
            self._fenced(db, claim, now, "lease_until=?", (now + lease,))
        self._renewed += 1
        return Claim(claim.job, claim.stage, claim.node, claim.attempt, now + lease, claim.payload)

    def finish(self, claim: Claim, result: dict[str, Any], now: float) -> None:
        with self._tx() as db:
            self._fenced(
                db, claim, now, "state='done', lease_until=NULL, result=?", (json.dumps(result),)
            )

    def fail(self, claim: Claim, error: str, now: float) -> None:
        with self._tx() as db:
            self._fenced(db, claim, now, "state='failed', lease_until=NULL, error=?", (error,))

    def _fenced(
        self, db: Any, claim: Claim, now: float, assignments: str, values: tuple[Any, ...]
    ) -> None:
        """Change the job only if it is still this claim's (in the caller's transaction)."""
        cur = db.execute(
            f"UPDATE cluster_jobs SET {assignments}, updated=? "  # noqa: S608 - ours only
            "WHERE id=? AND state='claimed' AND node=? AND attempt=? AND lease_until>=?",
            (*values, now, claim.job, claim.node, claim.attempt, now),
        )
        if cur.rowcount != 1:
            self._lost += 1
            raise LeaseLost(
                f"job {claim.job} is no longer {claim.node}'s under attempt {claim.attempt}"
            )

    def expire(self, now: float) -> int:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE cluster_jobs SET state='queued', lease_until=NULL, updated=? "
                "WHERE state='claimed' AND lease_until<?",
                (now, now),
            )
            self._expired += int(cur.rowcount)
            return int(cur.rowcount)

    def retry(self, job: int, now: float) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE cluster_jobs SET state='queued', error=NULL, updated=? "
                "WHERE id=? AND state='failed'",
                (now, job),
            )
            return bool(cur.rowcount == 1)

    def set_paused(self, stage: str, paused: bool) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO cluster_stage_flags (stage, paused) VALUES (?, ?) "
                "ON CONFLICT (stage) DO UPDATE SET paused=excluded.paused",
                (stage, int(paused)),
            )

    def is_paused(self, stage: str) -> bool:
        with self._tx() as db:
            return self._paused(db, stage)

    @staticmethod
    def _paused(db: Any, stage: str) -> bool:
        row = db.execute("SELECT paused FROM cluster_stage_flags WHERE stage=?", (stage,))
        found = row.fetchone()
        return bool(found and found[0])

    def job(self, job: int) -> JobRecord | None:
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_FIELDS} FROM cluster_jobs WHERE id=?",  # noqa: S608 - ours only
                (job,),
            ).fetchone()
        if row is None:
            return None
        return JobRecord(
            int(row[0]),
            row[1],
            ClaimState(row[2]),
            row[3],
            int(row[4]),
            row[5],
            json.loads(row[6]) if row[6] is not None else None,
            row[7],
        )


class SqliteClaims(_SqlClaims):
    """The claims of one node, in its SQLite file (WAL)."""

    engine = "sqlite"
    _serial = "INTEGER"  # with PRIMARY KEY: the rowid
    _claim_pick = "SELECT id FROM cluster_jobs WHERE stage=? AND state='queued' ORDER BY id LIMIT 1"

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        try:
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from None

    def close(self) -> None:
        self._db.close()


class _PgCursorAdapter:
    """A psycopg connection that takes the contract's `?` placeholders."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), params)


class PostgresClaims(_SqlClaims):
    """The claims of a cluster, in PostgreSQL (psycopg 3). `dsn`: postgresql://..."""

    engine = "postgresql"
    _serial = "BIGSERIAL"
    _claim_pick = (
        "SELECT id FROM cluster_jobs WHERE stage=? AND state='queued' "
        "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )

    def __init__(self, dsn: str, timeout: float = 5.0) -> None:
        try:
            import psycopg  # noqa: PLC0415 - an extra: pipecast[postgres]
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'pipecast[postgres]'") from None
        self._psycopg = psycopg
        self._dsn = dsn
        self._timeout = timeout
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._psycopg.connect(
                self._dsn, connect_timeout=max(1, int(self._timeout)), autocommit=True
            )
            self._conn.execute(f"SET statement_timeout = {int(self._timeout * 1000)}")
        return self._conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_PgCursorAdapter]:
        try:
            conn = self._connection()
            with conn.transaction():
                yield _PgCursorAdapter(conn)
        except self._psycopg.Error as exc:
            raise StoreError(f"postgresql: {type(exc).__name__}: {exc}") from None

    def _lock_migrations(self, db: Any) -> None:
        db.execute("SELECT pg_advisory_xact_lock(7355608)")  # one migration at a time

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def open_claims(url: str, timeout: float = 5.0) -> SqliteClaims | PostgresClaims:
    """`sqlite:///path` or `postgresql://...`: the engine, migrated. `StoreError` if the
    URL names neither, or the engine cannot be reached."""
    if url.startswith("sqlite:///"):
        claims: SqliteClaims | PostgresClaims = SqliteClaims(url[len("sqlite://") :], timeout)
    elif url.startswith(("postgresql://", "postgres://")):
        claims = PostgresClaims(url, timeout)
    else:
        raise StoreError(f"a store URL is sqlite:///PATH or postgresql://..., not {url[:40]!r}")
    claims.migrate()
    return claims
