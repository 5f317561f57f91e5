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

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from pipecast.actors.cluster import (
    Database,
    LeaseLost,
    PathMap,
    SqliteDatabase,
    Unmapped,
)
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
from ._library_holds import CommitGuard, LibraryHolds
from ._library_rows import (
    FIELDS,
    MIGRATIONS,
    RUNNING_VALUES,
    Fingerprint,
    Job,
    fingerprint,
    job_of,
    locked_row,
)
from ._node_registry import NodeRegistry
from ._search_history import SearchHistory

__all__ = ["CommitGuard", "Fingerprint", "Job", "Library", "fingerprint"]


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, dict) else v for k, v in fields.items()}


class Library(LibraryHolds):
    """See module docstring. `node` names this node in the rows it holds; `lease`
    is how long (seconds) a hold lasts without a renewal."""

    def __init__(
        self,
        db: Database | Store,
        node: str = "local",
        lease: float = 60.0,
        paths: PathMap | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self.db = SqliteDatabase(db) if isinstance(db, Store) else db
        self.node = node
        self.lease = lease
        # the store holds every path in its shared form; this node's are mapped
        self.paths = paths or PathMap()
        if self.db.engine == "sqlite":
            self._old_sqlite_columns()
        self.db.migrate("media", MIGRATIONS)
        # what earlier CRF searches left: probes, cached samples, chosen CRFs and slopes
        self.searches = SearchHistory(self.db, self.shared)
        # where the nodes sharing this store are reached (`cluster_nodes`)
        self.registry = NodeRegistry(self.db, node, clock)

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
            (JobState.ENCODED.value, self.node, self._clock() - stale_after),
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
        now = self._clock()
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
        row = locked_row(db, self.db.for_update, "state, fail_stage, node, fence", job_id)
        if row is None:
            raise InvalidTransition(f"no job {job_id}")
        with self._lock:
            fence = self._held.get(job_id)
        running = row[0] in RUNNING_VALUES
        if fence is not None and (not running or row[2] != self.node or row[3] != fence):
            self._lose(job_id)
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
            (target.value, self._clock(), *sets.values(), job_id),
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
                (*sets.values(), self._clock(), job_id, *args),
            ).fetchone()
        if fence and changed is None:
            self._lose(job_id)
            raise LeaseLost(f"job {job_id} is no longer {self.node}'s (fence {fence})")

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
            row = locked_row(db, self.db.for_update, "state", job_id)
            if row is None or JobState(row[0]) not in QUEUED:
                return False
            state = JobState(row[0])
            db.execute(
                "UPDATE media_files SET state=?, fail_stage=?, fail_category='cancelled', "
                "fail_code='CANCELLED', fail_message='cancelled by request', updated=? WHERE id=?",
                (
                    job_transition(state, JobEvent.CANCEL).value,
                    stage_of(QUEUED[state]),
                    self._clock(),
                    job_id,
                ),
            )
            return True


def _states_from(state: JobState) -> list[JobState]:
    order = [
        JobState.ANALYZED,
        JobState.CRF_SEARCHING,
        JobState.CRF_SEARCHED,
        JobState.ENCODING,
        JobState.ENCODED,
    ]
    return order[order.index(state) :]
