"""The media library in the store: one row per file, moved only by the job table.

Every state change goes through `job_transition` inside one transaction, so
the store never holds a state the table cannot explain. The store is one
node's SQLite file or a PostgreSQL database that several nodes share
(`pipecast.actors.cluster.Database`); the rules are the same on both:

- A running job is held by one node under a lease and a fencing number
  (`take` claims the oldest queued job: one UPDATE of a row picked with
  `FOR UPDATE SKIP LOCKED`, so nodes claiming together pass each other by).
  The fence grows with every claim.
- Every change to a job this node holds names its fence: the change is made
  only if the row still carries it, in the same transaction (`LeaseLost`
  otherwise, nothing changed). A node that was paused, partitioned or killed
  past its lease, whose job another node has taken since, can therefore
  record nothing for it; the commit's file swap is made under that check,
  with the row locked (`commit_guard`).
- A lease is renewed while the work runs (`renew`); one that lapsed lets any
  node take the job over (`adopt`) and recover it as a restart would.

Shared by the media stages of a node; each calls it from its own thread (one
connection per thread). Methods block on the engine and raise `StoreError`,
`InvalidTransition` for an event the job's state refuses, or `LeaseLost`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from pipecast.actors.cluster import Database, LeaseLost, PathMap, SqliteDatabase, Unmapped
from pipecast.actors.runtime import Store

from ._job_states import (
    QUEUED,
    RETRYABLE,
    RUNNING,
    InvalidTransition,
    JobEvent,
    JobState,
    MediaFailure,
    job_transition,
    stage_of,
)
from ._library_rows import FIELDS, MIGRATIONS, Fingerprint, Job, fingerprint, job_of
from ._search_history import SearchHistory

__all__ = ["CommitGuard", "Fingerprint", "Job", "Library", "fingerprint"]

_RUNNING_VALUES = tuple(s.value for s in RUNNING)


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, dict) else v for k, v in fields.items()}


class Library:
    """See module docstring. `node` names this node in the rows it holds; `lease`
    is how long (seconds) a hold lasts without a renewal."""

    def __init__(
        self,
        db: Database | Store,
        node: str = "local",
        lease: float = 60.0,
        paths: PathMap | None = None,
    ) -> None:
        self.db: Database = SqliteDatabase(db) if isinstance(db, Store) else db
        self.node = node
        self.lease = lease
        # the store holds every path in its shared form; this node's are mapped
        self.paths = paths or PathMap()
        self._held: dict[int, int] = {}  # job -> the fence this node holds it under
        self._lock = threading.Lock()
        if self.db.engine == "sqlite":
            self._old_sqlite_columns()
        self.db.migrate("media", MIGRATIONS)
        # what earlier CRF searches left: probes, cached samples, chosen CRFs and slopes
        self.searches = SearchHistory(self.db, self.shared)

    def _old_sqlite_columns(self) -> None:
        """Stores written before versioned schemas: the columns added since."""
        for table, column, sql in (
            ("crf_probes", "paired_with", "ALTER TABLE crf_probes ADD COLUMN paired_with REAL"),
            ("media_files", "dev", "ALTER TABLE media_files ADD COLUMN dev INTEGER"),
            ("media_files", "ino", "ALTER TABLE media_files ADD COLUMN ino INTEGER"),
        ):
            columns = {r[1] for r in self.db.rows(f"PRAGMA table_info({table})")}
            if columns and column not in columns:
                with self.db.transaction() as db:
                    db.execute(sql)

    def release(self) -> None:
        """Close the calling thread's connection (a stage's thread as it ends)."""
        self.db.release()

    # -- paths: the store holds them in their shared form ------------------------------

    def shared(self, local: str) -> str:
        """A path of this node in the store's shared form; `Unmapped` if it has none."""
        return self.paths.to_shared(local)

    def _shared_or_own(self, path: str | None) -> str | None:
        try:
            return None if path is None else self.shared(path)
        except Unmapped:
            return path  # a node's own file (a work file): the same everywhere it exists

    def _local(self, shared: str | None) -> str | None:
        if shared is None or not self.paths.entries:
            return shared
        try:
            return self.paths.to_local(shared)
        except Unmapped:
            return shared

    def _job(self, row: tuple[Any, ...]) -> Job:
        job = job_of(row)
        if not self.paths.entries:
            return job
        plan = job.commit_plan
        if plan is not None:
            plan = {k: self._local(v) for k, v in plan.items()}
        return dataclasses.replace(
            job,
            path=self._local(job.path) or job.path,
            output_path=self._local(job.output_path),
            commit_plan=plan,
        )

    def _stored(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Fields as the store keeps them: maps as JSON, paths in their shared form."""
        out = dict(fields)
        if self.paths.entries:
            if out.get("output_path") is not None:
                out["output_path"] = self.shared(out["output_path"])
            if isinstance(out.get("commit_plan"), dict):
                out["commit_plan"] = {
                    k: self._shared_or_own(v) for k, v in out["commit_plan"].items()
                }
        return _encode(out)

    # -- reading -------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        row = self.db.row(f"SELECT {FIELDS} FROM media_files WHERE id=?", (job_id,))  # noqa: S608
        return None if row is None else self._job(row)

    def by_path(self, path: str) -> Job | None:
        shared = self._shared_or_own(path)
        row = self.db.row(f"SELECT {FIELDS} FROM media_files WHERE path=?", (shared,))  # noqa: S608
        return None if row is None else self._job(row)

    def is_output(self, path: str) -> bool:
        found = self.db.row(
            "SELECT 1 FROM media_files WHERE output_path=? LIMIT 1", (self._shared_or_own(path),)
        )
        return found is not None

    def jobs(self, state: JobState | None = None, limit: int = 1000) -> list[Job]:
        where, args = ("WHERE state=?", (state.value,)) if state else ("", ())
        rows = self.db.rows(
            f"SELECT {FIELDS} FROM media_files {where} ORDER BY id LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [self._job(r) for r in rows]

    def unfinished_commits(self, stale_after: float) -> list[Job]:
        """Encoded jobs whose commit was recorded but whose cleanup was not finished:
        this node's, and other nodes' recorded more than `stale_after` seconds ago
        (their node died before the cleanup)."""
        rows = self.db.rows(
            f"SELECT {FIELDS} FROM media_files WHERE state=? AND commit_plan IS NOT NULL "  # noqa: S608
            "AND (node=? OR node IS NULL OR updated<?)",
            (JobState.ENCODED.value, self.node, time.time() - stale_after),
        )
        return [self._job(r) for r in rows]

    def counts(self, running: JobState) -> dict[str, int]:
        """queue / running / done / skipped / failed of the stage whose running state this is."""
        queued, done = RUNNING[running]
        stage = stage_of(running)
        later = _states_from(done)
        rows = {
            str(k): int(n)
            for k, n in self.db.rows("SELECT state, COUNT(*) FROM media_files GROUP BY state")
        }
        ended = self.db.row(
            "SELECT COALESCE(SUM(CASE WHEN state='failed' AND fail_stage=? THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN state='skipped' AND fail_stage=? THEN 1 ELSE 0 END), 0) "
            "FROM media_files",
            (stage, stage),
        )
        failed, skipped = ended if ended is not None else (0, 0)
        return {
            "queued": rows.get(queued.value, 0),
            "running": rows.get(running.value, 0),
            "done": sum(rows.get(s.value, 0) for s in later),
            "skipped": int(skipped),
            "failed": int(failed),
        }

    def totals(self) -> dict[str, int]:
        """What the encodes did to the library: {encoded, bytes_before, bytes_after}."""
        found = self.db.row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(output_size), 0) "
            "FROM media_files WHERE state=?",
            (JobState.ENCODED.value,),
        )
        encoded, before, after = found if found is not None else (0, 0, 0)
        return {"encoded": int(encoded), "bytes_before": int(before), "bytes_after": int(after)}

    # -- adding --------------------------------------------------------------------

    def add(self, path: str) -> tuple[str, int]:
        """Queue a file (by its resolved path) for analysis: ("added" | "known" |
        "rescanned", id). Idempotent. `Unmapped` if the path has no shared form."""
        local, path = path, self.shared(path)
        fp = fingerprint(local)
        size, mtime_ns, digest = fp.size, fp.mtime_ns, fp.digest
        now = time.time()
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT id, state, size, mtime_ns, digest FROM media_files WHERE path=?"  # noqa: S608 - our own SQL
                + self.db.for_update,
                (path,),
            ).fetchone()
            if row is None:
                values = (path, JobState.NEEDS_ANALYSIS.value, size, mtime_ns, digest)
                added = db.execute(
                    "INSERT INTO media_files (path, state, size, mtime_ns, digest, dev, ino, "
                    "created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (*values, fp.dev, fp.ino, now, now),
                ).fetchone()
                return "added", int(added[0])
            job_id, state = int(row[0]), JobState(row[1])
            if (row[2], row[4]) == (size, digest):  # the same content: this file, now
                db.execute(
                    "UPDATE media_files SET dev=?, ino=? WHERE id=?", (fp.dev, fp.ino, job_id)
                )
                return "known", job_id
            if state in RUNNING:
                return "known", job_id
            target = job_transition(state, JobEvent.RESCAN)
            db.execute(
                "UPDATE media_files SET state=?, size=?, mtime_ns=?, digest=?, dev=?, ino=?, "
                "probe=NULL, crf=NULL, skip_reason=NULL, fail_stage=NULL, fail_category=NULL, "
                "fail_code=NULL, fail_message=NULL, attempts=0, updated=? WHERE id=?",
                (target.value, size, mtime_ns, digest, fp.dev, fp.ino, now, job_id),
            )
            return "rescanned", job_id

    # -- holding jobs ------------------------------------------------------------------

    def take(self, queued: JobState) -> Job | None:
        """Claim the oldest job in `queued` for this node (its running state, a new
        fence, a lease); None if there is none."""
        running = QUEUED[queued]
        now = time.time()
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
        self._hold(int(row[0]), int(fence[0]))
        return self.get(int(row[0]))

    def _hold(self, job_id: int, fence: int) -> None:
        with self._lock:
            self._held[job_id] = fence

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
        now = time.time()
        with self.db.transaction() as db:
            row = db.execute(
                "UPDATE media_files SET lease_until=? WHERE id=? AND node=? AND fence=? "  # noqa: S608 - our own SQL
                f"AND state IN ({', '.join('?' * len(_RUNNING_VALUES))}) "
                "RETURNING cancel_requested",
                (now + self.lease, job_id, self.node, fence, *_RUNNING_VALUES),
            ).fetchone()
        if row is None:
            self.forget(job_id)
            raise LeaseLost(f"job {job_id} is no longer {self.node}'s (fence {fence})")
        return bool(row[0])

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
            (running.value, time.time()),
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
        now = time.time()
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT state, node, lease_until FROM media_files WHERE id=?"  # noqa: S608 - our own SQL
                + self.db.for_update,
                (job_id,),
            ).fetchone()
            if row is None or row[0] not in _RUNNING_VALUES:
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
        return self.get(job_id)

    def request_cancel(self, job_id: int) -> str | None:
        """Ask whichever node holds a running job to cancel it (it sees the request
        at its next renewal); the holder's name, or None if the job is not running."""
        with self.db.transaction() as db:
            row = db.execute(
                "UPDATE media_files SET cancel_requested=1 WHERE id=? "  # noqa: S608 - our own SQL
                f"AND state IN ({', '.join('?' * len(_RUNNING_VALUES))}) RETURNING node",
                (job_id, *_RUNNING_VALUES),
            ).fetchone()
        return None if row is None else str(row[0])

    # -- moving jobs -----------------------------------------------------------------

    def _move_in(
        self,
        db: Any,
        job_id: int,
        event: JobEvent,
        sets: dict[str, Any],
        stage: str | None = None,
    ) -> JobState:
        """One state change inside the caller's transaction, fenced if this node holds
        the job; a running job held by another node is refused."""
        row = db.execute(
            "SELECT state, fail_stage, node, fence FROM media_files WHERE id=?"  # noqa: S608 - our own SQL
            + self.db.for_update,
            (job_id,),
        ).fetchone()
        if row is None:
            raise InvalidTransition(f"no job {job_id}")
        with self._lock:
            fence = self._held.get(job_id)
        running = row[0] in _RUNNING_VALUES
        if fence is not None and (not running or row[2] != self.node or row[3] != fence):
            raise LeaseLost(f"job {job_id} is no longer {self.node}'s (fence {fence})")
        if fence is None and running:
            raise LeaseLost(f"job {job_id} is held by node {row[2]}")
        target = job_transition(JobState(row[0]), event, stage or row[1])
        if target in RUNNING:
            sets = dict(sets)
        else:
            sets = {**sets, "lease_until": None, "cancel_requested": 0}
        cols = ", ".join(f"{k}=?" for k in sets)
        db.execute(
            f"UPDATE media_files SET state=?, updated=?{', ' if cols else ''}{cols} WHERE id=?",  # noqa: S608
            (target.value, time.time(), *sets.values(), job_id),
        )
        return target

    def _move(
        self, job_id: int, event: JobEvent, sets: dict[str, Any], stage: str | None = None
    ) -> JobState:
        with self.db.transaction() as db:
            target = self._move_in(db, job_id, event, sets, stage)
        if target not in RUNNING:
            self.forget(job_id)
        return target

    def done(self, job_id: int, **fields: Any) -> JobState:
        return self._move(
            job_id, JobEvent.DONE, {**self._stored(fields), "attempts": 0, "pgid": None}
        )

    def skip(self, job_id: int, stage: str, reason: str, **fields: Any) -> JobState:
        return self._move(
            job_id,
            JobEvent.SKIP,
            {**self._stored(fields), "skip_reason": reason, "fail_stage": stage, "pgid": None},
        )

    def fail(self, job_id: int, stage: str, failure: MediaFailure, max_attempts: int) -> JobState:
        """Fail the job, or queue it again if the failure is retryable and attempts remain."""
        job = self.get(job_id)
        retry = job is not None and failure.category in RETRYABLE and job.attempts < max_attempts
        return self._move(
            job_id,
            JobEvent.INTERRUPT if retry else JobEvent.FAIL,
            {
                "fail_stage": stage,
                "fail_category": failure.category,
                "fail_code": failure.code,
                "fail_message": str(failure),
                "pgid": None,
                "commit_plan": None,
                "commit_step": None,
            },
        )

    def interrupt(self, job_id: int) -> JobState:
        """A running job back to its queue (a restart); the chosen CRF is kept."""
        return self._move(
            job_id, JobEvent.INTERRUPT, {"pgid": None, "commit_plan": None, "commit_step": None}
        )

    def set_fields(self, job_id: int, **fields: Any) -> None:
        """Journal fields of a job (pgid, commit_plan, commit_step); no state change.
        Fenced when this node holds the job."""
        sets = self._stored(fields)
        cols = ", ".join(f"{k}=?" for k in sets)
        with self._lock:
            fence = self._held.get(job_id)
        fenced, args = (" AND node=? AND fence=?", (self.node, fence)) if fence else ("", ())
        with self.db.transaction() as db:
            changed = db.execute(
                f"UPDATE media_files SET {cols}, updated=? WHERE id=?{fenced} RETURNING id",  # noqa: S608
                (*sets.values(), time.time(), job_id, *args),
            ).fetchone()
        if fence and changed is None:
            self.forget(job_id)
            raise LeaseLost(f"job {job_id} is no longer {self.node}'s (fence {fence})")

    @contextlib.contextmanager
    def commit_guard(self, job_id: int) -> Iterator[CommitGuard]:
        """`with library.commit_guard(id) as guard:` one transaction with the job's row
        locked after checking this node still holds it under its fence (`LeaseLost`
        before the block runs otherwise). The commit's file swap runs inside the
        block and `guard.done(...)` records it in the same transaction; an error in
        the block rolls back, and the row is as it was."""
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT state, node, fence FROM media_files WHERE id=?" + self.db.for_update,  # noqa: S608 - our own SQL
                (job_id,),
            ).fetchone()
            fence = self._fence(job_id)
            if (
                row is None
                or row[0] not in _RUNNING_VALUES
                or (row[1], row[2])
                != (
                    self.node,
                    fence,
                )
            ):
                self.forget(job_id)
                raise LeaseLost(f"job {job_id} is no longer {self.node}'s (fence {fence})")
            yield CommitGuard(self, db, job_id)
        self.forget(job_id)

    # -- requests ----------------------------------------------------------------------

    def retry(
        self, ids: list[int] | None = None, code: str | None = None
    ) -> tuple[list[int], list[dict[str, Any]]]:
        """Failed jobs (by id, or all with a failure code or category) back to the queue of
        the stage that failed them: (retried ids, [{id, why}] of those that were not)."""
        refused: list[dict[str, Any]] = []
        if ids is not None:
            targets = []
            for i in ids:
                job = self.get(i)
                if job is None:
                    refused.append({"id": i, "why": "no such job"})
                else:
                    targets.append(job)
        else:
            targets = [
                j
                for j in self.jobs(JobState.FAILED, 1_000_000)
                if j.failure and code in (j.failure["code"], j.failure["category"])
            ]
        done = []
        for job in targets:
            if job.state is not JobState.FAILED or job.failure is None:
                refused.append({"id": job.id, "why": f"not failed ({job.state.value})"})
                continue
            try:
                self._move(
                    job.id,
                    JobEvent.RETRY,
                    {
                        "attempts": 0,
                        "fail_category": None,
                        "fail_code": None,
                        "fail_message": None,
                        "fail_stage": None,
                    },
                    stage=job.failure["stage"],
                )
            except InvalidTransition as exc:
                refused.append({"id": job.id, "why": str(exc)})
                continue
            done.append(job.id)
        return done, refused

    def failure_codes(self) -> list[str]:
        """The failure codes and categories of the failed jobs now (what `retry` matches)."""
        rows = self.db.rows(
            "SELECT DISTINCT fail_code, fail_category FROM media_files WHERE state=?",
            (JobState.FAILED.value,),
        )
        return sorted({v for row in rows for v in row if v})

    def cancel_queued(self, job_id: int) -> bool:
        """Cancel a job waiting in a queue; False if it is not waiting (running or ended)."""
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT state FROM media_files WHERE id=?" + self.db.for_update,  # noqa: S608
                (job_id,),
            ).fetchone()
            if row is None or JobState(row[0]) not in QUEUED:
                return False
            state = JobState(row[0])
            db.execute(
                "UPDATE media_files SET state=?, fail_stage=?, fail_category='cancelled', "
                "fail_code='CANCELLED', fail_message='cancelled by request', updated=? WHERE id=?",
                (
                    job_transition(state, JobEvent.CANCEL).value,
                    stage_of(QUEUED[state]),
                    time.time(),
                    job_id,
                ),
            )
            return True


class CommitGuard:
    """The transaction of `Library.commit_guard`: `done(**fields)` records the commit."""

    def __init__(self, library: Library, db: Any, job_id: int) -> None:
        self._library, self._db, self._job = library, db, job_id

    def done(self, **fields: Any) -> JobState:
        sets = {**self._library._stored(fields), "attempts": 0, "pgid": None}
        return self._library._move_in(self._db, self._job, JobEvent.DONE, sets)


def _states_from(state: JobState) -> list[JobState]:
    order = [
        JobState.ANALYZED,
        JobState.CRF_SEARCHING,
        JobState.CRF_SEARCHED,
        JobState.ENCODING,
        JobState.ENCODED,
    ]
    return order[order.index(state) :]
