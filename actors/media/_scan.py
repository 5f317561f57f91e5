"""What an enqueue names, walked lazily: the candidate files one at a time.

An I/O shell (it lists folders), used by the analyze stage a slice at a
time so that a large tree never keeps the stage from answering. Files are
met in path order: each named file (if its name is a video's), then each
named folder's video files and, when recursive, its sub-folders', depth
first. Symlinked folders are not
followed (no loops, no walking out of the tree); a folder that cannot be
listed is reported, not fatal. At most `max_files` candidates per request:
past that the walk stops and says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._config import VIDEO_EXTENSIONS

__all__ = ["MAX_FILES", "Found", "Ignored", "walk"]

MAX_FILES = 100_000  # candidate files in one enqueue, folders walked included
_NAMES = ", ".join(sorted(VIDEO_EXTENSIONS))


@dataclass(frozen=True, slots=True)
class Found:
    """A file to add to the library."""

    path: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A path left out, and why."""

    path: str
    why: str


def _listing(folder: str) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def walk(
    payloads: tuple[Mapping[str, Any], ...], max_files: int = MAX_FILES
) -> Iterator[Found | Ignored]:
    """The candidates of `payloads` ({path, recursive}), lazily (see module docstring).

    Blocks only on listing one folder at a time; raises nothing for a folder
    or entry it cannot read.
    """
    count = 0
    for payload in payloads:
        root = Path(payload["path"]).resolve()
        if not root.is_dir():
            count += 1
            if count > max_files:
                yield Ignored(str(root), f"more than {max_files:,} files in one request")
                return
            if root.suffix.lower() not in VIDEO_EXTENSIONS:
                yield Ignored(str(root), f"not a video file name ({_NAMES})")
                continue
            yield Found(str(root))
            continue
        stack: list[Iterator[os.DirEntry[str]]] = []
        try:
            stack.append(iter(_listing(str(root))))
        except OSError as exc:
            yield Ignored(str(root), f"cannot list the folder: {exc.strerror}")
            continue
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if payload.get("recursive"):
                        stack.append(iter(_listing(entry.path)))
                    continue
                if not entry.is_file() or Path(entry.name).suffix.lower() not in VIDEO_EXTENSIONS:
                    continue
            except OSError as exc:
                yield Ignored(entry.path, f"cannot read it: {exc.strerror}")
                continue
            count += 1
            if count > max_files:
                yield Ignored(
                    str(root),
                    f"more than {max_files:,} files in one request: enqueue its sub-folders "
                    "one by one",
                )
                return
            yield Found(entry.path)
