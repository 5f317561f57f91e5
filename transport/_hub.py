"""SubscriberHub: many subscribers served by one thread.

A `Subscriber` has a thread of its own by default: right for a few. A process
that follows a node many times over (a wall of displays driven from one
controller, a test harness, the relay benchmark's crowd) pays, with a thread
each, one wake-up, one poll and one handover of the GIL per subscriber per
message; a thousand threads on two cores spend most of their time handing
the GIL around. A hub polls every member's sockets in one call and serves
each member that is ready with exactly the code its own thread would run
(`Subscriber._turn`): the same replica, recovery and callbacks, in the hub's
thread. Members stay independent: each has its own sockets, keys, replica,
requests and statistics, and one that is stopped leaves the others alone.

`attach` and `detach` may be called from any thread (a subscriber's `start`
and `stop` call them); they wake the hub through an eventfd. Stop the hub
after its members; it terms its context if it made it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import zmq

if TYPE_CHECKING:
    from ._subscriber import Subscriber, _Link

__all__ = ["SubscriberHub"]

log = logging.getLogger("pipecast.subscriber")

_MAX_WAIT = 1.0  # the longest the hub sleeps without looking at its members' timers


class SubscriberHub:
    """One thread for many `Subscriber(..., hub=hub)` (see module docstring)."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        name: str = "pipecast-subscriber-hub",
    ) -> None:
        self.context = context
        self._own_context = context is None
        self._lock = threading.Lock()
        self._joining: list[Subscriber] = []
        self._leaving: list[Subscriber] = []
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stopping = False
        self._members: dict[Subscriber, _Link] = {}
        self._owner: dict[Any, Subscriber] = {}  # socket -> its member
        self._sockets: dict[Subscriber, tuple[zmq.Socket[bytes], ...]] = {}
        self._next_scan = 0.0  # when the earliest member timer is due (monotonic)
        self._turns = 0
        self._polls = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> SubscriberHub:
        if self.context is None:
            self.context = zmq.Context()
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every member still attached, end the thread. Blocks up to `timeout`."""
        with self._lock:
            self._stopping = True
            if self._efd >= 0:
                os.eventfd_write(self._efd, 1)
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif self._thread.ident is None:  # never started: nothing else will close it
            with self._lock:
                if self._efd >= 0:
                    os.close(self._efd)
                    self._efd = -1
        if self._own_context and self.context is not None:
            self.context.term()
            self.context = None

    def __enter__(self) -> SubscriberHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def attach(self, sub: Subscriber) -> None:
        """Serve `sub` from the hub's thread (its `start` calls this). Any thread."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the hub has stopped")
            self._joining.append(sub)
            os.eventfd_write(self._efd, 1)

    def detach(self, sub: Subscriber) -> None:
        """Close `sub`'s sockets in the hub's thread (its `stop` calls this). Any thread."""
        with self._lock:
            if self._efd < 0:  # the hub has ended, and closed its members with it
                return
            self._leaving.append(sub)
            os.eventfd_write(self._efd, 1)

    def statistics(self) -> dict[str, int]:
        """Members, polls and member turns so far (turns / polls: members served a poll)."""
        return {"members": len(self._members), "polls": self._polls, "turns": self._turns}

    # -- the hub's thread -------------------------------------------------------
    #
    # One zmq_poll over every member's sockets (libzmq's own poll: it knows when a
    # socket is readable, which a socket's descriptor alone does not say); members
    # are served when a socket of theirs is ready, or when one of their timers
    # (staleness, a request's deadline, a held update's release) is due. Timers are
    # looked at when the earliest of them is due (`_next_scan`), not every wake-up.

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._efd, zmq.POLLIN)
        try:
            while True:
                with self._lock:
                    joining, self._joining = self._joining, []
                    leaving, self._leaving = self._leaving, []
                    stopping = self._stopping
                for sub in joining:
                    self._join(poller, sub)
                for sub in leaving:
                    self._leave(poller, sub)
                if stopping:
                    return
                wait = max(0.0, self._next_scan - time.monotonic())
                ready = dict(poller.poll(math.ceil(wait * 1000)))
                self._polls += 1
                if self._efd in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(self._efd)
                now = time.monotonic()
                members = {self._owner[s] for s in ready if s in self._owner}
                if now >= self._next_scan:
                    members |= self._scan(now)
                for sub in members:
                    if sub in self._members:
                        self._serve(poller, sub, ready, now)
        finally:
            for sub in list(self._members):
                self._leave(poller, sub)
            with self._lock:
                os.close(self._efd)
                self._efd = -1
                leaving, self._leaving = self._leaving, []
            for sub in leaving:  # asked to leave before they had joined: closed all the same
                if sub not in self._members:
                    sub._closed()

    def _scan(self, now: float) -> set[Subscriber]:
        """The members whose timers are due; sets when to look next."""
        due, self._next_scan = set(), now + _MAX_WAIT
        for sub, link in self._members.items():
            at = sub._due(link)
            if at <= now:
                due.add(sub)
            else:
                self._next_scan = min(self._next_scan, at)
        return due

    def _serve(
        self, poller: zmq.Poller, sub: Subscriber, ready: dict[Any, int], now: float
    ) -> None:
        link = self._members[sub]
        dealer = link.dealer
        try:
            sub._turn(link, ready, now)
            sub._send_request(link)
        except Exception:  # one member's failure is its own: it leaves, others go on
            log.exception("a subscriber of the hub failed; it is closed")
            with self._lock:
                self._leaving.append(sub)
            return
        self._turns += 1
        if link.dealer is not dealer:  # a fresh DEALER after a request timed out
            for sock in self._sockets.pop(sub):
                self._owner.pop(sock, None)
                poller.unregister(sock)
            self._watch(poller, sub, link)
        self._next_scan = min(self._next_scan, sub._due(link))

    def _watch(self, poller: zmq.Poller, sub: Subscriber, link: _Link) -> None:
        socks = link.sockets()
        for sock in socks:
            self._owner[sock] = sub
            poller.register(sock, zmq.POLLIN)
        self._sockets[sub] = socks

    def _join(self, poller: zmq.Poller, sub: Subscriber) -> None:
        if sub in self._members:
            return
        assert self.context is not None
        try:
            link = sub._open(self.context)
            sub._send_request(link)
        except Exception as exc:
            log.exception("a subscriber could not join the hub")
            sub._error = exc
            sub._closed()
            return
        self._members[sub] = link
        self._watch(poller, sub, link)
        self._next_scan = min(self._next_scan, sub._due(link))

    def _leave(self, poller: zmq.Poller, sub: Subscriber) -> None:
        link = self._members.pop(sub, None)
        if link is None:
            if sub._stopping:  # left before it joined
                sub._closed()
            return
        for sock in self._sockets.pop(sub, ()):
            self._owner.pop(sock, None)
            poller.unregister(sock)
        link.close()
        sub._closed()
