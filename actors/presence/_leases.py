"""Presence: who watches which topic, with leases and coalesced changes. Pure.

`PresenceTable` holds every watcher's entry: the topic it watches, its
metadata, and, for remote watchers, a lease that each heartbeat renews and
`expire(now)` ends. Changes are not published one by one: `flush()` returns,
per (topic, watcher), only the net change since the last flush, so a watcher
that joins and leaves within one flush interval costs nothing, and K watchers
reconnecting at once cost at most K updates, never K^2. Each returned change
is one key of the topic `presence/<topic>` (value = metadata, None = left).

Counts per topic are kept incrementally: `count(topic)` is O(1).
No threads, no clock (`now` is passed in); one owner, not thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipecast.transport import BadRequest, Unauthorized

__all__ = ["PresenceChange", "PresenceTable"]


@dataclass(slots=True)
class _Entry:
    topic: str
    meta: dict[str, Any]
    ttl: float | None
    deadline: float | None
    owner: str  # the key that joined it; only it heartbeats, leaves or moves it


@dataclass(frozen=True, slots=True)
class PresenceChange:
    topic: str  # the watched topic; publish on f"presence/{topic}"
    watcher: str
    meta: dict[str, Any] | None  # None: the watcher left


class PresenceTable:
    """Watchers, their leases and the changes still to publish."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._counts: dict[str, int] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._published: dict[tuple[str, str], dict[str, Any]] = {}

    # -- reading -----------------------------------------------------------------

    def count(self, topic: str) -> int:
        return self._counts.get(topic, 0)

    def watchers(self, topic: str) -> dict[str, dict[str, Any]]:
        return {w: dict(e.meta) for w, e in self._entries.items() if e.topic == topic}

    def topic_of(self, watcher: str) -> str | None:
        entry = self._entries.get(watcher)
        return entry.topic if entry is not None else None

    def __len__(self) -> int:
        return len(self._entries)

    # -- changing ------------------------------------------------------------------

    def join(
        self,
        watcher: str,
        topic: str,
        meta: dict[str, Any],
        ttl: float | None,
        now: float,
        owner: str = "",
    ) -> None:
        """Add or update a watcher. On its own topic this is one metadata update.

        `ttl` None: a local watcher, whose lifecycle (not a lease) ends it.
        `owner`: the key that joins it; a watcher another key joined is not
        theirs to change (`Unauthorized`). Raises `BadRequest` for an empty id
        or topic, bad metadata or ttl.
        """
        if type(watcher) is not str or not watcher:
            raise BadRequest("watcher id must be a non-empty string")
        if type(topic) is not str or not topic:
            raise BadRequest("topic must be a non-empty string")
        if type(meta) is not dict:
            raise BadRequest("meta must be a map")
        if ttl is not None and not (type(ttl) in (int, float) and 0 < ttl <= 3600):
            raise BadRequest("ttl must be a number of seconds in (0, 3600]")
        entry = self._entries.get(watcher)
        self._check_owner(watcher, entry, owner)
        if entry is not None and entry.topic != topic:
            self.leave(watcher)
            entry = None
        deadline = now + ttl if ttl is not None else None
        if entry is None:
            self._entries[watcher] = _Entry(topic, dict(meta), ttl, deadline, owner)
            self._counts[topic] = self._counts.get(topic, 0) + 1
        else:
            entry.meta, entry.ttl, entry.deadline = dict(meta), ttl, deadline
        self._dirty.add((topic, watcher))

    def heartbeat(self, watcher: str, now: float, owner: str = "") -> bool:
        """Renew a remote watcher's lease; False if it is not (any longer) known.
        `Unauthorized` if another key joined it."""
        entry = self._entries.get(watcher)
        if entry is None:
            return False
        self._check_owner(watcher, entry, owner)
        if entry.ttl is not None:
            entry.deadline = now + entry.ttl
        return True

    def leave(self, watcher: str, owner: str | None = None) -> bool:
        """Remove a watcher; False if it was not there. With an `owner` (a client's
        leave), `Unauthorized` if another key joined it; None: the node's own."""
        entry = self._entries.get(watcher)
        if entry is None:
            return False
        if owner is not None:
            self._check_owner(watcher, entry, owner)
        del self._entries[watcher]
        left = self._counts[entry.topic] - 1
        if left:
            self._counts[entry.topic] = left
        else:
            del self._counts[entry.topic]
        self._dirty.add((entry.topic, watcher))
        return True

    def forgive(self, seconds: float) -> None:
        """Add `seconds` to every lease: the node could hear nobody for that long (it
        was stalled), so it is no watcher's silence."""
        for entry in self._entries.values():
            if entry.deadline is not None:
                entry.deadline += seconds

    @staticmethod
    def _check_owner(watcher: str, entry: _Entry | None, owner: str) -> None:
        if entry is not None and entry.owner != owner:
            raise Unauthorized(f"watcher {watcher!r} was joined by another key")

    def expire(self, now: float) -> list[str]:
        """End every lease past its deadline; the ids of those who left."""
        gone = [w for w, e in self._entries.items() if e.deadline is not None and e.deadline <= now]
        for watcher in gone:
            self.leave(watcher)
        return gone

    def leave_all(self) -> None:
        """Everyone leaves (a graceful node stop publishes the leaves at once)."""
        for watcher in list(self._entries):
            self.leave(watcher)

    def flush(self) -> list[PresenceChange]:
        """The net changes since the last flush, each (topic, watcher) at most once."""
        changes = []
        for topic, watcher in sorted(self._dirty):
            entry = self._entries.get(watcher)
            now_meta = entry.meta if entry is not None and entry.topic == topic else None
            before = self._published.get((topic, watcher))
            if now_meta == before:
                continue
            if now_meta is None:
                del self._published[(topic, watcher)]
            else:
                self._published[(topic, watcher)] = dict(now_meta)
            changes.append(
                PresenceChange(topic, watcher, dict(now_meta) if now_meta is not None else None)
            )
        self._dirty.clear()
        return changes
