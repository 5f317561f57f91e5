"""Shared storage seen at different places on different nodes: path mapping. Pure.

Nodes of a cluster share one library folder, mounted wherever each machine
mounts it (`/mnt/media` here, `/srv/media` there). The store records every
path in its shared form (`/media/...`); each node maps between that and its
own mount with a table from its config:

    [paths]
    "/mnt/media" = "/media"      # this node's folder = the shared name

A path maps through the longest local folder that holds it, component by
component (`/mnt/media2` is not under `/mnt/media`). A path that no entry
holds maps nowhere: `Unmapped`, and the node refuses to enqueue it, since no
other node could find it. With no table, paths are shared as they are (one
node, or every node mounting at the same place).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from pipecast.transport import BadRequest

__all__ = ["PathMap", "Unmapped"]


class Unmapped(BadRequest):
    """A path under no folder of the node's path table: no other node could reach it."""


def _folder(text: str, what: str) -> PurePosixPath:
    path = PurePosixPath(text)
    if not path.is_absolute() or ".." in path.parts or str(path) != text.rstrip("/") or text == "/":
        raise BadRequest(f"{what} {text!r} must be an absolute, normal folder path, not /")
    return path


@dataclass(frozen=True, slots=True)
class PathMap:
    """(local folder, shared folder) pairs, longest local first (see module docstring)."""

    entries: tuple[tuple[PurePosixPath, PurePosixPath], ...] = ()

    @classmethod
    def from_table(cls, table: Mapping[str, str]) -> PathMap:
        """From the config's `[paths]` table; `BadRequest` for a folder that is not an
        absolute normal path, or two entries that claim one folder on either side."""
        pairs = [
            (_folder(k, "local folder"), _folder(v, "shared folder")) for k, v in table.items()
        ]
        for side, name in ((0, "local"), (1, "shared")):
            seen = [p[side] for p in pairs]
            if len(set(seen)) != len(seen):
                raise BadRequest(f"two [paths] entries name the same {name} folder")
        pairs.sort(key=lambda p: len(p[0].parts), reverse=True)
        return cls(tuple(pairs))

    def to_shared(self, local: str) -> str:
        """The shared form of a path of this node; `Unmapped` if no entry holds it."""
        return self._map(local, 0, 1)

    def to_local(self, shared: str) -> str:
        """Where this node finds a shared path; `Unmapped` if no entry holds it."""
        return self._map(shared, 1, 0)

    def _map(self, text: str, src: int, dst: int) -> str:
        if not self.entries:
            return text
        path = PurePosixPath(text)
        best = None
        for pair in self.entries:
            holds = path == pair[src] or pair[src] in path.parents
            if holds and (best is None or len(pair[src].parts) > len(best[src].parts)):
                best = pair
        if best is None:
            side = "this node's" if src == 0 else "the shared"
            raise Unmapped(f"{text} is under none of {side} folders in [paths]")
        return str(best[dst] / path.relative_to(best[src]))
