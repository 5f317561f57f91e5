"""Progress of one ffmpeg job: percent by frames, fps, eta, stall detection. Pure.

Fed ffmpeg's `-progress` blocks and suspend/resume marks with the time
passed in (monotonic seconds). Suspended time is excluded everywhere: from
the elapsed time that fps and eta are computed from, and from the stall
clock, so a suspended job is never declared stalled. Percent never goes
backwards and stays within 0-100.
"""

from __future__ import annotations

import contextlib

__all__ = ["EncodeProgress"]


class EncodeProgress:
    def __init__(self, total_frames: int, stall_timeout: float, now: float) -> None:
        self.total = max(0, total_frames)
        self.stall_timeout = stall_timeout
        self.frames = 0
        self.percent = 0.0
        self.speed: float | None = None
        self.ended = False
        self._started = now
        self._paused_total = 0.0
        self._paused_since: float | None = None
        self._last_gain = now  # when frames last increased (active time reference)
        self._paused_at_gain = 0.0  # paused total when frames last increased

    # -- feeding ---------------------------------------------------------------

    def update(self, fields: dict[str, str], now: float) -> None:
        try:
            frame = int(fields.get("frame", "0"))
        except ValueError:
            frame = self.frames
        if frame > self.frames:
            self.frames = frame
            self._last_gain = now
            self._paused_at_gain = self._paused(now)
        speed = fields.get("speed", "").rstrip("x")
        with contextlib.suppress(ValueError):
            self.speed = float(speed) if speed and speed != "N/A" else self.speed
        if fields.get("progress") == "end":
            self.ended = True
        # the total is an estimate (duration x fps: 193 for a clip of 192 frames
        # whose audio runs 40 ms longer); a dashboard must not show a finished
        # job at 192/193, nor a running one at 210/200
        if self.ended and self.frames:
            self.total = self.frames
        elif self.total:
            self.total = max(self.total, self.frames)
        if self.total:
            pct = min(100.0, 100.0 * self.frames / self.total)
        else:
            pct = 100.0 if self.ended else self.percent
        if self.ended:
            pct = 100.0
        self.percent = max(self.percent, round(pct, 2))

    def suspend(self, now: float) -> None:
        if self._paused_since is None:
            self._paused_since = now

    def resume(self, now: float) -> None:
        if self._paused_since is not None:
            self._paused_total += now - self._paused_since
            self._paused_since = None

    # -- reading ---------------------------------------------------------------

    def _paused(self, now: float) -> float:
        extra = now - self._paused_since if self._paused_since is not None else 0.0
        return self._paused_total + extra

    def active(self, now: float) -> float:
        """Seconds of work so far, suspended time excluded."""
        return max(0.0, now - self._started - self._paused(now))

    def fps(self, now: float) -> float:
        active = self.active(now)
        return self.frames / active if active > 0 else 0.0

    def eta(self, now: float) -> float | None:
        fps = self.fps(now)
        if not self.total or fps <= 0:
            return None
        return max(0.0, (self.total - self.frames) / fps)

    def stalled(self, now: float) -> bool:
        """No frame gained for `stall_timeout` seconds of unsuspended time."""
        if self._paused_since is not None or self.ended:
            return False
        quiet = (now - self._last_gain) - (self._paused(now) - self._paused_at_gain)
        return quiet > self.stall_timeout

    def as_dict(self, now: float) -> dict[str, float | int | None]:
        eta = self.eta(now)
        return {
            "frames": self.frames,
            "total_frames": self.total,
            "percent": self.percent,
            "fps": round(self.fps(now), 2),
            "speed": self.speed,
            "eta": None if eta is None else round(eta, 1),
            "active_seconds": round(self.active(now), 2),
        }
