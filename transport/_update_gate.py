"""A remote subscriber's rate limit: each key's latest state at most N times a second. Pure.

The same rule as in-process watchers (see `Throttle`), applied to the event
stream a `Replica` emits, one throttle per (topic, key):

* An update offered within `1 / max_per_second` of the last one told for its
  key is held; a newer update of that key replaces it (one more `skipped`).
  `due(now)` releases a held update once its interval has passed, so the
  latest value is always told, at most one interval late.
* A change of the value's `status`, and a deletion, is a lifecycle change:
  told at once, carrying a held update of the key with it (as `skipped`).
* Every other event (`Reset`, `Recovered`, `Stale`, `Ended`) first releases
  everything held, in the order it was held, then goes out itself: order across
  a recovery is kept, and nothing is held past a reset or the end.

The replica's state is exact all along; only when its owner is told changes.
No sockets, threads or clock (`now` is passed in); one thread owns a gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._replica_events import Event
from ._throttle import Throttle
from ._wire import Update

__all__ = ["UpdateGate"]

_Key = tuple[str, str]


def _status(data: Any) -> Any:
    return data.get("status") if isinstance(data, dict) else None


class UpdateGate:
    """Throttle a replica's events per (topic, key) (see module docstring).

    `max_per_second` must be positive (`Throttle` raises `BadRequest` if not).
    """

    __slots__ = ("_held", "_max", "_status", "_throttles", "skipped")

    def __init__(self, max_per_second: float) -> None:
        Throttle(max_per_second)  # validates the rate, with the same error
        self._max = max_per_second
        self._throttles: dict[_Key, Throttle] = {}
        self._status: dict[_Key, Any] = {}  # the status last told, per key
        self._held: dict[_Key, Update] = {}  # insertion order: the order held
        self.skipped = 0  # updates never told: superseded by a later one of their key

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, events: Iterable[Event], now: float) -> list[Event]:
        """What to tell now, in order: held updates now due, then `events` as the rule allows."""
        out = self.due(now)
        for ev in events:
            if isinstance(ev, Update):
                self._offer_update(ev, now, out)
            else:
                for k, held in self._held.items():
                    self._throttles[k].flush(now)
                    out.append(self._told(k, held))
                self._held.clear()
                out.append(ev)
        return out

    def due(self, now: float) -> list[Event]:
        """The held updates whose interval has passed at `now` (each told once)."""
        out: list[Event] = []
        for k in [k for k in self._held if self._throttles[k].due(now)]:
            out.append(self._told(k, self._held.pop(k)))
        return out

    def next_due(self) -> float | None:
        """When the next held update may go out (None if nothing is held)."""
        times = [self._throttles[k].next_due() for k in self._held]
        return min((t for t in times if t is not None), default=None)

    def _offer_update(self, u: Update, now: float, out: list[Event]) -> None:
        k = (u.topic, u.key)
        throttle = self._throttles.get(k)
        if throttle is None:
            throttle = self._throttles[k] = Throttle(self._max)
        lifecycle = u.data is None or _status(u.data) != self._status.get(k)
        before = throttle.skipped
        if throttle.offer(now, lifecycle=lifecycle):
            self._held.pop(k, None)
            out.append(self._told(k, u))
        else:
            self._held[k] = u
        self.skipped += throttle.skipped - before

    def _told(self, k: _Key, u: Update) -> Update:
        if u.data is None:  # a deleted key forgets its throttle: keys come from outside
            self._throttles.pop(k, None)
            self._status.pop(k, None)
        else:
            self._status[k] = _status(u.data)
        return u
