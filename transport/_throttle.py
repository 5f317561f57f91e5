"""Per-watcher throttling: at most N view changes a second, latest value wins. Pure.

A watcher's view always holds the latest state (conflation is free: the view
is the value), so throttling only decides when its owner is told. A change
offered too soon is held; `due(now)` says when the held change may go out,
and the count of changes folded into it is `skipped`. Lifecycle changes
(status, genesis, failures) are never held: they go out at once and carry
any held change with them.
"""

from __future__ import annotations

from ._errors import BadRequest

__all__ = ["Throttle"]


class Throttle:
    """Rate limit for one watcher's notifications (`max_per_second` None: off)."""

    __slots__ = ("_interval", "_last", "_pending", "skipped", "unlimited")

    def __init__(self, max_per_second: float | None = None) -> None:
        if max_per_second is not None and not (
            type(max_per_second) in (int, float) and max_per_second > 0
        ):
            raise BadRequest("max_per_second must be a positive number, or None for no limit")
        self._interval = 0.0 if max_per_second is None else 1.0 / max_per_second
        # no limit: every change is told at once and nothing is ever held
        self.unlimited = max_per_second is None
        self._last = float("-inf")
        self._pending = False
        self.skipped = 0  # changes folded into a later notification

    @property
    def pending(self) -> bool:
        return self._pending

    def offer(self, now: float, *, lifecycle: bool = False) -> bool:
        """A change happened at `now`: True if the owner is to be told now."""
        if lifecycle or now - self._last >= self._interval:
            if self._pending:
                self.skipped += 1  # the held change goes out folded into this one
            self._last = now
            self._pending = False
            return True
        if self._pending:
            self.skipped += 1  # the held change is superseded by this one
        self._pending = True
        return False

    def due(self, now: float) -> bool:
        """True (once) when a held change may go out at `now`."""
        if self._pending and now - self._last >= self._interval:
            self._last = now
            self._pending = False
            return True
        return False

    def flush(self, now: float) -> bool:
        """True if a change was held: it goes out now, with another event that cannot wait."""
        if self._pending:
            self._last = now
            self._pending = False
            return True
        return False

    def next_due(self) -> float | None:
        """When the held change may go out (None if nothing is held)."""
        return self._last + self._interval if self._pending else None
