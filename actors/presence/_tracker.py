"""The presence tracker: who watches what, published like any other state.

An actor around the pure `PresenceTable`. Every `flush_interval` it expires
silent remote watchers and publishes the net changes as keys of
`presence/<topic>` (key = watcher id, value = its metadata, nil = left), so
the count and the list replicate to every subscriber with the bus's ordering
and recovery. Viewer counts are readable from any thread in O(1) through
`PresenceCounts` (a dict only this actor writes).

Requests carry a `reply` callable (tell with reply-to); on stop every watcher
leaves and the leaves are published before the node's bridge stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from pipecast.actors.runtime import BridgeHandle, PollingActor, Supervised, TimerDue
from pipecast.transport import PipecastError

from ._leases import PresenceTable

__all__ = [
    "PresenceBeat",
    "PresenceCounts",
    "PresenceJoin",
    "PresenceLeave",
    "PresenceList",
    "PresenceTracker",
]

log = logging.getLogger("pipecast.presence")

# a flush tick this late (seconds) is a stall of the node, not jitter
_STALL = 0.5

Reply = Callable[[Any], None]


class PresenceCounts:
    """Viewer count per watched topic; `count()` is O(1) from any thread."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def count(self, topic: str) -> int:
        return self._counts.get(topic, 0)

    def topics(self) -> list[str]:
        return list(self._counts)

    def set_count(self, topic: str, n: int) -> None:
        """Written by the tracker's thread only."""
        if n:
            self._counts[topic] = n
        else:
            self._counts.pop(topic, None)


@dataclass(frozen=True, slots=True)
class PresenceJoin:
    watcher: str
    topic: str
    meta: dict[str, Any]
    ttl: float | None  # None: a local watcher, ended by its lifecycle
    reply: Reply = field(default=lambda _: None)
    cid: str | None = None
    owner: str = ""  # the key that joins it ("": the node's own, or no CURVE)


@dataclass(frozen=True, slots=True)
class PresenceBeat:
    """Renew leases: `watchers` (one, or many from a gateway), all joined by `owner`."""

    watchers: tuple[str, ...]
    reply: Reply = field(default=lambda _: None)
    owner: str = ""
    many: bool = False  # asked as a list: answered {known: N, unknown: [...]}


@dataclass(frozen=True, slots=True)
class PresenceLeave:
    watcher: str
    reply: Reply = field(default=lambda _: None)
    owner: str | None = None  # None: the node's own leave (the watch hub), never refused


@dataclass(frozen=True, slots=True)
class PresenceList:
    topic: str | None
    reply: Reply


class PresenceTracker(PollingActor, Supervised):
    """See module docstring. Started by the node's supervisor as `presence`."""

    OPTIONS = frozenset({"counts", "flush_interval"})

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any],
        bridge: BridgeHandle,
        counts: PresenceCounts,
        flush_interval: float = 0.05,
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.counts = counts
        self.flush_interval = flush_interval
        self.table = PresenceTable()
        self._joins = 0
        self._beats = 0
        self._leaves = 0
        self._expired = 0
        self._published = 0
        self._stalls = 0
        self._last_tick: float | None = None

    def on_begin(self) -> None:
        self.poll_every(self.flush_interval)
        self._last_tick = time.monotonic()

    def _forgive_a_stall(self, now: float) -> None:
        """A tick far later than due means this node was stalled (stopped, swapped,
        starved): nobody could be heard meanwhile, and heartbeats sent then may still
        be on their way in. Leases get that time back before anything expires."""
        if self._last_tick is not None:
            late = now - self._last_tick - self.flush_interval
            if late > _STALL:
                self._stalls += 1
                log.warning("presence: this node stalled for %.1f s; leases extended", late)
                self.table.forgive(late)
        self._last_tick = now

    def on_end(self, error: str | None) -> None:
        # graceful stop and death alike: nobody is watching through us any more
        self.table.leave_all()
        self._flush()
        self.stop_polling()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, TimerDue):
            now = time.monotonic()
            self._forgive_a_stall(now)
            expired = self.table.expire(now)
            if expired:
                self._expired += len(expired)
                log.info("presence leases ended: %s", ", ".join(expired))
            self._flush()
        elif isinstance(message, PresenceJoin):
            self._join(message)
        elif isinstance(message, PresenceBeat):
            self._beat(message)
        elif isinstance(message, PresenceLeave):
            topic = self.table.topic_of(message.watcher)
            try:
                left = self.table.leave(message.watcher, message.owner)
            except PipecastError as exc:
                message.reply(exc)
                return None
            self._leaves += left
            self._count(topic)
            message.reply({"left": left})
        elif isinstance(message, PresenceList):
            self._list(message)
        else:
            return super().on_receive(message)
        return None

    def _beat(self, msg: PresenceBeat) -> None:
        now = time.monotonic()
        if not msg.many:  # one watcher: a refusal is the answer
            try:
                known = self.table.heartbeat(msg.watchers[0], now, msg.owner)
            except PipecastError as exc:
                msg.reply(exc)
                return
            self._beats += int(known)
            msg.reply({"known": known})
            return
        unknown = []  # many: each is renewed or listed as unknown (or not ours)
        for watcher in msg.watchers:
            try:
                known = self.table.heartbeat(watcher, now, msg.owner)
            except PipecastError:
                known = False
            self._beats += int(known)
            if not known:
                unknown.append(watcher)
        msg.reply({"known": len(msg.watchers) - len(unknown), "unknown": unknown})

    def _join(self, msg: PresenceJoin) -> None:
        before = self.table.topic_of(msg.watcher)
        meta = {**msg.meta, "kind": "local" if msg.ttl is None else "remote"}
        meta.setdefault("joined_at", time.time())
        try:
            self.table.join(msg.watcher, msg.topic, meta, msg.ttl, time.monotonic(), msg.owner)
        except PipecastError as exc:
            msg.reply(exc)
            return
        self._joins += 1
        self._count(before)
        self._count(msg.topic)
        log.info("presence join %s on %s [cid=%s]", msg.watcher, msg.topic, msg.cid)
        msg.reply(
            {
                "watcher": msg.watcher,
                "topic": msg.topic,
                "meta": meta,
                "ttl": msg.ttl,
                "viewers": self.table.count(msg.topic),
            }
        )

    def _list(self, msg: PresenceList) -> None:
        topics = set(self.counts.topics()) if msg.topic is None else {msg.topic}
        msg.reply(
            {
                t: {"count": self.table.count(t), "watchers": self.table.watchers(t)}
                for t in sorted(topics)
            }
        )

    def _count(self, topic: str | None) -> None:
        if topic is not None:
            self.counts.set_count(topic, self.table.count(topic))

    def _flush(self) -> None:
        for change in self.table.flush():
            self._count(change.topic)
            try:
                self.bridge.publish(f"presence/{change.topic}", change.watcher, change.meta)
                self._published += 1
            except PipecastError:
                log.warning("presence change not published: the bridge is gone")

    def statistics(self) -> dict[str, Any]:
        return {
            "watchers": len(self.table),
            "joins": self._joins,
            "heartbeats": self._beats,
            "leaves": self._leaves,
            "expired": self._expired,
            "stalls_forgiven": self._stalls,
            "published": self._published,
        }
