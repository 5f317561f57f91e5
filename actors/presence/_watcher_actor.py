"""A watcher with an actor of its own, for users who want one.

Hosts one `View` in its own pykka actor, fed by the bridge's in-process
stream, and is a local watcher in presence for exactly its lifetime: it joins
as it starts and leaves as it stops or dies (its `on_failure` tells the
tracker at once, so a crashed watcher is gone from presence within one flush
interval). Most users want the `WatchHub` instead: thousands of watchers, one
thread.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pykka

from pipecast.actors.runtime import BridgeHandle, Registry
from pipecast.transport import PipecastError, Reset, Update, View

from ._tracker import PresenceJoin, PresenceLeave

__all__ = ["WatcherActor"]

log = logging.getLogger("pipecast.watchers")


class _Fed:
    __slots__ = ("event",)

    def __init__(self, event: Update | Reset) -> None:
        self.event = event


class WatcherActor(pykka.ThreadingActor):
    """One watcher, one actor (see module docstring)."""

    def __init__(
        self,
        watcher: str,
        topic: str,
        view: View,
        on_change: Callable[[Any], None],
        bridge: BridgeHandle,
        registry: Registry,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.watcher = watcher
        self.topic = topic
        self.view = view
        self.on_change = on_change
        self.bridge = bridge
        self.registry = registry
        self.meta = meta or {}
        self._token: int | None = None

    def on_start(self) -> None:
        me = self.actor_ref
        self._token = self.bridge.subscribe([self.topic], lambda ev: me.tell(_Fed(ev)))
        self._presence(PresenceJoin(self.watcher, self.topic, {**self.meta, "host": "actor"}, None))

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, _Fed):
            return super().on_receive(message)
        ev = message.event
        if isinstance(ev, Reset):
            changed = self.view.reset(ev.state.get(self.topic, {}))
        elif ev.topic == self.topic:
            changed = self.view.apply(ev.key, ev.data)
        else:
            return None
        if changed:
            self.on_change(self.view.shown())  # raising here kills this actor: see on_failure
        return None

    def on_stop(self) -> None:
        self._leave()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del exception_type, traceback
        log.error("watcher actor %s died: %r", self.watcher, exception_value)
        self._leave()

    def _leave(self) -> None:
        if self._token is not None:
            with contextlib.suppress(PipecastError):
                self.bridge.unsubscribe(self._token)
            self._token = None
        self._presence(PresenceLeave(self.watcher))

    def _presence(self, message: object) -> None:
        self.registry.tell("presence", message)
