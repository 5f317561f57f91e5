"""An actor inbox that also wakes for a ZeroMQ socket and a periodic timer.

A pykka actor blocks in its inbox's `get()`, so it cannot also poll a socket.
The bridge needs both: messages from other actors, sync requests on its
ROUTER socket, and a heartbeat timer. `PollingInbox` implements pykka's inbox
protocol (`put`, `get`, `empty`) and, once a socket is attached, its `get()`
polls the socket and a wake-up eventfd together, handing the actor synthetic
`SocketReadable` and `TimerDue` messages in its own thread. The socket is thus
only ever touched by the thread that owns it.

`put()` runs in any thread and never blocks; it writes the eventfd only when
the owner is (about to be) asleep in poll, so a busy actor pays no syscall per
message. `tell()` is `put()` for a bare tell-message: it is queued as it is and
only wrapped in pykka's Envelope if `get()` hands it to pykka, so a burst that
the owner takes with `take_run` never builds one (the bridge's publications).
Relies on pykka's inbox protocol, hence the pin pykka<5.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from typing import Any

import zmq
from pykka._envelope import Envelope  # pykka's inbox protocol carries envelopes

__all__ = ["PollingInbox", "SocketReadable", "TimerDue"]


class SocketReadable:
    """Synthetic message: the attached socket has input."""

    __slots__ = ()


class TimerDue:
    """Synthetic message: the periodic timer fired."""

    __slots__ = ()


_READABLE = SocketReadable()
_TIMER = TimerDue()
# Even under a flood of messages, look at the socket this often, so that sync
# requests are served while actors publish as fast as they can.
_CHECK_EVERY = 32


class PollingInbox:
    """pykka inbox multiplexing the mailbox, one socket and one timer."""

    def __init__(self) -> None:
        # Envelopes, and bare tell-messages from tell()
        self._queue: deque[Any] = deque()
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._efd_lock = threading.Lock()
        self._waiting = False
        self._socket: zmq.Socket[bytes] | None = None
        self._poller: zmq.Poller | None = None
        self._interval = 0.0
        self._due = float("inf")
        self._since_check = 0
        self.wakeups = 0  # puts that had to wake a sleeping owner (telemetry)

    def attach(self, socket: zmq.Socket[bytes] | None, interval: float) -> None:
        """Start firing the timer, and watching `socket` if given. Owner thread only."""
        self._socket = socket
        self._poller = zmq.Poller()
        if socket is not None:
            self._poller.register(socket, zmq.POLLIN)
        self._poller.register(self._efd, zmq.POLLIN)
        self._interval = interval
        self._due = time.monotonic() + interval

    def detach(self) -> None:
        """Stop watching the socket (before it is closed) and release the eventfd."""
        self._socket = None
        self._poller = None
        self._due = float("inf")
        with self._efd_lock:
            if self._efd >= 0:
                os.close(self._efd)
                self._efd = -1

    def wake_at(self, due: float) -> None:
        """Fire the timer at `due` (monotonic) if that is sooner. Owner thread only.

        The owner is awake when it calls this, so no wake-up is needed; after
        firing, the timer falls back to its period.
        """
        self._due = min(self._due, due)

    def depth(self) -> int:
        return len(self._queue)

    def take_run(self, kind: type, limit: int) -> list[Any]:
        """Pop up to `limit` queued tell-messages of exactly `kind` from the front.

        Owner thread only. Lets a handler finish a burst of like messages in
        one go instead of one pykka loop turn each; stops at the first other
        message, so the mailbox order is kept.
        """
        queue = self._queue
        out: list[Any] = []
        while queue and len(out) < limit:
            item = queue[0]
            if type(item) is kind:
                out.append(queue.popleft())
            elif type(item) is Envelope and type(item.message) is kind and item.reply_to is None:
                out.append(queue.popleft().message)
            else:
                break
        return out

    def put(self, envelope: Envelope[Any], /) -> None:
        self._queue.append(envelope)
        if self._waiting:
            self._wake()

    def tell(self, message: object, /) -> None:
        """Queue a tell-message (no reply) without an Envelope. Any thread; never blocks."""
        self._queue.append(message)
        if self._waiting:
            self._wake()

    def _wake(self) -> None:
        # One write per sleep: the eventfd stays readable until the owner reads
        # it, so the puts that follow (while the owner waits for the GIL to come
        # back from poll) need no syscall of their own.
        with self._efd_lock:
            if self._waiting and self._efd >= 0:
                self._waiting = False
                os.eventfd_write(self._efd, 1)
                self.wakeups += 1

    def empty(self) -> bool:
        return not self._queue

    def get(self) -> Envelope[Any]:
        queue = self._queue
        if self._poller is not None:
            if time.monotonic() >= self._due:
                self._due = time.monotonic() + self._interval
                return Envelope(_TIMER)
            self._since_check += 1
            if self._since_check >= _CHECK_EVERY and self._socket is not None:
                self._since_check = 0
                if int(self._socket.get(zmq.EVENTS)) & zmq.POLLIN:
                    return Envelope(_READABLE)
        while True:
            if queue:
                item = queue.popleft()
                return item if type(item) is Envelope else Envelope(item)
            poller = self._poller
            if poller is None:
                self._sleep_without_socket()
                continue
            self._waiting = True
            if queue:  # a put() that saw _waiting False happened just before
                self._waiting = False
                continue
            timeout = int(max(0.0, self._due - time.monotonic()) * 1000.0) + 1
            ready = dict(poller.poll(timeout))
            self._waiting = False
            if self._efd in ready:
                self._drain_eventfd()
            if self._socket is not None and self._socket in ready:
                self._since_check = 0
                return Envelope(_READABLE)
            if time.monotonic() >= self._due:
                self._due = time.monotonic() + self._interval
                return Envelope(_TIMER)

    def _drain_eventfd(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._efd)

    def _sleep_without_socket(self) -> None:
        # Before attach() or after detach(): wait on the eventfd alone.
        import select  # noqa: PLC0415 - only on this rare path

        with self._efd_lock:
            fd = self._efd
        if fd < 0:
            # Detached for good: the actor is tearing down; messages can only
            # still arrive through put(), which needs no wake-up any more.
            self._waiting = False
            time.sleep(0)
            return
        self._waiting = True
        if not self._queue:
            select.select([fd], [], [], 0.5)
        self._waiting = False
        self._drain_eventfd()
