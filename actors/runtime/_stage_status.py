"""Stage status and its transitions: one pure table, so the button never lies.

A stage's status changes only through `transition()`; the stage actor
persists "paused-ness" from the result and publishes it in the same update as
its progress. Pausing drains: the current item finishes (`pausing`), then the
stage is `paused` and starts nothing new until resumed. Suspending stops the
current item where it is (`suspended`: its processes get SIGSTOP); resuming
continues it. Both are persisted as "held", so a restart comes up paused.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

__all__ = ["StageEvent", "StageStatistics", "StageStatus", "Velocity", "transition"]


class StageStatus(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    SUSPENDED = "suspended"  # the current item's processes are stopped (SIGSTOP)
    STOPPING = "stopping"
    FAILED = "failed"

    @property
    def held(self) -> bool:
        """True when the stage was asked to pause and has not been resumed."""
        return self in (StageStatus.PAUSING, StageStatus.PAUSED, StageStatus.SUSPENDED)


class StageEvent(enum.Enum):
    PAUSE = "pause"
    SUSPEND = "suspend"
    RESUME = "resume"
    TOGGLE = "toggle"
    ITEM_STARTED = "item_started"
    ITEM_ENDED = "item_ended"
    QUEUE_EMPTY = "queue_empty"
    STOP = "stop"
    FAIL = "fail"


S, E = StageStatus, StageEvent

_TABLE: dict[tuple[StageStatus, StageEvent], StageStatus] = {
    (S.IDLE, E.PAUSE): S.PAUSED,
    (S.RUNNING, E.PAUSE): S.PAUSING,
    (S.PAUSING, E.RESUME): S.RUNNING,
    (S.PAUSED, E.RESUME): S.IDLE,
    (S.IDLE, E.ITEM_STARTED): S.RUNNING,
    (S.PAUSING, E.ITEM_ENDED): S.PAUSED,
    (S.RUNNING, E.QUEUE_EMPTY): S.IDLE,
    # suspend: stop the current item's processes where they are (nothing to
    # stop when idle or paused: then it is a pause); resume continues them
    (S.RUNNING, E.SUSPEND): S.SUSPENDED,
    (S.PAUSING, E.SUSPEND): S.SUSPENDED,
    (S.IDLE, E.SUSPEND): S.PAUSED,
    (S.SUSPENDED, E.RESUME): S.RUNNING,
    (S.SUSPENDED, E.ITEM_ENDED): S.PAUSED,  # e.g. cancelled while suspended
}


def transition(status: StageStatus, event: StageEvent) -> StageStatus:
    """The status after `event`; unchanged where the event means nothing.

    Terminal states: `stopping` ignores everything; `failed` only leaves by a
    restart (a new incarnation), never by an event.
    """
    if status in (S.STOPPING, S.FAILED):
        return status
    if event is E.STOP:
        return S.STOPPING
    if event is E.FAIL:
        return S.FAILED
    if event is E.TOGGLE:
        event = E.RESUME if status.held else E.PAUSE
    return _TABLE.get((status, event), status)


@dataclass(frozen=True, slots=True)
class StageStatistics:
    """What every stage counts since it started (its part of the `stats` op)."""

    steps: int  # advance() calls
    items_ended: int  # items done, skipped or failed
    busy_seconds: float  # time spent inside advance()
    mean_step_ms: float | None  # None before the first step


class Velocity:
    """Items per hour over a rolling window. Pure: pass `now` in (seconds)."""

    def __init__(self, window: float = 600.0) -> None:
        self.window = window
        self._ends: deque[float] = deque()
        self._started: float | None = None

    def started(self, now: float) -> None:
        if self._started is None:
            self._started = now

    def item_done(self, now: float) -> None:
        self._ends.append(now)

    def per_hour(self, now: float) -> float:
        ends = self._ends
        while ends and now - ends[0] > self.window:
            ends.popleft()
        if not ends or self._started is None:
            return 0.0
        # at least a minute, so one quick item does not read as thousands an hour
        span = min(self.window, max(now - self._started, 60.0))
        return len(ends) * 3600.0 / span
