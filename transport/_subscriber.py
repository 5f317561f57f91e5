"""Subscriber: follow a node's topics from plain Python, exactly and in order.

A `Subscriber` owns one thread, which owns its SUB and DEALER sockets (one
owner per socket) and drives a `Replica`: it feeds it what the status socket
delivers, sends the snapshot and replay requests it asks for (one at a time;
a request unanswered within `request_timeout` is re-sent on a fresh socket,
the "lazy pirate" way), and hands the replica's events to the user, either to
a callback (called in the subscriber thread) or to a queue read with `get()`
or by iterating. With `max_rate`, each key's updates reach the user at most
that many times a second, the latest value winning (`UpdateGate`); the
replica itself, and so `state()`, is exact all along.

Nothing here needs an actor. Statistics and state reads are safe from any
thread.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zmq

from ._batch import decode_updates
from ._errors import MalformedFrame, NodeUnreachable
from ._replica import Checkpoint, Event, Replica, ReplicaStatistics, Request
from ._security import ClientSecurity, KeyRefused, refusal, unwatch, watch_handshakes
from ._update_gate import UpdateGate
from ._wire import (
    HEARTBEAT_TOPIC,
    decode_heartbeat,
    decode_sync_reply,
    encode_sync_request,
)

if TYPE_CHECKING:
    from ._hub import SubscriberHub

__all__ = ["Subscriber", "SubscriberStatistics"]

log = logging.getLogger("pipecast.subscriber")

_NOBLOCK = int(zmq.NOBLOCK)
_HB = HEARTBEAT_TOPIC.encode()
_BATCH = 2000  # messages taken off SUB per turn before other work gets a look in
_TOPIC_NAMES = 4096  # decoded topic names kept (bounded: topics come from outside)
_TICK = 1.0  # the longest an idle subscriber sleeps; deadlines wake it sooner, seconds


@dataclass(frozen=True, slots=True)
class SubscriberStatistics:
    received: int
    wakeups: int  # times the thread woke from poll: received / wakeups is the batch size
    malformed: int
    requests_sent: int
    request_timeouts: int
    callback_failures: int
    skipped: int  # updates not told because a newer one of their key superseded them (max_rate)
    replica: ReplicaStatistics


class _Link:
    """One subscriber's sockets and sync request in flight; owned by one thread (its own,
    or a hub's)."""

    __slots__ = (
        "ctx",
        "deadline",
        "dealer",
        "dealer_monitor",
        "inflight",
        "outbox",
        "sub",
        "sub_monitor",
    )

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        sub: zmq.Socket[bytes],
        sub_monitor: zmq.Socket[bytes],
        dealer: zmq.Socket[bytes],
        dealer_monitor: zmq.Socket[bytes],
    ) -> None:
        self.ctx = ctx
        self.sub, self.sub_monitor = sub, sub_monitor
        self.dealer, self.dealer_monitor = dealer, dealer_monitor
        self.outbox: collections.deque[Request] = collections.deque()
        self.inflight: Request | None = None
        self.deadline = 0.0

    def sockets(self) -> tuple[zmq.Socket[bytes], ...]:
        return (self.sub, self.dealer, self.sub_monitor, self.dealer_monitor)

    def close(self) -> None:
        unwatch(self.sub, self.sub_monitor)
        unwatch(self.dealer, self.dealer_monitor)
        self.sub.close()
        self.dealer.close()


