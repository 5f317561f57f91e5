"""The `analyze` stage: the media pipeline's entry.

Enqueue goes to it: it walks folders into video files (leaving out
pipecast's own temporary files and outputs) and adds them to the library,
in slices of 50 ms between its other messages, so a tree of a hundred
thousand files never keeps it from answering; the enqueue is answered when
the walk ends. Then it inspects each file (container, duration, streams)
and skips it or hands it on. Runs in the stage's thread; an inspection
blocks for milliseconds.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipecast.actors.runtime import Enqueue, WorkItem
from pipecast.transport import BadRequest, PipecastError

from ._config import is_ours
from ._inspect import inspect_media
from ._job_states import JobState
from ._roots import OutsideRoots, check_still_within, resolve_within, within
from ._scan import Found, Ignored, walk
from ._stage import MediaStage

__all__ = ["AnalyzeStage"]

log = logging.getLogger("pipecast.media")


_SLICE_SECONDS = 0.05  # of scanning an enqueue between other messages


class _ScanMore:
    __slots__ = ()


_SCAN_MORE = _ScanMore()


@dataclass(slots=True)
class _Scan:
    """One enqueue being walked: what it named, and what it has added so far."""

    message: Enqueue
    walk: Iterator[Found | Ignored]
    ids: list[int] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"added": 0, "known": 0, "rescanned": 0})


class AnalyzeStage(MediaStage):
    """Probes each file: duration, container, streams; skips or passes it on."""

    RUNNING_STATE = JobState.ANALYZING

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scans: deque[_Scan] = deque()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Enqueue):
            self._begin_scan(message)
        elif message is _SCAN_MORE:
            self._scan_slice()
        else:
            return super().on_receive(message)
        return None

    def _begin_scan(self, message: Enqueue) -> None:
        """Refuse the whole request if a path does not exist or does not resolve to a
        place under the library roots; else walk the resolved paths in slices."""
        missing = [p["path"] for p in message.payloads if not os.path.lexists(p["path"])]
        if missing:
            message.reply(BadRequest(f"no such file or folder: {', '.join(missing[:5])}"))
            return
        try:
            payloads = tuple(
                {**p, "path": resolve_within(p["path"], self.policy.roots)}
                for p in message.payloads
            )
        except OutsideRoots as exc:
            message.reply(exc)
            return
        self._scans.append(_Scan(message, walk(payloads)))
        if len(self._scans) == 1:
            self.actor_ref.tell(_SCAN_MORE)

    def _scan_slice(self) -> None:
        """Add candidates for up to `_SLICE_SECONDS`, then let other messages in."""
        scan = self._scans[0]
        deadline = time.monotonic() + _SLICE_SECONDS
        for found in scan.walk:
            self._take(scan, found)
            if time.monotonic() >= deadline:
                self.actor_ref.tell(_SCAN_MORE)
                return
        self._scans.popleft()
        result = {
            "stage": self.actor_name,
            "ids": scan.ids,
            "ignored": scan.ignored,
            **scan.counts,
        }
        log.info("%s: queued %s [cid=%s]", self.actor_name, scan.counts, scan.message.cid)
        scan.message.reply(result)
        self._counts = None
        self._publish(scan.message.cid)
        self._kick()
        if self._scans:
            self.actor_ref.tell(_SCAN_MORE)

    def _take(self, scan: _Scan, found: Found | Ignored) -> None:
        if isinstance(found, Ignored):
            scan.ignored.append({"path": found.path, "why": found.why})
            return
        path = os.path.realpath(found.path)  # a file in a walked folder may be a link
        if not within(path, self.policy.roots):
            scan.ignored.append(
                {"path": found.path, "why": f"resolves to {path}, outside the library roots"}
            )
        elif is_ours(Path(path).name):
            scan.ignored.append({"path": path, "why": "a pipecast temp file"})
        elif self.library.is_output(path):
            scan.ignored.append({"path": path, "why": "a pipecast output"})
        else:
            try:
                what, job_id = self.library.add(path)
            except OSError as exc:
                scan.ignored.append({"path": path, "why": f"unreadable: {exc.strerror}"})
                return
            except PipecastError as exc:  # the store refused: nothing of this file was kept
                scan.ignored.append({"path": path, "why": f"not added: {exc}"})
                return
            scan.counts[what] += 1
            if what != "known":
                scan.ids.append(job_id)

    def advance(self, item: WorkItem) -> dict[str, Any] | None:
        path = item.payload["path"]
        check_still_within(path, self.policy.roots)
        info = inspect_media(path)
        self.progress = 1.0
        video = info.video
        assert video is not None  # inspect_media() refuses files without video
        self.detail = {"container": info.container, "duration": info.duration, "video": video.codec}
        size = os.path.getsize(path)  # noqa: PTH202
        if video.codec == self.settings.codec:
            return {"outcome": "skipped", "reason": "already_target_codec", "probe": info.as_dict()}
        if size < self.policy.min_bytes:
            return {"outcome": "skipped", "reason": "too_small", "probe": info.as_dict()}
        return {"probe": info.as_dict()}
