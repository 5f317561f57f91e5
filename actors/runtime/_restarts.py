"""Restart intensity: how many failures a supervised child may have.

Pure: the supervisor passes the time in. Erlang's rule, as pykka lacks one: a
child may be restarted at most `max_restarts` times within any window of
`within` seconds; one more failure inside the window and it stays down, marked
failed, with the reason published.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from pipecast.transport import BadRequest

__all__ = ["Decision", "RestartPolicy", "RestartTracker"]


class Decision(enum.Enum):
    RESTART = "restart"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int = 3
    within: float = 5.0

    def __post_init__(self) -> None:
        if type(self.max_restarts) is not int or self.max_restarts < 0:
            raise BadRequest("max_restarts must be an int >= 0")
        if not self.within > 0:
            raise BadRequest("within must be > 0 seconds")


class RestartTracker:
    """Counts one child's failures in the sliding window of its policy."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._times: deque[float] = deque()
        self.restarts = 0

    def failed(self, now: float) -> Decision:
        """Record a failure at `now`; say whether to restart the child."""
        times = self._times
        while times and now - times[0] >= self.policy.within:
            times.popleft()
        if len(times) >= self.policy.max_restarts:
            return Decision.GIVE_UP
        times.append(now)
        self.restarts += 1
        return Decision.RESTART