class Subscriber:
    """Follow `prefixes` of a node's topics (see module docstring).

    `on_event`, if given, is called in the subscriber's thread for every
    event (`Update`, `Reset`, `Recovered`, `Stale`, `Ended`), in order; it must
    not block for long. An exception in it is counted and logged, never lost
    silently, and the subscriber goes on. Without a callback, events queue up
    for `get()` and iteration. `context`: a ZeroMQ context to share with other
    subscribers of this process (one I/O thread for all; its owner terms it
    after stopping them); by default each subscriber has its own. `hub`: a
    `SubscriberHub` whose one thread serves this subscriber with many others
    (its context is used; callbacks then run in the hub's thread); by
    default each subscriber has a thread of its own.
    """

    def __init__(
        self,
        status_endpoint: str,
        sync_endpoint: str,
        prefixes: Iterable[str] = (),
        *,
        on_event: Callable[[Event], None] | None = None,
        stale_after: float = 3.0,
        request_timeout: float = 2.0,
        rcvhwm: int = 100_000,
        resume: Checkpoint | None = None,
        name: str = "pipecast-subscriber",
        security: ClientSecurity | None = None,
        max_rate: float | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        hub: SubscriberHub | None = None,
    ) -> None:
        self.status_endpoint = status_endpoint
        self.security = security
        self.refused: str | None = None  # why the node refused our key, if it did
        self.sync_endpoint = sync_endpoint
        self.replica = Replica(prefixes, stale_after=stale_after)
        self._on_event = on_event
        self._gate = None if max_rate is None else UpdateGate(max_rate)
        # shared by many subscribers in one process (one I/O thread for all); else our own
        self._context = context
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._request_timeout = request_timeout
        self._rcvhwm = rcvhwm
        self._resume = resume
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stopping = False
        self._received = 0
        self._wakeups = 0
        self._malformed = 0
        self._requests_sent = 0
        self._timeouts = 0
        self._callback_failures = 0
        self._topic_names: dict[bytes, str] = {}  # subscriber thread only
        self._error: BaseException | None = None
        self._done = threading.Event()  # the owning thread has closed our sockets
        self._hub = hub
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- control (any thread) ---------------------------------------------------

    def start(self) -> Subscriber:
        if self._hub is not None:
            try:
                self._hub.attach(self)
            except BaseException:
                self._closed()
                raise
        else:
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (or leave the hub) and close the sockets. Blocks up to `timeout`."""
        with self._lock:
            if not self._stopping:
                self._stopping = True
                if self._efd >= 0:
                    os.eventfd_write(self._efd, 1)
        if self._hub is not None:
            self._hub.detach(self)
            self._done.wait(timeout)
        elif self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading (any thread) -----------------------------------------------------

    def get(self, timeout: float | None = None) -> Event:
        """The next event (queue mode). Raises `queue.Empty` after `timeout`."""
        return self._queue.get(timeout=timeout)

    def __iter__(self) -> Iterator[Event]:
        while True:
            yield self._queue.get()

    def state(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return self.replica.state()

    def topic(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self.replica.get(name)

    def wait_for(self, predicate: Callable[[Subscriber], bool], timeout: float) -> bool:
        """Block until `predicate(self)` holds (checked after every batch)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0 or self._done.is_set():
                    return predicate(self)
                self._changed.wait(left)
            return True

    def wait_synced(self, timeout: float) -> None:
        """Block until the first snapshot is applied; `KeyRefused` as soon as the node
        refuses our key, `NodeUnreachable` if nothing came within `timeout`."""
        synced = self.wait_for(lambda s: s.replica.synced or s.refused is not None, timeout)
        if self.refused is not None:
            raise KeyRefused(self.refused)
        if not synced:
            raise NodeUnreachable(f"no snapshot from {self.sync_endpoint} within {timeout} s")

    def checkpoint(self) -> Checkpoint | None:
        """Where the replica stands now, for `Subscriber(..., resume=...)`."""
        with self._lock:
            return self.replica.checkpoint()

    def statistics(self) -> SubscriberStatistics:
        with self._lock:
            return SubscriberStatistics(
                received=self._received,
                wakeups=self._wakeups,
                malformed=self._malformed,
                requests_sent=self._requests_sent,
                request_timeouts=self._timeouts,
                callback_failures=self._callback_failures,
                skipped=0 if self._gate is None else self._gate.skipped,
                replica=self.replica.statistics(),
            )

    # -- the subscriber thread ------------------------------------------------------

    def _run(self) -> None:
        """The subscriber's own thread: one link, polled alone."""
        ctx = self._context or zmq.Context()
        link: _Link | None = None
        try:
            link = self._open(ctx)
            poller = zmq.Poller()
            for sock in (*link.sockets(), self._efd):
                poller.register(sock, zmq.POLLIN)
            while not self._stopping:
                self._send_request(link)
                ready = dict(poller.poll(self._poll_ms(link)))
                old_dealer = link.dealer, link.dealer_monitor
                self._turn(link, ready, time.monotonic())
                if link.dealer is not old_dealer[0]:
                    for sock in old_dealer:
                        poller.unregister(sock)
                    poller.register(link.dealer, zmq.POLLIN)
                    poller.register(link.dealer_monitor, zmq.POLLIN)
        except BaseException as exc:  # reported, not swallowed: see _error
            self._error = exc
            raise
        finally:
            if link is not None:
                link.close()
            if self._context is None:
                ctx.term()
            self._closed()

    def _closed(self) -> None:
        with self._changed:
            if self._efd >= 0:
                os.close(self._efd)
                self._efd = -1
            self._done.set()
            self._changed.notify_all()

    def _open(self, ctx: zmq.Context[zmq.Socket[bytes]]) -> _Link:
        """Make the sockets and start the replica (the owning thread)."""
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = self._rcvhwm
        if self.security is not None:
            self.security.apply(sub)
        sub_monitor = watch_handshakes(sub)
        prefixes = self.replica.prefixes
        for p in prefixes or ("",):
            sub.subscribe(p.encode())
        if prefixes:
            sub.subscribe(b"_hb")
        sub.connect(self.status_endpoint)
        dealer, dealer_monitor = self._new_dealer(ctx)
        link = _Link(ctx, sub, sub_monitor, dealer, dealer_monitor)
        with self._lock:
            self.replica.start(time.monotonic(), self._resume)
            link.outbox.extend(self.replica.take_requests())
        return link

    def _send_request(self, link: _Link) -> None:
        """Send the next sync request if none is in flight."""
        if link.inflight is None and link.outbox:
            link.inflight = link.outbox.popleft()
            link.dealer.send_multipart([b"", encode_sync_request(link.inflight)])
            self._requests_sent += 1
            link.deadline = time.monotonic() + self._request_timeout

    def _turn(self, link: _Link, ready: Mapping[Any, int], now: float) -> None:
        """What woke the owning thread: read the sockets that are ready, re-send a request
        past its deadline (on a fresh DEALER), let time pass, tell the events."""
        self._wakeups += 1
        with self._lock:
            for monitor in (link.sub_monitor, link.dealer_monitor):
                if monitor in ready and (why := refusal(monitor)) is not None:
                    self.refused = why
            if link.sub in ready:
                self._drain_sub(link.sub, now)
            if link.dealer in ready and link.inflight is None:
                self._drop_unasked(link.dealer)
            elif link.dealer in ready and link.inflight is not None:
                frames = link.dealer.recv_multipart()
                try:
                    reply = decode_sync_reply(frames[-1])
                except MalformedFrame:
                    self._malformed += 1
                else:
                    self.replica.feed_reply(link.inflight, reply, now)
                link.inflight = None
            elif link.inflight is not None and now >= link.deadline:
                # Lazy pirate: a lost request or a restarted node; a fresh
                # socket drops whatever the old one still had queued.
                self._timeouts += 1
                unwatch(link.dealer, link.dealer_monitor)
                link.dealer.close()
                link.dealer, link.dealer_monitor = self._new_dealer(link.ctx)
                link.outbox.appendleft(link.inflight)
                link.inflight = None
            self.replica.tick(now)
            link.outbox.extend(self.replica.take_requests())
            self._dispatch(now)
            self._changed.notify_all()

    def _new_dealer(
        self, ctx: zmq.Context[zmq.Socket[bytes]]
    ) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
        """A DEALER to the sync socket, and the monitor of its handshakes."""
        dealer = ctx.socket(zmq.DEALER)
        dealer.linger = 0
        if self.security is not None:
            self.security.apply(dealer)
        monitor = watch_handshakes(dealer)
        dealer.connect(self.sync_endpoint)
        return dealer, monitor

    def _drop_unasked(self, dealer: zmq.Socket[bytes]) -> None:
        """Read and drop replies that came with no request in flight (a server that
        answers twice): counted malformed. Left unread, they would wake us for ever."""
        for _ in range(_BATCH):
            try:
                dealer.recv_multipart(_NOBLOCK)
            except zmq.Again:
                return
            self._malformed += 1

    def _drain_sub(self, sub: zmq.Socket[bytes], now: float) -> None:
        """Apply what the status socket holds, up to `_BATCH` messages."""
        replica = self.replica
        recv = sub.recv
        feed_batch = replica.feed_batch
        topics = self._topic_names
        n = 0
        while n < _BATCH:
            # The topic as a Frame, for its `more` (reading RCVMORE through
            # getsockopt costs more than the whole receive); the body copied, as
            # a Frame costs more than copying 200 bytes. A message of more than
            # two frames thus shows as its first two, then a stray frame: each
            # frame read as a topic with nothing after it is counted malformed
            # and skipped, which also brings the reading back in step.
            try:
                first = recv(_NOBLOCK, copy=False)
            except zmq.Again:
                break
            n += 1
            if not first.more:
                self._malformed += 1  # one frame: not [topic, body]
                continue
            body_b = recv(0)
            topic_b = first.bytes
            try:
                if topic_b == _HB:
                    replica.feed_heartbeat(decode_heartbeat(body_b), now)
                    continue
                topic = topics.get(topic_b)
                if topic is None:
                    topic = topic_b.decode()
                    if len(topics) < _TOPIC_NAMES:
                        topics[topic_b] = topic
                # one update or a batch, checked whole before any of it is applied
                feed_batch(decode_updates(topic, body_b), now)
            except (MalformedFrame, UnicodeDecodeError):
                self._malformed += 1
        self._received += n

    def _due(self, link: _Link) -> float:
        """When the owning thread must look at this subscriber even if nothing arrives:
        the node turning stale if it stays silent, the sync request's deadline, the next
        held update's release; at most `_TICK` from now (monotonic)."""
        due = time.monotonic() + _TICK
        stale_at = self.replica.stale_at()
        if stale_at is not None:
            due = min(due, stale_at)
        if link.inflight is not None:
            due = min(due, link.deadline)
        if self._gate is not None and (at := self._gate.next_due()) is not None:
            due = min(due, at)
        return due

    def _poll_ms(self, link: _Link) -> int:
        return math.ceil(max(0.0, self._due(link) - time.monotonic()) * 1000)

    def _dispatch(self, now: float) -> None:
        events: list[Event] = self.replica.take_events()
        if self._gate is not None:
            events = self._gate.offer(events, now)
        if not events:
            return
        callback = self._on_event
        if callback is None:
            for ev in events:
                self._queue.put(ev)
            return
        for ev in events:
            try:
                callback(ev)
            except Exception:  # the user's code: count it, log it, go on
                self._callback_failures += 1
                log.exception("on_event raised; the subscriber goes on")
