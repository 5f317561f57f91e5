"""The library's rows: what identifies a file, a job as the store holds it, and
the schema of both engines (see `pipecast.actors.cluster.Database`).

Pure data and one file read (`fingerprint`, which blocks for two 1 MiB reads
and raises OSError).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._job_states import RUNNING, JobState

__all__ = [
    "FIELDS",
    "IN_RUNNING",
    "MIGRATIONS",
    "RUNNING_VALUES",
    "Fingerprint",
    "Job",
    "fingerprint",
    "job_of",
    "locked_row",
]
# name "media" in schema_versions; `{id}` and `{real}` are the engine's types
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS media_files (
            id {id},
            path TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            size BIGINT NOT NULL,
            mtime_ns BIGINT NOT NULL,
            digest TEXT NOT NULL,
            probe TEXT,
            crf {real},
            output_path TEXT,
            output_size BIGINT,
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
            dev BIGINT,
            ino BIGINT,
            created {real} NOT NULL,
            updated {real} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS media_by_state ON media_files (state, id)",
        """CREATE TABLE IF NOT EXISTS crf_probes (
            id {id},
            job BIGINT NOT NULL,
            target {real} NOT NULL,
            crf {real} NOT NULL,
            mean {real} NOT NULL,
            worst {real} NOT NULL,
            p1 {real} NOT NULL,
            se {real} NOT NULL,
            percent {real} NOT NULL,
            seconds {real} NOT NULL,
            samples TEXT NOT NULL,
            cached INTEGER NOT NULL,
            created {real} NOT NULL,
            paired_with {real}
        )""",
        "CREATE INDEX IF NOT EXISTS crf_probes_by_job ON crf_probes (job, id)",
        """CREATE TABLE IF NOT EXISTS crf_cache (
            key TEXT PRIMARY KEY,
            result TEXT NOT NULL,
            created {real} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS media_by_output ON media_files (output_path)",
    ),
    # claims across nodes: the holder, its fencing number, its lease; a cancel asked
    # of whichever node holds the job
    2: (
        "ALTER TABLE media_files ADD COLUMN node TEXT",
        "ALTER TABLE media_files ADD COLUMN fence INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE media_files ADD COLUMN lease_until {real}",
        "ALTER TABLE media_files ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS media_by_lease ON media_files (state, lease_until)",
    ),
    # the nodes of a cluster: where each is reached, what it runs, when it was last seen
    3: (
        """CREATE TABLE IF NOT EXISTS cluster_nodes (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            sync TEXT NOT NULL,
            control TEXT NOT NULL,
            public_key TEXT,
            stages TEXT NOT NULL,
            started {real} NOT NULL,
            seen {real} NOT NULL
        )""",
    ),
}
# the running states (a job some node holds), and a WHERE clause that names them
RUNNING_VALUES = tuple(s.value for s in RUNNING)
IN_RUNNING = f"state IN ({', '.join('?' * len(RUNNING_VALUES))})"
FIELDS = (
    "id, path, state, size, mtime_ns, digest, probe, crf, output_path, output_size, encode, "
    "skip_reason, fail_stage, fail_category, fail_code, fail_message, attempts, commit_plan, "
    "commit_step, pgid, created, updated, search, dev, ino, node, fence, lease_until"
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
    node: str | None = None  # the node that holds the job (or held it last)
    fence: int = 0  # the holder's fencing number: grows with every claim
    lease_until: float | None = None  # while running: the holder's lease

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
            "node": self.node,
            "fence": self.fence,
            "lease_until": self.lease_until,
        }


def _loads(v: str | None) -> Any:
    return json.loads(v) if v else None


def job_of(r: tuple[Any, ...]) -> Job:
    """A row of `FIELDS` as a `Job`."""
    loads = _loads
    failure = (
        {"stage": r[12], "category": r[13], "code": r[14], "message": r[15]} if r[13] else None
    )
    return Job(
        r[0], r[1], JobState(r[2]), r[3], r[4], r[5], loads(r[6]), r[7], r[8], r[9],
        loads(r[10]), r[11], failure, r[16], loads(r[17]), r[18], r[19], r[20], r[21],
        loads(r[22]), r[23], r[24], r[25], int(r[26] or 0), r[27],
    )  # fmt: skip


def locked_row(db: Any, for_update: str, columns: str, job_id: int) -> tuple[Any, ...] | None:
    """`columns` of job `job_id`, its row locked until the caller's transaction ends
    (`for_update`: the engine's `Database.for_update`); None if there is no such job."""
    row: tuple[Any, ...] | None = db.execute(
        f"SELECT {columns} FROM media_files WHERE id=?{for_update}",  # noqa: S608 - ours only
        (job_id,),
    ).fetchone()
    return row
