"""The library roots: the only folders a node enqueues from, reads, and replaces in.

A path is resolved once, at enqueue (every symlink and `..` followed), and
kept only if what it resolves to lies under a root, itself resolved when the
node starts: a symlink in a user's folder that points into a folder the node
may read but the user may not is refused with `outside_roots`, and the job
records the resolved path, so no later step follows a link it did not check.
`within` is pure; `resolve_within` and `check_still_within` touch the
filesystem (the caller's thread; each blocks for a few `stat`s).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipecast.transport import BadRequest, ErrorType, PipecastError

from ._job_states import MediaFailure

__all__ = ["OutsideRoots", "check_still_within", "resolve_roots", "resolve_within", "within"]

MAX_ROOTS = 64


class OutsideRoots(PipecastError):
    """A path that does not resolve to a place under the library roots."""

    wire_type = ErrorType.OUTSIDE_ROOTS


def within(resolved: str, roots: tuple[str, ...]) -> bool:
    """Is the resolved absolute path `resolved` one of `roots` or under one? Pure;
    `roots` are resolved absolute paths too. `/srv/a` does not hold `/srv/ab`."""
    for root in roots:
        base = root.rstrip("/") or "/"
        if resolved == base or resolved.startswith(base if base == "/" else base + "/"):
            return True
    return False


def resolve_roots(roots: tuple[str, ...]) -> tuple[str, ...]:
    """The configured roots, resolved; `BadRequest` naming one that is not an existing
    folder given by an absolute path. At node start."""
    if len(roots) > MAX_ROOTS:
        raise BadRequest(f"at most {MAX_ROOTS} library roots")
    out = []
    for root in roots:
        if not Path(root).is_absolute():
            raise BadRequest(f"library root {root!r} is not an absolute path")
        resolved = os.path.realpath(root)
        if not Path(resolved).is_dir():
            raise BadRequest(f"library root {root!r} is not a folder")
        out.append(resolved)
    return tuple(out)


def resolve_within(path: str, roots: tuple[str, ...]) -> str:
    """`path` resolved, if that lies under a root; else `OutsideRoots` saying why."""
    if not roots:
        raise OutsideRoots(
            "this node has no library roots: set [media] roots in its config, "
            "or start it with --root FOLDER"
        )
    resolved = os.path.realpath(path)
    if not within(resolved, roots):
        shown = path if resolved == path else f"{path} (which resolves to {resolved})"
        raise OutsideRoots(f"{shown} is not under the library roots {', '.join(roots)}")
    return resolved


def check_still_within(path: str, roots: tuple[str, ...]) -> None:
    """Before a job reads or replaces `path` (resolved at enqueue): it still resolves to
    itself under a root, so no folder on the way was swapped for a link since. A
    `MediaFailure` (`source_changed`) if not."""
    if os.path.realpath(path) != path or not within(path, roots):
        raise MediaFailure(
            "source_changed",
            "OUTSIDE_ROOTS",
            f"{path} no longer resolves to itself under the library roots",
        )
