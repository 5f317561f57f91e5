"""The `analyze` stage: the media pipeline's entry.

Enqueue goes to it: it expands folders into video files (leaving out
pipecast's own temporary files and outputs) and adds them to the library;
then it inspects each file (container, duration, streams) and skips it or
hands it on. Runs in the stage's thread; an inspection blocks for
milliseconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipecast.actors.runtime import WorkItem
from pipecast.transport import BadRequest

from ._config import VIDEO_EXTENSIONS, is_ours
from ._inspect import inspect_media
from ._job_states import JobState
from ._stage import MediaStage

__all__ = ["AnalyzeStage"]


class AnalyzeStage(MediaStage):
    """Probes each file: duration, container, streams; skips or passes it on."""

    RUNNING_STATE = JobState.ANALYZING

    def queue_add(self, payloads: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        files, ignored = self._expand(payloads)
        out: dict[str, Any] = {"stage": self.actor_name, "ids": [], "ignored": ignored}
        counts = {"added": 0, "known": 0, "rescanned": 0}
        for path in files:
            try:
                what, job_id = self.library.add(path)
            except OSError as exc:
                ignored.append({"path": path, "why": f"unreadable: {exc.strerror}"})
                continue
            counts[what] += 1
            if what != "known":
                out["ids"].append(job_id)
        return {**out, **counts}

    def _expand(
        self, payloads: tuple[dict[str, Any], ...]
    ) -> tuple[list[str], list[dict[str, str]]]:
        """Files to add (absolute), and what was left out and why. Refuses missing paths."""
        missing = [p["path"] for p in payloads if not os.path.exists(p["path"])]  # noqa: PTH110
        if missing:
            raise BadRequest(f"no such file or folder: {', '.join(missing[:5])}")
        files: list[str] = []
        ignored: list[dict[str, str]] = []
        for p in payloads:
            root = Path(p["path"]).resolve()
            if root.is_dir():
                walker = root.rglob("*") if p.get("recursive") else root.iterdir()
                candidates = sorted(c for c in walker if c.is_file())
                candidates = [c for c in candidates if c.suffix.lower() in VIDEO_EXTENSIONS]
            else:
                candidates = [root]
            for c in candidates:
                if is_ours(c.name):
                    ignored.append({"path": str(c), "why": "a pipecast temp file"})
                elif self.library.is_output(str(c)):
                    ignored.append({"path": str(c), "why": "a pipecast output"})
                else:
                    files.append(str(c))
        return files, ignored

    def advance(self, item: WorkItem) -> dict[str, Any] | None:
        path = item.payload["path"]
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
