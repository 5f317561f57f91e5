"""A polling actor that owns ZeroMQ sockets and serves a ROUTER from its mailbox.

The bridge and the control server both own sockets in their own thread, wait
on their mailbox and a ROUTER together (through `PollingInbox`), answer
requests along the routing envelope, and must close everything in that same
thread however they end. That shared part lives here once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import zmq
import zmq.utils.monitor

from pipecast.transport import (
    BindError,
    ClientSecurity,
    HandshakeFailure,
    HandshakeStatistics,
    HandshakeTally,
    ServerSecurity,
    handshake_failure,
)

from ._polling_actor import PollingActor

__all__ = ["SocketActor"]

log = logging.getLogger("pipecast.security")

# requests taken off the ROUTER per wake-up: bounded, so the mailbox is not starved
_REQUESTS_PER_TURN = 100
_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
# monitor events read per check: a flood of handshakes cannot hold the actor
_EVENTS_PER_CHECK = 10_000


class SocketActor(PollingActor):
    """Base for actors owning sockets (see module docstring).

    Subclasses create sockets with `bind()` in `on_start`, then `serve()` one
    ROUTER; `close_sockets()` runs on stop and on failure, in the actor thread.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # cooperative: a supervised socket actor has keywords
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._own_ctx = True
        self._sockets: list[zmq.Socket[bytes]] = []
        self._monitors: list[tuple[str, zmq.Socket[bytes]]] = []
        self.handshakes = HandshakeTally()

    def use_context(self, ctx: zmq.Context[zmq.Socket[bytes]] | None) -> None:
        """Make sockets in `ctx` (the node's: its ZAP handler lives there) instead of a
        context of this actor's own; the caller terminates it. Before any `bind`."""
        if ctx is not None:
            self._ctx, self._own_ctx = ctx, False

    def bind(
        self,
        kind: int,
        endpoint: str,
        security: ServerSecurity | None = None,
        **options: Any,
    ) -> zmq.Socket[bytes]:
        """Create a socket of `kind`, a CURVE server if `security` is given (with its
        handshakes watched: `check_handshakes`), set `options`, bind it; `BindError` on
        failure."""
        sock = self._socket(kind, security, options)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            raise BindError(f"cannot bind {endpoint}: {exc}") from None
        if security is not None:
            monitor = sock.get_monitor_socket(_HANDSHAKE_EVENTS)
            self._monitors.append((str(sock.get_string(zmq.LAST_ENDPOINT)), monitor))
        return sock

    def connect(
        self, kind: int, endpoint: str, security: ClientSecurity | None = None, **options: Any
    ) -> zmq.Socket[bytes]:
        """Create a socket of `kind`, a CURVE client if `security` is given, set
        `options`, connect it (libzmq connects in the background: never blocks)."""
        sock = self._socket(kind, security, options)
        sock.connect(endpoint)
        return sock

    def _socket(
        self,
        kind: int,
        security: ServerSecurity | ClientSecurity | None,
        options: dict[str, Any],
    ) -> zmq.Socket[bytes]:
        """A socket of this actor's (closed with the others), its keys and options set."""
        if self._ctx is None:
            self._ctx = zmq.Context()
        sock = self._ctx.socket(kind)
        self._sockets.append(sock)
        sock.linger = 0
        if security is not None:
            security.apply(sock)
        for name, value in options.items():
            setattr(sock, name, value)
        return sock

    def close_socket(self, sock: zmq.Socket[bytes]) -> None:
        """Close one socket made by `connect` (stop polling it first)."""
        if sock in self._sockets:
            self._sockets.remove(sock)
        sock.close()

    def check_handshakes(self) -> None:
        """Count the handshakes the monitors saw since the last check, and log the
        failures other than refused keys (rate-limited: `HandshakeTally`); the ZAP
        handler logs refused keys, with the peer's address, which libzmq's monitor
        events do not carry. Actor thread; never blocks. Called on the actor's timer,
        so a count lags by one tick at most."""
        now = time.monotonic()
        for endpoint, monitor in self._monitors:
            for _ in range(_EVENTS_PER_CHECK):
                try:
                    event = zmq.utils.monitor.recv_monitor_message(monitor, zmq.NOBLOCK)
                except zmq.Again:
                    break
                if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    self.handshakes.success()
                    continue
                failure = handshake_failure(event["event"], event["value"])
                if failure is None:
                    continue
                if failure is HandshakeFailure.KEY_REFUSED:
                    self.handshakes.count(failure)
                elif self.handshakes.record(failure, endpoint, now):
                    more = self.handshakes.take_unlogged()
                    log.warning(
                        "a handshake on %s failed: %s%s",
                        endpoint,
                        failure.describe(),
                        f" (and {more} more not logged)" if more else "",
                    )

    def handshake_statistics(self) -> HandshakeStatistics | None:
        """The handshake counts of this actor's CURVE sockets (None: it has none)."""
        return self.handshakes.statistics() if self._monitors else None

    def serve(self, router: zmq.Socket[bytes], interval: float) -> None:
        """Wake for `router`'s requests, and fire `TimerDue` every `interval` s."""
        self.poll_every(interval, router)

    def requests(
        self, router: zmq.Socket[bytes]
    ) -> Iterator[tuple[list[bytes], bytes, str | None]]:
        """The waiting requests as (routing envelope, body, the key they came with: its
        ZAP User-Id, None without CURVE); never blocks."""
        for _ in range(_REQUESTS_PER_TURN):
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) >= 2:
                try:
                    found = frames[-1].get("User-Id")
                except zmq.ZMQError:  # no ZAP on this socket
                    found = None
                user = found if isinstance(found, str) and found else None
                yield [f.bytes for f in frames[:-1]], frames[-1].bytes, user

    @staticmethod
    def answer(router: zmq.Socket[bytes], routing: list[bytes], body: bytes) -> bool:
        """Send a reply along `routing`; False if the peer is gone, or has as many replies
        waiting as its queue holds (it reads none): the reply is dropped, never kept."""
        try:
            router.send_multipart([*routing, body], zmq.NOBLOCK)
        except zmq.ZMQError:  # EAGAIN: its queue is full; EHOSTUNREACH: it is gone
            return False
        return True

    def close_sockets(self) -> None:
        """Stop polling, close every socket, end the context. Idempotent."""
        self.stop_polling()
        for sock in self._sockets:
            if self._monitors:
                with contextlib.suppress(zmq.ZMQError):
                    sock.disable_monitor()
            sock.close()
        for _, monitor in self._monitors:
            monitor.close()
        self._sockets.clear()
        self._monitors.clear()
        if self._ctx is not None and self._own_ctx:
            self._ctx.term()
            self._ctx = None

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """A handler raised: pykka already logged it; close the sockets, then let the
        next base (a supervised actor's) have its say."""
        self.close_sockets()
        super().on_failure(exception_type, exception_value, traceback)
