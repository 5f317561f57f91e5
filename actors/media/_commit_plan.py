"""The commit protocol's paths and its crash recovery, as pure decisions.

A verified encode is committed in steps such that the final path holds,
at every instant, either the original or the complete new file:

1. copy the partial (work dir, maybe another filesystem) to a temp file beside
   the final path, fsync it and the directory (`copied`);
2. replace mode only: hard-link the original to a backup name (`backed_up`);
   the original stays where it is;
3. put the new file in place (`placed`): over the original with one atomic
   rename when the name is the same (replace mode), else by hard-linking the
   temp file to the final path, which fails if anything is there, so an
   unrelated file is never overwritten; fsync the directory;
4. record the commit in the store (`committed`);
5. remove the temp file, the backup and, in replace mode with a new
   extension, the original's old name.

The source is never modified before step 3, and in keep mode never at all.
`recovery(plan, facts, committed)` decides, from what is on disk after a
crash at any point, whether the new file was placed (finish: record, clean
up) or not (roll back: remove our files; the original never moved), so a
restart ends with none of our temp files left.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import PurePath

__all__ = ["Action", "CommitPlan", "Facts", "plan_commit", "recovery"]


@dataclass(frozen=True, slots=True)
class CommitPlan:
    source: str
    final: str
    tmp: str
    backup: str | None  # replace mode: where the original waits until the commit
    partial: str

    @property
    def replace(self) -> bool:
        return self.backup is not None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "source": self.source,
            "final": self.final,
            "tmp": self.tmp,
            "backup": self.backup,
            "partial": self.partial,
        }


def plan_commit(
    source: str, partial: str, job_id: int | str, replace: bool, suffix: str, ext: str = ".mkv"
) -> CommitPlan:
    """Where each file goes. Keep mode: `<stem><suffix><ext>` beside the source.

    `job_id` names our temp files; a cluster gives the job's fence with it
    (`"7-3"`), so the files of a stale attempt are never those of the next."""
    src = PurePath(source)
    final = src.with_suffix(ext) if replace else src.with_name(f"{src.stem}{suffix}{ext}")
    tmp = src.with_name(f".{final.name}.{job_id}.pipecast-tmp")
    backup = src.with_name(f".{src.name}.{job_id}.pipecast-orig") if replace else None
    return CommitPlan(
        str(src), str(final), str(tmp), None if backup is None else str(backup), partial
    )


@dataclass(frozen=True, slots=True)
class Facts:
    """What is on disk: does each path exist; which inode is at the final path."""

    source: bool
    final: bool
    tmp: bool
    backup: bool
    final_is_tmp: bool
    final_is_backup: bool = False


class Action(enum.Enum):
    RECORD_COMMIT = "record_commit"  # the new file is in place: say so in the store
    RESTORE_BACKUP = "restore_backup"  # rename the backup back to the source path
    REMOVE_SOURCE = "remove_source"  # replace mode, new extension: the original's old name
    REMOVE_TMP = "remove_tmp"
    REMOVE_BACKUP = "remove_backup"
    REMOVE_PARTIAL = "remove_partial"
    ROLLED_BACK = "rolled_back"  # outcome marker: the job goes back to be encoded again
    DONE = "done"  # outcome marker: the job is encoded


def recovery(plan: CommitPlan, facts: Facts, committed: bool) -> list[Action]:
    """What to do after a crash mid-commit (see module docstring)."""
    if plan.replace and plan.final == plan.source:
        # renamed over the original: placed once the final path is no longer the original
        placed = facts.final and facts.backup and not facts.final_is_backup
    else:
        placed = facts.final and facts.final_is_tmp
    if committed or placed:
        out = [] if committed else [Action.RECORD_COMMIT]
        if facts.tmp:
            out.append(Action.REMOVE_TMP)
        if plan.replace and facts.backup:
            out.append(Action.REMOVE_BACKUP)
        if plan.replace and plan.final != plan.source and facts.source:
            out.append(Action.REMOVE_SOURCE)
        return [*out, Action.REMOVE_PARTIAL, Action.DONE]
    out = []
    if plan.replace and facts.backup:
        # the backup is a second name of the original: drop it, or bring it back
        out.append(Action.REMOVE_BACKUP if facts.source else Action.RESTORE_BACKUP)
    if facts.tmp:
        out.append(Action.REMOVE_TMP)
    return [*out, Action.REMOVE_PARTIAL, Action.ROLLED_BACK]
