"""The commit protocol carried out on real files, fsync included (see _commit_plan).

`commit(plan, journal, record, guard)` runs in the encoder stage's thread and
blocks for the copy and the fsyncs. `journal(step)` persists each step before
the next one starts. The new file is put in place inside `with guard() as
held:`, and `record(held)` persists the commit in that same block: in a
cluster the guard is a transaction holding the job's row after checking this
node still holds the job (`Library.commit_guard`), so a node whose hold was
lost never swaps a file. An `OSError` (or a lost hold) before the new file is
placed removes our files (the original never moved) and is raised as a
`MediaFailure` (`conflict` when the final path is taken by a file that is not
ours, else `commit` with the errno name), a lost hold as itself. Once the file
is placed, an error (the store gone before the record) is raised as
`PlacedNotRecorded`: nothing is removed, and `recover` decides from the files.
`recover(plan, committed, record)` finishes or rolls back a commit a crash
interrupted.

For fault-injection tests, `PIPECAST_CRASH_AT=<step>` makes the process kill
itself with SIGKILL right after that step (copied, backed_up, placed,
recorded, cleaned): a real crash at a chosen point, nothing simulated;
`PIPECAST_STOP_AT=<step>` stops it there with SIGSTOP (a node frozen mid-commit
until it gets SIGCONT).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pipecast.transport import PipecastError

from ._commit_plan import Action, CommitPlan, Facts, recovery
from ._job_states import MediaFailure

__all__ = ["PlacedNotRecorded", "commit", "facts_of", "fsync_dir", "recover"]


class PlacedNotRecorded(PipecastError):
    """The new file is in place but the store did not record it: `recover` settles it."""


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crash_point(step: str) -> None:
    if os.environ.get("PIPECAST_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("PIPECAST_STOP_AT") == step:  # a node frozen mid-commit (SIGCONT)
        os.kill(os.getpid(), signal.SIGSTOP)


def _copy_synced(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "xb") as fout:  # noqa: PTH123 - fds for fsync
        shutil.copyfileobj(fin, fout, 4 * 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())
    if os.path.getsize(dst) != os.path.getsize(src):  # noqa: PTH202
        raise OSError(errno.EIO, f"copy of {src} is incomplete")


def commit(
    plan: CommitPlan,
    journal: Callable[[str], None],
    record: Callable[[Any], None],
    guard: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
) -> None:
    """Steps 1-5 of the protocol; raises `MediaFailure` or `LeaseLost` having undone
    what it could, or `PlacedNotRecorded` (see module docstring)."""
    directory = str(Path(plan.final).parent)
    placed = False
    try:
        for leftover in (plan.tmp, plan.backup):  # ours, from an earlier attempt
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)  # noqa: PTH108
        _copy_synced(plan.partial, plan.tmp)
        fsync_dir(directory)
        journal("copied")
        _crash_point("copied")
        if plan.backup is not None:
            os.link(plan.source, plan.backup)
            fsync_dir(directory)
            journal("backed_up")
            _crash_point("backed_up")
        with guard() as held:
            if plan.final == plan.source:
                os.rename(plan.tmp, plan.final)  # atomic: the original, then the new file  # noqa: PTH104
            else:
                os.link(plan.tmp, plan.final)  # EEXIST rather than overwrite anything
            placed = True
            fsync_dir(directory)
            _crash_point("placed")
            record(held)
    except (OSError, PipecastError) as exc:  # a lost hold (LeaseLost) among them
        if placed:
            raise PlacedNotRecorded(f"{plan.final} is in place, not recorded: {exc}") from exc
        _remove_ours(plan)
        if not isinstance(exc, OSError):
            raise
        code = errno.errorcode.get(exc.errno or 0, "EIO")
        if exc.errno == errno.EEXIST:
            raise MediaFailure(
                "conflict", "EEXIST", f"{plan.final} exists and is not ours; nothing was replaced"
            ) from None
        raise MediaFailure("commit", code, f"commit failed, original kept: {exc}") from None
    _crash_point("recorded")
    _cleanup(plan)
    _crash_point("cleaned")


def _remove_ours(plan: CommitPlan) -> None:
    """Before the placement the original never moved: drop the temp file and backup."""
    for ours in (plan.tmp, plan.backup):
        if ours is not None:
            with contextlib.suppress(OSError):
                os.unlink(ours)  # noqa: PTH108


def _cleanup(plan: CommitPlan) -> None:
    paths = [plan.tmp, plan.backup, plan.partial]
    if plan.replace and plan.final != plan.source:
        paths.append(plan.source)  # replaced by a file with another extension
    for path in paths:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # noqa: PTH108
    fsync_dir(Path(plan.final).parent)


def facts_of(plan: CommitPlan) -> Facts:
    def exists(p: str | None) -> bool:
        return p is not None and os.path.lexists(p)

    def same(a: str | None, b: str | None) -> bool:
        if not (exists(a) and exists(b)):
            return False
        assert a is not None
        assert b is not None
        sa, sb = os.stat(a), os.stat(b)  # noqa: PTH116
        return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)

    return Facts(
        source=exists(plan.source),
        final=exists(plan.final),
        tmp=exists(plan.tmp),
        backup=exists(plan.backup),
        final_is_tmp=same(plan.final, plan.tmp),
        final_is_backup=same(plan.final, plan.backup),
    )


def recover(plan: CommitPlan, committed: bool, record: Callable[[], None]) -> bool:
    """Finish or roll back an interrupted commit; True if the job ended encoded."""
    done = False
    for action in recovery(plan, facts_of(plan), committed):
        if action is Action.RECORD_COMMIT:
            record()
        elif action is Action.DONE:
            done = True
        # a file already gone was removed by another node finishing the same cleanup
        with contextlib.suppress(FileNotFoundError):
            if action is Action.RESTORE_BACKUP and plan.backup is not None:
                os.rename(plan.backup, plan.source)  # noqa: PTH104
            elif action is Action.REMOVE_TMP:
                os.unlink(plan.tmp)  # noqa: PTH108
            elif action is Action.REMOVE_BACKUP and plan.backup is not None:
                os.unlink(plan.backup)  # noqa: PTH108
            elif action is Action.REMOVE_SOURCE:
                os.unlink(plan.source)  # noqa: PTH108
            elif action is Action.REMOVE_PARTIAL:
                os.unlink(plan.partial)  # noqa: PTH108
    with contextlib.suppress(OSError):
        fsync_dir(Path(plan.final).parent)
    return done
