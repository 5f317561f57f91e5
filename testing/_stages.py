"""A small real stage for harnesses: `ChecksumStage` hashes files in steps.

It exercises everything the stage base does (the durable queue, pause,
drain, status and progress) without media: `start_test_node` registers it
as the stage kind `checksum`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, BinaryIO

from pipecast.actors import Stage, WorkItem
from pipecast.transport import BadRequest

__all__ = ["ChecksumStage"]


class ChecksumStage(Stage):
    """A real stage: SHA-256 of files, read in steps of `step_bytes`.

    Payload: {"path": str}. Result: {"sha256": hex, "bytes": n}.
    """

    OPTIONS = frozenset({"step_bytes"})

    def __init__(self, *, step_bytes: int = 4 * 1024 * 1024, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if type(step_bytes) is not int or step_bytes < 1:
            raise BadRequest("step_bytes must be an int >= 1")
        self.step_bytes = step_bytes
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._read = 0

    def begin_item(self, item: WorkItem) -> None:
        path = item.payload.get("path")
        if type(path) is not str:
            raise BadRequest("checksum item needs a string 'path'")
        p = Path(path)
        self._size = p.stat().st_size
        self._file = p.open("rb")
        self._hash = hashlib.sha256()
        self._read = 0

    def advance(self, item: WorkItem) -> dict[str, Any] | None:
        assert self._file is not None
        chunk = self._file.read(self.step_bytes)
        self._hash.update(chunk)
        self._read += len(chunk)
        self.progress = self._read / self._size if self._size else 1.0
        self.detail = {"bytes": self._read, "size": self._size}
        if chunk and self._read < self._size:
            return None
        return {"sha256": self._hash.hexdigest(), "bytes": self._read}

    def end_item(self, item: WorkItem) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
