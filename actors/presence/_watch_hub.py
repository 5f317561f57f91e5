"""The watch hub: one actor hosting any number of watchers as plain objects.

Watchers are cheap (DESIGN principle 6): each is a pure `View` plus a
`Throttle` and a callback, dispatched by this one actor from the bridge's
in-process stream, never a thread each. A new watcher's view is built from
the hub's own replica of the bus (the same state a snapshot gives), so it
needs no database and nothing to retry. Each hosted watcher is a local
watcher in presence (kind `local`) and leaves the moment it is removed or
its callback raises; a raising watcher is also counted, and the others go on.

The hub is supervised: if it dies, its watchers leave presence at once, and
its next incarnation hosts them again from the `WatcherBook` (kept by the
handle, outside the actor), each shown the current state anew.

Watchers of one topic whose views would be identical (same `share_key()`,
e.g. every stage watcher, or every `grid:2x3` of one network) share one view:
an update is applied once per distinct view, and each watcher only pays for
its throttle and its callback. Callbacks run in the hub's thread, must not
block, and must treat what they are shown as read-only (it may be shared).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka

from pipecast.actors.runtime import (
    BridgeHandle,
    PollingActor,
    Registry,
    Supervised,
    TimerDue,
)
from pipecast.transport import PipecastError, Reset, Throttle, Update, View, apply_to_state

from ._tracker import PresenceJoin, PresenceLeave

__all__ = ["WATCH_HUB", "AddWatcher", "RemoveWatcher", "WatchHub", "WatchHubHandle", "WatcherBook"]

log = logging.getLogger("pipecast.watchers")

OnChange = Callable[[str, Any, int], None]  # (watcher id, what it shows, skipped so far)

WATCH_HUB = "watch_hub"  # the hub's name among a node's actors


@dataclass(frozen=True, slots=True)
class AddWatcher:
    watcher: str
    topic: str
    view: View
    on_change: OnChange
    max_per_second: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoveWatcher:
    watcher: str


@dataclass(frozen=True, slots=True)
class _Event:
    event: Update | Reset


@dataclass(slots=True)
class _Hosted:
    watcher: str
    topic: str
    group: Hashable
    on_change: OnChange
    throttle: Throttle


@dataclass(slots=True)
class _Group:
    """Watchers of one topic whose views would be identical share one view."""

    view: View
    members: dict[str, _Hosted] = field(default_factory=dict)


def _share_key(watcher: str, view: View) -> Hashable:
    key = getattr(view, "share_key", None)
    shared = key() if callable(key) else None
    return ("shared", shared) if shared is not None else ("own", watcher)


class WatcherBook:
    """The watchers a hub hosts, outside the hub: a restarted hub hosts them again.

    Written by the handle (any thread) and by the hub when it drops a broken
    watcher; a lock keeps it whole.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._adds: dict[str, AddWatcher] = {}

    def keep(self, add: AddWatcher) -> None:
        with self._lock:
            self._adds[add.watcher] = add

    def forget(self, watcher: str) -> None:
        with self._lock:
            self._adds.pop(watcher, None)

    def all(self) -> list[AddWatcher]:
        with self._lock:
            return list(self._adds.values())


