"""The media library in the store: one row per file, moved only by the job table.

Every state change goes through `job_transition` inside one transaction, so
the store never holds a state the table cannot explain, and a job is taken
by at most one stage (the take is one UPDATE of one row in a queued state).
Shared by the media stages; each calls it from its own thread (the store
gives each thread its own connection). Methods block on SQLite and raise
`StoreError`, or `InvalidTransition` for an event the job's state refuses.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from ._search_history import SearchHistory

__all__ = ["Fingerprint", "Job", "Library", "fingerprint"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS media_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    probe TEXT,
    crf REAL,
    output_path TEXT,
    output_size INTEGER,
    encode TEXT,
    search TEXT,
    skip_reason TEXT,
    fail_stage TEXT,
    fail_category TEXT,
    fail_code TEXT,
    fail_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    commit_plan TEXT,
    commit_step TEXT,
    pgid INTEGER,
    dev INTEGER,
    ino INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS media_by_state ON media_files (state, id);
CREATE TABLE IF NOT EXISTS crf_probes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job INTEGER NOT NULL,
    target REAL NOT NULL,
    crf REAL NOT NULL,
    mean REAL NOT NULL,
    worst REAL NOT NULL,
    p1 REAL NOT NULL,
    se REAL NOT NULL,
    percent REAL NOT NULL,
    seconds REAL NOT NULL,
    samples TEXT NOT NULL,
    cached INTEGER NOT NULL,
    created REAL NOT NULL,
    paired_with REAL  -- a partial probe's estimate came from the complete probe at this CRF
);
CREATE INDEX IF NOT EXISTS crf_probes_by_job ON crf_probes (job, id);
CREATE TABLE IF NOT EXISTS crf_cache (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS media_by_output ON media_files (output_path);
"""
_FIELDS = (
    "id, path, state, size, mtime_ns, digest, probe, crf, output_path, output_size, encode, "
    "skip_reason, fail_stage, fail_category, fail_code, fail_message, attempts, commit_plan, "
    "commit_step, pgid, created, updated, search, dev, ino"
)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identifies a file's content (size, digest) and the file itself (dev, ino)."""

    size: int
    mtime_ns: int
    digest: str  # sha256 of the first and last MiB
    dev: int
    ino: int


