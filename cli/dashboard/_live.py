"""Showing a subscriber's replica to a person: the live dashboard, `--plain` lines or JSON.

`Watching` takes the subscriber's events (in the subscriber's thread: it
only notes that something changed, and prints JSON records when asked to)
and the caller's loop (`run`, in the CLI's thread) draws the replica's
latest state at most `max_fps` times a second: a burst of a thousand
updates is one redraw, never a thousand lines. Recoveries and stale spells
are markers, shown the moment the next frame is drawn. `run` blocks until
`done` is set; a `tick` callback runs about every second (presence
heartbeats).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live

from pipecast.transport import Recovered, Reset, Stale, Subscriber, Update

from ._events import event_record, note_text
from ._model import DashboardView, MarkerLog, PlainLog, build_view
from ._render import render

__all__ = ["MODES", "Watching"]

MODES = ("dashboard", "plain", "json")


class Watching:
    """One watch session (see module docstring). `mode`: dashboard, plain or json."""

    def __init__(
        self,
        mode: str,
        console: Console | None = None,
        max_fps: float = 4.0,
        count: int | None = None,
        on_update: Callable[[Update], None] | None = None,
        skipped: Callable[[], int] | None = None,
    ) -> None:
        assert mode in MODES
        self.mode = mode
        self.console = console or Console()
        self.interval = 1.0 / max_fps
        self.count = count
        self.on_update = on_update
        self.skipped = skipped  # with a rate limit: updates superseded so far
        self.done = threading.Event()
        self.updates = 0
        self.redraws = 0
        self._changed = threading.Event()
        self._lock = threading.Lock()
        self._markers = MarkerLog()
        self._new_markers: list[str] = []
        self._stale = False
        self._t0 = time.monotonic()
        self._plain = PlainLog()

    # -- the subscriber's thread -------------------------------------------------------

    def on_event(self, ev: Any) -> None:
        """Note the event; never blocks on the terminal except in JSON mode (one line)."""
        if self.mode == "json" and (record := event_record(ev)) is not None:
            if self.skipped is not None and isinstance(ev, Update):
                record["skipped"] = self.skipped()
            print(json.dumps(record), flush=True)
        if isinstance(ev, Update):
            self.updates += 1
            self._stale = False
            if self.on_update is not None:
                self.on_update(ev)
            if self.count is not None and self.updates >= self.count:
                self.done.set()
        elif isinstance(ev, (Recovered, Stale)):
            record = event_record(ev)
            assert record is not None
            text = note_text(record).removeprefix("-- ")
            with self._lock:
                self._markers.add(time.monotonic() - self._t0, text)
                self._new_markers.append(text)
                self._stale = isinstance(ev, Stale)
        elif isinstance(ev, Reset):
            self._stale = False
        self._changed.set()

    # -- the CLI's thread ------------------------------------------------------------

    def view(self, sub: Subscriber) -> DashboardView:
        with self._lock:
            markers = tuple(self._markers)
        return build_view(sub.state(), markers, self._stale)

    def run(self, sub: Subscriber, tick: Callable[[], None] | None = None) -> None:
        """Show `sub` until `done`; `tick` about every second. Blocks."""
        if self.mode == "dashboard":
            with Live(
                render(self.view(sub), self.console.width),
                console=self.console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live:
                self._loop(sub, tick, lambda: live.update(self._frame(sub), refresh=True))
        elif self.mode == "plain":
            self._loop(sub, tick, lambda: self._print_changes(sub))
        else:
            self._loop(sub, tick, lambda: None)

    def _frame(self, sub: Subscriber) -> Any:
        self.redraws += 1
        return render(self.view(sub), self.console.width)

    def _print_changes(self, sub: Subscriber) -> None:
        with self._lock:
            markers, self._new_markers = self._new_markers, []
        for text in markers:
            self.console.print(f"-- {text}", highlight=False, soft_wrap=True)
        for line in self._plain.changes(self.view(sub)):
            self.console.print(line, highlight=False, soft_wrap=True, markup=False)

    def _loop(
        self, sub: Subscriber, tick: Callable[[], None] | None, draw: Callable[[], None]
    ) -> None:
        next_tick = time.monotonic() + 1.0
        self._changed.set()  # the first frame
        while True:
            finished = self.done.wait(self.interval)
            if self._changed.is_set() or finished:
                self._changed.clear()
                draw()
            if finished:
                return
            if tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + 1.0
                tick()
