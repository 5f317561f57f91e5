"""Feeding a watcher's view from a `Subscriber`: the same views, in another process.

`ViewFeeder` is an `on_event` callback for `Subscriber`: it keeps one topic's
`View` in step with the subscriber's replica (a `Reset` rebuilds it, an
`Update` applies to it) and calls `on_change(shown)` when what the view shows
changes. It runs in the subscriber's thread; nothing else is needed to run
the watcher classes outside the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._replica import Event, Reset
from ._views import View
from ._wire import Update

__all__ = ["ViewFeeder"]


class ViewFeeder:
    """`Subscriber(on_event=ViewFeeder(topic, view, on_change))` (see module docstring)."""

    def __init__(self, topic: str, view: View, on_change: Callable[[Any], None]) -> None:
        self.topic = topic
        self.view = view
        self.on_change = on_change
        self.changes = 0

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Reset):
            if self.topic not in ev.state and ev.reason is not None:
                return  # a recovery of other topics
            changed = self.view.reset(ev.state.get(self.topic, {}))
        elif isinstance(ev, Update) and ev.topic == self.topic:
            changed = self.view.apply(ev.key, ev.data)
        else:
            return
        if changed:
            self.changes += 1
            self.on_change(self.view.shown())