class WatchHub(PollingActor, Supervised):
    """Hosts watchers (see module docstring). Start with `WatchHubHandle.start`, or as
    the supervised child `WATCH_HUB` of a node."""

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any] | None,
        bridge: BridgeHandle,
        registry: Registry | None = None,
        book: WatcherBook | None = None,
        tick: float = 0.02,
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.registry = registry
        self.book = book or WatcherBook()
        self.tick = tick
        self._state: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, dict[Hashable, _Group]] = {}
        self._where: dict[str, _Hosted] = {}
        self._held: set[str] = set()
        self._token: int | None = None
        self._applied = 0
        self._notified = 0
        self._failures = 0
        self._dispatch_ns = 0

    def on_begin(self) -> None:
        self.poll_every(self.tick)
        me = self.actor_ref
        self._token = self.bridge.subscribe([""], lambda ev: me.tell(_Event(ev)))
        for add in self.book.all():  # after a restart: host them again
            self._add(add)

    def on_end(self, error: str | None) -> None:
        """Stopped or dead: every watcher it hosted leaves presence at once."""
        if error is not None:
            log.error("the watch hub died (%s); its watchers leave", error)
        if self._token is not None:
            with contextlib.suppress(PipecastError):
                self.bridge.unsubscribe(self._token)
            self._token = None
        for watcher in list(self._where):
            self._remove(watcher)
        self.stop_polling()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Event):
            self._on_event(message.event)
        elif isinstance(message, TimerDue):
            self._release_held(time.monotonic())
        elif isinstance(message, AddWatcher):
            self._add(message)
        elif isinstance(message, RemoveWatcher):
            self._remove(message.watcher)
        else:
            return super().on_receive(message)
        return None

    def statistics(self) -> dict[str, Any]:
        return {
            "watchers": len(self._where),
            "views": sum(len(g) for g in self._groups.values()),
            "updates_applied": self._applied,
            "notifications": self._notified,
            "watcher_failures": self._failures,
            "dispatch_seconds": round(self._dispatch_ns / 1e9, 6),
        }

    # -- the stream ---------------------------------------------------------------

    def _on_event(self, ev: Update | Reset) -> None:
        t0 = time.perf_counter_ns()
        now = time.monotonic()
        apply_to_state(self._state, ev)
        if isinstance(ev, Reset):
            for topic, groups in self._groups.items():
                for group in list(groups.values()):
                    if group.view.reset(self._state.get(topic, {})):
                        self._changed(group, True, now)
            return
        here = self._groups.get(ev.topic)
        if not here:
            return
        self._applied += 1
        for group in list(here.values()):
            if group.view.apply(ev.key, ev.data):
                self._changed(group, group.view.lifecycle(ev.key, ev.data), now)
        self._dispatch_ns += time.perf_counter_ns() - t0

    def _changed(self, group: _Group, lifecycle: bool, now: float) -> None:
        """Tell the group's watchers; this loop is the hub's hot path at 10k watchers."""
        shown = group.view.shown()
        held = self._held
        told = 0
        broken: list[tuple[_Hosted, Exception]] = []
        for h in list(group.members.values()):
            throttle = h.throttle
            if throttle.unlimited or throttle.offer(now, lifecycle=lifecycle):
                if not throttle.unlimited:
                    held.discard(h.watcher)
                try:
                    h.on_change(h.watcher, shown, throttle.skipped)
                    told += 1
                except Exception as error:
                    broken.append((h, error))
            else:
                held.add(h.watcher)
        self._notified += told
        for bad, why in broken:
            self._failed(bad, why)

    def _release_held(self, now: float) -> None:
        for watcher in list(self._held):
            h = self._where.get(watcher)
            if h is None:
                self._held.discard(watcher)
            elif h.throttle.due(now):
                self._held.discard(watcher)
                self._notify(h, self._groups[h.topic][h.group].view.shown())

    def _notify(self, h: _Hosted, shown: Any) -> None:
        try:
            h.on_change(h.watcher, shown, h.throttle.skipped)
            self._notified += 1
        except Exception as exc:
            self._failed(h, exc)

    def _failed(self, h: _Hosted, exc: Exception) -> None:
        # a broken watcher is removed and counted; the others go on
        self._failures += 1
        log.error("watcher %s raised; removed", h.watcher, exc_info=exc)
        self.book.forget(h.watcher)
        self._remove(h.watcher)

    # -- membership -------------------------------------------------------------------

    def _add(self, msg: AddWatcher) -> None:
        if msg.watcher in self._where:
            self._remove(msg.watcher)
        key = _share_key(msg.watcher, msg.view)
        groups = self._groups.setdefault(msg.topic, {})
        group = groups.get(key)
        if group is None:
            # a new view starts from the hub's replica; a shared one is current already
            group = groups[key] = _Group(msg.view)
            group.view.reset(self._state.get(msg.topic, {}))
        h = _Hosted(msg.watcher, msg.topic, key, msg.on_change, Throttle(msg.max_per_second))
        group.members[msg.watcher] = h
        self._where[msg.watcher] = h
        self._presence(PresenceJoin(msg.watcher, msg.topic, {**msg.meta, "host": "local"}, None))
        self._notify(h, group.view.shown())  # the initial view, at once

    def _remove(self, watcher: str) -> None:
        h = self._where.pop(watcher, None)
        if h is None:
            return
        groups = self._groups.get(h.topic, {})
        group = groups.get(h.group)
        if group is not None:
            group.members.pop(watcher, None)
            if not group.members:
                del groups[h.group]
        if not groups:
            self._groups.pop(h.topic, None)
        self._held.discard(watcher)
        self._presence(PresenceLeave(watcher))

    def _presence(self, message: object) -> None:
        # a dead tracker restarts empty; watchers rejoin on their next change
        if self.registry is not None:
            self.registry.tell("presence", message)


class WatchHubHandle:
    """Add and remove hosted watchers from any thread (tells; never blocks).

    Finds the current hub by name in `registry` (it changes on a restart) and
    keeps every watcher in `book`, so a restarted hub hosts them again.
    """

    def __init__(self, registry: Registry, book: WatcherBook) -> None:
        self.registry = registry
        self.book = book

    @classmethod
    def start(
        cls, bridge: BridgeHandle, registry: Registry | None = None, tick: float = 0.02
    ) -> WatchHubHandle:
        """A hub on its own (no supervisor), for tests and benchmarks."""
        registry = registry or Registry()
        book = WatcherBook()
        ref = WatchHub.start(
            name=WATCH_HUB, supervisor=None, bridge=bridge, registry=registry, book=book, tick=tick
        )
        registry.set(WATCH_HUB, ref)
        return cls(registry, book)

    @property
    def ref(self) -> pykka.ActorRef[WatchHub]:
        """The current hub (`ActorDeadError` from a tell if it is down)."""
        ref = self.registry.get(WATCH_HUB)
        if ref is None:
            raise pykka.ActorDeadError("the watch hub is not running")
        return ref

    def add(
        self,
        watcher: str,
        topic: str,
        view: View,
        on_change: OnChange,
        max_per_second: float | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        # validate here so a caller's mistake raises in the caller
        Throttle(max_per_second)
        add = AddWatcher(watcher, topic, view, on_change, max_per_second, meta or {})
        self.book.keep(add)
        self.registry.tell(WATCH_HUB, add)  # a hub down now hosts it when it is back

    def remove(self, watcher: str) -> None:
        self.book.forget(watcher)
        self.registry.tell(WATCH_HUB, RemoveWatcher(watcher))

    def stop(self, timeout: float = 5.0) -> None:
        ref = self.registry.get(WATCH_HUB)
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=True, timeout=timeout)
