"""Holding jobs across nodes: claims, leases, fences, take-overs (see `Library`).

`LibraryHolds` is the part of the library that decides who may work on a
running job and guards every write of the holder; `Library` adds the rest.
The in-memory part (which jobs this node holds, under which fence; the
figures of `statistics`) is shared by the node's stage threads under a lock.
Methods block on the engine and raise `StoreError` or `LeaseLost`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from pipecast.actors.cluster import Database, HoldStatistics, LeaseLost

from ._job_states import QUEUED, JobEvent, JobState
from ._library_rows import IN_RUNNING, RUNNING_VALUES, Job, locked_row

__all__ = ["CommitGuard", "LibraryHolds"]


class LibraryHolds:
    """This node's holds on jobs of the library (see module docstring)."""

    db: Database
    node: str
    lease: float

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock  # wall time: leases are compared across machines
        self._held: dict[int, int] = {}  # job -> the fence this node holds it under
        self._lock = threading.Lock()
        # what this node's holds did (telemetry: `statistics`)
        self._claim_seconds: dict[JobState, deque[float]] = {}
        self._claimed: dict[JobState, int] = {}
        self._renewed = self._adopted = self._lost = 0

    # the rest of the library, which a hold's writes go through
    def get(self, job_id: int) -> Job | None:
        raise NotImplementedError

    def _move_in(
        self, db: Any, job_id: int, event: JobEvent, sets: dict[str, Any], stage: str | None = None
    ) -> JobState:
        raise NotImplementedError

    def _stored(self, fields: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def take(self, queued: JobState) -> Job | None:
        """Claim the oldest job in `queued` for this node (its running state, a new
        fence, a lease); None if there is none."""
        running = QUEUED[queued]
        now = self._clock()
        t0 = time.perf_counter()
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT id FROM media_files WHERE state=? ORDER BY id LIMIT 1"  # noqa: S608 - our own SQL
                + self.db.skip_locked,
                (queued.value,),
            ).fetchone()
            if row is None:
                return None
            fence = db.execute(
                "UPDATE media_files SET state=?, attempts=attempts+1, node=?, fence=fence+1, "
                "lease_until=?, cancel_requested=0, updated=? WHERE id=? RETURNING fence",
                (running.value, self.node, now + self.lease, now, row[0]),
            ).fetchone()
        elapsed = time.perf_counter() - t0
        with self._lock:
            self._claimed[queued] = self._claimed.get(queued, 0) + 1
            self._claim_seconds.setdefault(queued, deque(maxlen=1000)).append(elapsed)
        self._hold(int(row[0]), int(fence[0]))
        return self.get(int(row[0]))

    def _hold(self, job_id: int, fence: int) -> None:
        with self._lock:
            self._held[job_id] = fence

    def statistics(self, queued: JobState | None = None) -> HoldStatistics:
        """This node's holds: counts since start, and the claim latency of the latest
        1000 claims (of `queued`'s stage, or all). Any thread; no I/O."""
        with self._lock:
            if queued is None:
                samples = sorted(s for d in self._claim_seconds.values() for s in d)
                claimed = sum(self._claimed.values())
            else:
                samples = sorted(self._claim_seconds.get(queued, ()))
                claimed = self._claimed.get(queued, 0)
            return HoldStatistics(
                node=self.node,
                engine=self.db.engine,
                lease=self.lease,
                held=len(self._held),
                claimed=claimed,
                renewed=self._renewed,
                adopted=self._adopted,
                lost=self._lost,
                claim_p50_ms=_percentile_ms(samples, 0.50),
                claim_p99_ms=_percentile_ms(samples, 0.99),
            )

    def forget(self, job_id: int) -> None:
        """This node no longer works on the job (it ended, or its hold was lost)."""
        with self._lock:
            self._held.pop(job_id, None)

    def held(self) -> dict[int, int]:
        """The jobs this node holds now, with their fences."""
        with self._lock:
            return dict(self._held)

    def renew(self, job_id: int) -> bool:
        """Extend this node's lease on a job it holds; True if a cancel was asked for it.
        `LeaseLost` if the job is no longer this node's under its fence."""
        fence = self._fence(job_id)
        now = self._clock()
        with self.db.transaction() as db:
            row = db.execute(
                "UPDATE media_files SET lease_until=? WHERE id=? AND node=? AND fence=? "  # noqa: S608 - our own SQL
                f"AND state IN ({', '.join('?' * len(RUNNING_VALUES))}) "
                "RETURNING cancel_requested",
                (now + self.lease, job_id, self.node, fence, *RUNNING_VALUES),
            ).fetchone()
        if row is None:
            self._lose(job_id)
            raise LeaseLost(f"job {job_id} is no longer {self.node}'s (fence {fence})")
        with self._lock:
            self._renewed += 1
        return bool(row[0])

    def _lose(self, job_id: int) -> None:
        with self._lock:
            self._lost += 1
            self._held.pop(job_id, None)

    def _fence(self, job_id: int) -> int:
        with self._lock:
            fence = self._held.get(job_id)
        if fence is None:
            raise LeaseLost(f"job {job_id} is not held by {self.node}")
        return fence

    def lapsed(self, running: JobState) -> list[int]:
        """Jobs in `running` whose holder's lease is over (or that name no holder),
        not held by this node: for `adopt`."""
        rows = self.db.rows(
            "SELECT id FROM media_files WHERE state=? AND (lease_until IS NULL OR lease_until<?) "
            "ORDER BY id LIMIT 100",
            (running.value, self._clock()),
        )
        mine = self.held()
        return [int(r[0]) for r in rows if int(r[0]) not in mine]

    def mine(self, running: JobState) -> list[int]:
        """Jobs in `running` that name this node (or no node: a store from before
        leases) as holder: what this node's last incarnation was doing."""
        rows = self.db.rows(
            "SELECT id FROM media_files WHERE state=? AND (node=? OR node IS NULL) ORDER BY id",
            (running.value, self.node),
        )
        mine = self.held()
        return [int(r[0]) for r in rows if int(r[0]) not in mine]

    def adopt(self, job_id: int, *, own: bool = False) -> Job | None:
        """Take over a running job whose holder's lease lapsed (or, `own`, that this
        node's last incarnation held): a new fence, this node's lease. None if it is
        not running, or (not `own`) its lease is not over after all."""
        now = self._clock()
        with self.db.transaction() as db:
            row = locked_row(db, self.db.for_update, "state, node, lease_until", job_id)
            if row is None or row[0] not in RUNNING_VALUES:
                return None
            if not own and row[2] is not None and row[2] >= now:
                return None
            if own and row[1] not in (None, self.node):
                return None
            fence = db.execute(
                "UPDATE media_files SET node=?, fence=fence+1, lease_until=?, updated=? "
                "WHERE id=? RETURNING fence",
                (self.node, now + self.lease, now, job_id),
            ).fetchone()
        self._hold(job_id, int(fence[0]))
        with self._lock:
            self._adopted += 0 if own else 1
        return self.get(job_id)

    def request_cancel(self, job_id: int) -> str | None:
        """Ask whichever node holds a running job to cancel it (it sees the request
        at its next renewal); the holder's name, or None if the job is not running."""
        with self.db.transaction() as db:
            row = db.execute(
                f"UPDATE media_files SET cancel_requested=1 WHERE id=? AND {IN_RUNNING} "  # noqa: S608
                "RETURNING node",
                (job_id, *RUNNING_VALUES),
            ).fetchone()
        return None if row is None else str(row[0])

    @contextlib.contextmanager
    def commit_guard(self, job_id: int) -> Iterator[CommitGuard]:
        """`with library.commit_guard(id) as guard:` one transaction with the job's row
        locked after checking this node still holds it under its fence (`LeaseLost`
        before the block runs otherwise). The commit's file swap runs inside the
        block and `guard.done(...)` records it in the same transaction; an error in
        the block rolls back, and the row is as it was."""
        with self.db.transaction() as db:
            row = locked_row(db, self.db.for_update, "state, node, fence", job_id)
            fence = self._fence(job_id)
            if (
                row is None
                or row[0] not in RUNNING_VALUES
                or (row[1], row[2])
                != (
                    self.node,
                    fence,
                )
            ):
                self._lose(job_id)
                raise LeaseLost(f"job {job_id} is no longer {self.node}'s (fence {fence})")
            yield CommitGuard(self, db, job_id)
        self.forget(job_id)


def _percentile_ms(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 3)


class CommitGuard:
    """The transaction of `Library.commit_guard`: `done(**fields)` records the commit."""

    def __init__(self, library: LibraryHolds, db: Any, job_id: int) -> None:
        self._library, self._db, self._job = library, db, job_id

    def done(self, **fields: Any) -> JobState:
        sets = {**self._library._stored(fields), "attempts": 0, "pgid": None}
        return self._library._move_in(self._db, self._job, JobEvent.DONE, sets)
