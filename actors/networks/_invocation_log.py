"""Runs and invocations in the node's store: they outlive the live topic and restarts.

One `InvocationLog` per node, shared by its network runners: each runner
writes only its own network's rows, from its own thread (the store gives each
thread its own connection). Invocation ids come from one in-process counter
seeded from the store, so they are unique across networks and never reused.
Every method blocks on SQLite for at most the store's busy timeout and raises
`StoreError` when it cannot.
"""

from __future__ import annotations

import threading
from typing import Any

from pipecast.actors.runtime import Store

from ._run_rules import EndRun, Invocation, Record

__all__ = ["InvocationLog"]

_COLUMNS = (
    "id, network, run, sequence, model, input, output, state, attempt, started_at, ended_at, error"
)

_UPSERT = (
    f"INSERT INTO invocations ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "  # noqa: S608
    "ON CONFLICT(id) DO UPDATE SET output=excluded.output, state=excluded.state, "
    "attempt=excluded.attempt, ended_at=excluded.ended_at, error=excluded.error"
)


def _row(r: tuple[Any, ...]) -> Invocation:
    return Invocation(
        id=r[0],
        network=r[1],
        run=r[2],
        sequence=r[3],
        model=r[4],
        input=r[5],
        output=r[6],
        state=r[7],
        attempt=r[8],
        started_at=r[9],
        ended_at=r[10],
        error=r[11],
    )


class InvocationLog:
    """See module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._next: int | None = None

    def new_id(self) -> int:
        with self._lock:
            if self._next is None:
                row = self.store.connection().execute("SELECT MAX(id) FROM invocations").fetchone()
                self._next = int(row[0] or 0) + 1
            out = self._next
            self._next += 1
            return out

    def write(self, changes: list[Record | EndRun]) -> None:
        """Record invocations and run ends, in order, in one transaction."""
        with self.store.transaction() as db:
            for change in changes:
                if isinstance(change, EndRun):
                    db.execute(
                        "UPDATE runs SET ended_at=?, reason=? WHERE id=? AND ended_at IS NULL",
                        (change.at, change.reason, change.run),
                    )
                    continue
                inv = change.invocation
                if change.new_run_prompt is not None:
                    db.execute(
                        "INSERT INTO runs (id, network, prompt, started_at) VALUES (?, ?, ?, ?)",
                        (inv.run, inv.network, change.new_run_prompt, inv.started_at),
                    )
                db.execute(
                    _UPSERT,
                    (
                        inv.id,
                        inv.network,
                        inv.run,
                        inv.sequence,
                        inv.model,
                        inv.input,
                        inv.output,
                        inv.state,
                        inv.attempt,
                        inv.started_at,
                        inv.ended_at,
                        inv.error,
                    ),
                )

    def interrupted(self, network: str, at: float) -> int:
        """After a crash: fail in-flight invocations and end open runs of `network`."""
        with self.store.transaction() as db:
            cur = db.execute(
                "UPDATE invocations SET state='failed', ended_at=?, "
                "error='interrupted: the node stopped during this invocation' "
                "WHERE network=? AND state='invoking'",
                (at, network),
            )
            db.execute(
                "UPDATE runs SET ended_at=?, reason='interrupted' "
                "WHERE network=? AND ended_at IS NULL",
                (at, network),
            )
            return cur.rowcount

    def last_run(self, network: str) -> dict[str, Any] | None:
        row = (
            self.store.connection()
            .execute(
                "SELECT id, prompt, started_at, ended_at, reason FROM runs "
                "WHERE network=? ORDER BY id DESC LIMIT 1",
                (network,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return dict(zip(("run", "prompt", "started_at", "ended_at", "reason"), row, strict=True))

    def runs(self, network: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = (
            self.store.connection()
            .execute(
                "SELECT r.id, r.prompt, r.started_at, r.ended_at, r.reason, "
                "(SELECT COUNT(*) FROM invocations i WHERE i.run = r.id) "
                "FROM runs r WHERE network=? ORDER BY id DESC LIMIT ?",
                (network, limit),
            )
            .fetchall()
        )
        keys = ("run", "prompt", "started_at", "ended_at", "reason", "invocations")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def has_run(self, network: str, run: int) -> bool:
        row = (
            self.store.connection()
            .execute("SELECT 1 FROM runs WHERE network=? AND id=?", (network, run))
            .fetchone()
        )
        return row is not None

    def invocations(
        self, network: str, run: int, limit: int, newest: bool = True
    ) -> list[Invocation]:
        """Up to `limit` invocations of `run`, in sequence order (the newest ones if `newest`)."""
        order = "DESC" if newest else "ASC"
        rows = (
            self.store.connection()
            .execute(
                f"SELECT {_COLUMNS} FROM invocations WHERE network=? AND run=? "  # noqa: S608
                f"ORDER BY sequence {order} LIMIT ?",
                (network, run, limit),
            )
            .fetchall()
        )
        return sorted((_row(r) for r in rows), key=lambda i: i.sequence)

    def genesis(self, network: str, run: int) -> Invocation | None:
        row = (
            self.store.connection()
            .execute(
                f"SELECT {_COLUMNS} FROM invocations WHERE network=? AND run=? AND sequence=0",  # noqa: S608
                (network, run),
            )
            .fetchone()
        )
        return None if row is None else _row(row)