def fingerprint(path: str | Path, edge: int = 1024 * 1024) -> Fingerprint:
    """The file's `Fingerprint`; raises OSError.

    Only a regular file, and never through a symlink at `path` itself (ELOOP: the
    library holds resolved paths, so a link there was put there since): opened
    without blocking (a FIFO would wait forever for a writer; a device never
    ends), checked, and only then read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_kind(st.st_mode)})")
        h = hashlib.sha256(f.read(edge))
        if st.st_size > edge:
            f.seek(max(edge, st.st_size - edge))
            h.update(f.read(edge))
    return Fingerprint(st.st_size, st.st_mtime_ns, h.hexdigest(), st.st_dev, st.st_ino)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    path: str
    state: JobState
    size: int
    mtime_ns: int
    digest: str
    probe: dict[str, Any] | None
    crf: float | None
    output_path: str | None
    output_size: int | None
    encode: dict[str, Any] | None
    skip_reason: str | None
    failure: dict[str, str] | None
    attempts: int
    commit_plan: dict[str, Any] | None
    commit_step: str | None
    pgid: int | None
    created: float
    updated: float
    search: dict[str, Any] | None = None
    dev: int | None = None  # the file's identity when it was enqueued (None: before 0.8)
    ino: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "state": self.state.value,
            "size": self.size,
            "crf": self.crf,
            "output_path": self.output_path,
            "output_size": self.output_size,
            "skip_reason": self.skip_reason,
            "failure": self.failure,
            "attempts": self.attempts,
            "probe": self.probe,
            "encode": self.encode,
            "search": self.search,
            "updated": self.updated,
        }


def _loads(v: str | None) -> Any:
    return json.loads(v) if v else None


def _job(r: tuple[Any, ...]) -> Job:
    loads = _loads
    failure = (
        {"stage": r[12], "category": r[13], "code": r[14], "message": r[15]} if r[13] else None
    )
    return Job(
        r[0], r[1], JobState(r[2]), r[3], r[4], r[5], loads(r[6]), r[7], r[8], r[9],
        loads(r[10]), r[11], failure, r[16], loads(r[17]), r[18], r[19], r[20], r[21],
        loads(r[22]), r[23], r[24],
    )  # fmt: skip


class Library:
    """See module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(_SCHEMA)
        columns = {row[1] for row in store.connection().execute("PRAGMA table_info(crf_probes)")}
        if "paired_with" not in columns:  # a store written before probes were paired
            store.ensure_schema("ALTER TABLE crf_probes ADD COLUMN paired_with REAL;")
        columns = {row[1] for row in store.connection().execute("PRAGMA table_info(media_files)")}
        if "ino" not in columns:  # a store written before jobs knew their file's identity
            store.ensure_schema(
                "ALTER TABLE media_files ADD COLUMN dev INTEGER; "
                "ALTER TABLE media_files ADD COLUMN ino INTEGER;"
            )
        # what earlier CRF searches left: probes, cached samples, chosen CRFs and slopes
        self.searches = SearchHistory(store)

    # -- reading -------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        row = (
            self.store.connection()
            .execute(f"SELECT {_FIELDS} FROM media_files WHERE id=?", (job_id,))  # noqa: S608
            .fetchone()
        )
        return None if row is None else _job(row)

    def by_path(self, path: str) -> Job | None:
        row = (
            self.store.connection()
            .execute(f"SELECT {_FIELDS} FROM media_files WHERE path=?", (path,))  # noqa: S608
            .fetchone()
        )
        return None if row is None else _job(row)

    def is_output(self, path: str) -> bool:
        row = (
            self.store.connection()
            .execute("SELECT 1 FROM media_files WHERE output_path=? LIMIT 1", (path,))
            .fetchone()
        )
        return row is not None

    def jobs(self, state: JobState | None = None, limit: int = 1000) -> list[Job]:
        where, args = ("WHERE state=?", (state.value,)) if state else ("", ())
        rows = (
            self.store.connection()
            .execute(
                f"SELECT {_FIELDS} FROM media_files {where} ORDER BY id LIMIT ?",  # noqa: S608
                (*args, limit),
            )
            .fetchall()
        )
        return [_job(r) for r in rows]

    def unfinished_commits(self) -> list[Job]:
        """Encoded jobs whose commit was recorded but whose cleanup was not finished."""
        rows = (
            self.store.connection()
            .execute(
                f"SELECT {_FIELDS} FROM media_files WHERE state=? AND commit_plan IS NOT NULL",  # noqa: S608
                (JobState.ENCODED.value,),
            )
            .fetchall()
        )
        return [_job(r) for r in rows]

    def counts(self, running: JobState) -> dict[str, int]:
        """queue / running / done / skipped / failed of the stage whose running state this is."""
        queued, done = RUNNING[running]
        stage = stage_of(running)
        later = _states_from(done)
        rows = dict(
            self.store.connection()
            .execute("SELECT state, COUNT(*) FROM media_files GROUP BY state")
            .fetchall()
        )
        failed, skipped = (
            self.store.connection()
            .execute(
                "SELECT COALESCE(SUM(state='failed' AND fail_stage=?), 0), "
                "COALESCE(SUM(state='skipped' AND fail_stage=?), 0) FROM media_files",
                (stage, stage),
            )
            .fetchone()
        )
        return {
            "queued": rows.get(queued.value, 0),
            "running": rows.get(running.value, 0),
            "done": sum(rows.get(s.value, 0) for s in later),
            "skipped": int(skipped),
            "failed": int(failed),
        }

    def totals(self) -> dict[str, int]:
        """What the encodes did to the library: {encoded, bytes_before, bytes_after}."""
        encoded, before, after = (
            self.store.connection()
            .execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(output_size), 0) "
                "FROM media_files WHERE state=?",
                (JobState.ENCODED.value,),
            )
            .fetchone()
        )
        return {"encoded": encoded, "bytes_before": before, "bytes_after": after}

    # -- changing --------------------------------------------------------------------

    def add(self, path: str) -> tuple[str, int]:
        """Queue a file (by its resolved path) for analysis: ("added" | "known" |
        "rescanned", id). Idempotent."""
        fp = fingerprint(path)
        size, mtime_ns, digest = fp.size, fp.mtime_ns, fp.digest
        now = time.time()
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT id, state, size, mtime_ns, digest FROM media_files WHERE path=?", (path,)
            ).fetchone()
            if row is None:
                values = (path, JobState.NEEDS_ANALYSIS.value, size, mtime_ns, digest)
                cur = db.execute(
                    "INSERT INTO media_files (path, state, size, mtime_ns, digest, dev, ino, "
                    "created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, fp.dev, fp.ino, now, now),
                )
                return "added", int(cur.lastrowid or 0)
            job_id, state = row[0], JobState(row[1])
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

    def take(self, queued: JobState) -> Job | None:
        """Move the oldest job in `queued` to its running state; None if there is none."""
        running = QUEUED[queued]
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT id FROM media_files WHERE state=? ORDER BY id LIMIT 1", (queued.value,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE media_files SET state=?, attempts=attempts+1, updated=? WHERE id=?",
                (running.value, time.time(), row[0]),
            )
        return self.get(row[0])

    def _move(
        self, job_id: int, event: JobEvent, sets: dict[str, Any], stage: str | None = None
    ) -> JobState:
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT state, fail_stage FROM media_files WHERE id=?", (job_id,)
            ).fetchone()
            if row is None:
                raise InvalidTransition(f"no job {job_id}")
            target = job_transition(JobState(row[0]), event, stage or row[1])
            cols = ", ".join(f"{k}=?" for k in sets)
            db.execute(
                f"UPDATE media_files SET state=?, updated=?{', ' if cols else ''}{cols} WHERE id=?",  # noqa: S608
                (target.value, time.time(), *sets.values(), job_id),
            )
            return target

    def done(self, job_id: int, **fields: Any) -> JobState:
        sets = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in fields.items()}
        return self._move(job_id, JobEvent.DONE, {**sets, "attempts": 0, "pgid": None})

    def skip(self, job_id: int, stage: str, reason: str, **fields: Any) -> JobState:
        sets = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in fields.items()}
        return self._move(
            job_id,
            JobEvent.SKIP,
            {**sets, "skip_reason": reason, "fail_stage": stage, "pgid": None},
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
        """Journal fields of a running job (pgid, commit_plan, commit_step); no state change."""
        sets = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in fields.items()}
        cols = ", ".join(f"{k}=?" for k in sets)
        with self.store.transaction() as db:
            db.execute(
                f"UPDATE media_files SET {cols}, updated=? WHERE id=?",  # noqa: S608
                (*sets.values(), time.time(), job_id),
            )

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
        rows = self.store.connection().execute(
            "SELECT DISTINCT fail_code, fail_category FROM media_files WHERE state=?",
            (JobState.FAILED.value,),
        )
        return sorted({v for row in rows for v in row if v})

    def cancel_queued(self, job_id: int) -> bool:
        """Cancel a job waiting in a queue; False if it is not waiting (running or ended)."""
        with self.store.transaction() as db:
            row = db.execute("SELECT state FROM media_files WHERE id=?", (job_id,)).fetchone()
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


def _states_from(state: JobState) -> list[JobState]:
    order = [
        JobState.ANALYZED,
        JobState.CRF_SEARCHING,
        JobState.CRF_SEARCHED,
        JobState.ENCODING,
        JobState.ENCODED,
    ]
    return order[order.index(state) :]
