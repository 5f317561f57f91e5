"""The commit protocol's recovery plan: a crash at any step leaves the original or the new file."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pipecast.actors.media import (
    Action,
    Facts,
    is_ours,
    plan_commit,
    recovery,
)

# -- the commit protocol's recovery ------------------------------------------------------------


class Disk:
    """A model filesystem: path -> (inode, content)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, str]] = {}
        self.inodes = itertools.count(1)

    def write(self, path: str, content: str) -> None:
        self.files[path] = (next(self.inodes), content)

    def rename(self, a: str, b: str) -> None:
        self.files[b] = self.files.pop(a)

    def link(self, a: str, b: str) -> None:
        assert b not in self.files
        self.files[b] = self.files[a]

    def unlink(self, p: str) -> None:
        self.files.pop(p, None)


STEPS = [
    "start",
    "copied",
    "backed_up",
    "placed",
    "recorded",
    "tmp_gone",
    "backup_gone",
    "source_gone",
    "done",
]


def steps_of(plan: Any) -> list[str]:
    skip = set() if plan.replace else {"backed_up", "backup_gone"}
    if not (plan.replace and plan.final != plan.source):
        skip.add("source_gone")
    return [s for s in STEPS if s not in skip]


def run_commit_until(disk: Disk, plan: Any, stop: str) -> bool:
    """The protocol's steps on the model disk up to `stop`; returns whether it recorded.

    Checks on the way that the final path of a same-name replace is never empty.
    """
    order = steps_of(plan)
    for step in order[1 : order.index(stop) + 1]:
        if step == "copied":
            disk.files[plan.tmp] = (next(disk.inodes), "new")
        elif step == "backed_up":
            disk.link(plan.source, plan.backup)
        elif step == "placed":
            if plan.final == plan.source:
                disk.rename(plan.tmp, plan.final)
            else:
                disk.link(plan.tmp, plan.final)
        elif step == "tmp_gone":
            disk.unlink(plan.tmp)
        elif step == "backup_gone":
            disk.unlink(plan.backup)
        elif step == "source_gone":
            disk.unlink(plan.source)
        if plan.final == plan.source:
            assert plan.final in disk.files, f"nothing at the final path after {step}"
    return order.index(stop) >= order.index("recorded")


@pytest.mark.parametrize("replace_mode", [False, True])
@pytest.mark.parametrize("same_ext", [True, False])
@pytest.mark.parametrize("stop", STEPS)
def test_a_crash_at_any_commit_step_leaves_the_original_or_the_new_file_never_neither(
    replace_mode: bool, same_ext: bool, stop: str
) -> None:
    source = "/lib/film.mkv" if same_ext else "/lib/film.mp4"
    plan = plan_commit(source, "/work/.7.pipecast-partial.mkv", 7, replace_mode, ".av1")
    if stop not in steps_of(plan):
        pytest.skip(f"no {stop} step in this mode")
    disk = Disk()
    disk.write(plan.source, "original")
    disk.write(plan.partial, "new")
    committed = run_commit_until(disk, plan, stop)

    def inode(p: str | None) -> int | None:
        return disk.files[p][0] if p is not None and p in disk.files else None

    facts = Facts(
        source=plan.source in disk.files,
        final=plan.final in disk.files,
        tmp=plan.tmp in disk.files,
        backup=plan.backup is not None and plan.backup in disk.files,
        final_is_tmp=inode(plan.final) is not None and inode(plan.final) == inode(plan.tmp),
        final_is_backup=inode(plan.final) is not None and inode(plan.final) == inode(plan.backup),
    )
    actions = recovery(plan, facts, committed)
    for action in actions:
        if action is Action.RESTORE_BACKUP:
            disk.rename(plan.backup, plan.source)
        elif action is Action.REMOVE_TMP:
            disk.unlink(plan.tmp)
        elif action is Action.REMOVE_BACKUP:
            disk.unlink(plan.backup)
        elif action is Action.REMOVE_SOURCE:
            disk.unlink(plan.source)
        elif action is Action.REMOVE_PARTIAL:
            disk.unlink(plan.partial)
    contents = {p: c for p, (_, c) in disk.files.items()}
    assert not any(is_ours(p.rsplit("/", 1)[1]) for p in contents), contents
    placed = steps_of(plan).index(stop) >= steps_of(plan).index("placed")
    assert (Action.DONE in actions) == placed  # decided by what is on disk, not by chance
    if placed:
        assert contents[plan.final] == "new"
        if not replace_mode:
            assert contents[plan.source] == "original"
        elif plan.final != plan.source:
            assert plan.source not in contents
        assert set(contents) == {plan.final, plan.source} - (
            {plan.source} if replace_mode and plan.final != plan.source else set()
        )
    else:
        assert Action.ROLLED_BACK in actions
        assert contents == {plan.source: "original"}


def test_a_final_path_taken_by_someone_else_is_never_claimed_in_recovery() -> None:
    plan = plan_commit("/lib/a.mkv", "/w/p", 3, False, ".av1")
    facts = Facts(source=True, final=True, tmp=True, backup=False, final_is_tmp=False)
    assert recovery(plan, facts, False) == [
        Action.REMOVE_TMP,
        Action.REMOVE_PARTIAL,
        Action.ROLLED_BACK,
    ]


def test_keep_mode_writes_beside_the_original_and_replace_mode_over_it() -> None:
    keep = plan_commit("/lib/a.mp4", "/w/p", 3, False, ".av1")
    assert (keep.final, keep.backup) == ("/lib/a.av1.mkv", None)
    swap = plan_commit("/lib/a.mkv", "/w/p", 3, True, ".av1")
    assert (swap.final, swap.backup) == ("/lib/a.mkv", "/lib/.a.mkv.3.pipecast-orig")
    assert is_ours(".a.av1.mkv.3.pipecast-tmp")
    assert is_ours(".3.pipecast-partial.mkv")
    assert not is_ours("a.pipecast-tmp")  # not hidden: not ours
    assert not is_ours("holiday.mkv")
