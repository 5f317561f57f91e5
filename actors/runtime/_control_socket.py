"""A control ROUTER served by an actor: what a node's control server and a relay's share.

`ControlSocket` binds its endpoint (a restarted incarnation binds the one the
first bound, so a port of 0 stays the same port; a first start that cannot
bind resolves `ready` with the error and stops), follows the bus into a
replica of every topic (`view`, for `status`), decodes each request within
the `Limits` and hands it to `dispatch`, and answers: every reply is packed
before it is sent, a reply that cannot be packed becomes an error reply, and
nothing a request contains raises past the loop (a bug is answered
`internal` and logged). Subclasses implement `dispatch` and may add `on_tick`
work and messages of their own. All of it runs in the actor's thread; no call
blocks (a reply to a peer that is gone or reads none is dropped and counted).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import pykka
import zmq

from pipecast.transport import (
    BindError,
    ControlRequest,
    Limits,
    PipecastError,
    Reset,
    ServerSecurity,
    Update,
    apply_to_state,
    decode_control_request,
    encode_control_error,
    encode_control_ok,
)

from ._bridge_handle import BridgeHandle
from ._inbox import SocketReadable, TimerDue
from ._socket_actor import SocketActor
from ._supervised import Supervised

__all__ = ["ControlSocket", "WireError"]


class WireError(PipecastError):
    """An error reply to send as it is: its wire type, message and details (one that
    another server answered, passed on)."""

    def __init__(self, wire_type: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.wire_type = wire_type
        self._details = dict(details or {})

    def details(self) -> dict[str, Any]:
        return dict(self._details)


@dataclass(frozen=True, slots=True)
class _Local:
    event: Update | Reset


class ControlSocket(SocketActor, Supervised):
    """See module docstring. `LOG` names the server in its log lines; `WHAT` in a
    bind error."""

    LOG = logging.getLogger("pipecast.control")
    WHAT = "the control socket"
    INTERVAL = 0.25  # seconds between `on_tick`s

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any] | None,
        bridge: BridgeHandle,
        endpoint: str,
        ready: concurrent.futures.Future[str],
        limits: Limits | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        security: ServerSecurity | None = None,
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.endpoint = endpoint
        self.limits = limits or Limits()
        self.context = context
        self.security = security
        self._ready = ready
        self._router: zmq.Socket[bytes] | None = None
        self.view: dict[str, dict[str, Any]] = {}  # every topic's keys, as watchers see them
        self._token: int | None = None
        self._requests = 0
        self._errors = 0
        self._refused: dict[str, int] = {}  # error replies by type

    # -- what a subclass does ------------------------------------------------------------

    def dispatch(self, routing: tuple[bytes, ...], req: ControlRequest, user: str | None) -> None:
        """Answer `req` (now with `ok`/`error`, or later from a message), whose key is
        `user` (its ZAP User-Id; None without CURVE). Raise a `PipecastError` to refuse."""
        raise NotImplementedError

    def on_tick(self) -> None:
        """Every `INTERVAL` seconds."""
        self.check_handshakes()

    # -- lifecycle ---------------------------------------------------------------------

    def on_begin(self) -> None:
        first = not self._ready.done()
        endpoint = self.endpoint if first else self._ready.result()
        self.use_context(self.context)
        try:
            self._router = self.bind(
                zmq.ROUTER,
                endpoint,
                self.security,
                maxmsgsize=self.limits.frame_bytes,
                sndhwm=self.limits.queued_replies,
                rcvhwm=self.limits.queued_replies * 64,
                router_mandatory=1,  # a reply that cannot be queued is an error we count
            )
        except BindError as exc:
            self.close_sockets()
            self._router = None
            if not first:
                raise
            self._ready.set_exception(BindError(f"cannot bind {self.WHAT}: {exc}"))
            self.stop()
            return
        self.serve(self._router, self.INTERVAL)
        me = self.actor_ref
        self._token = self.bridge.subscribe([""], lambda ev: me.tell(_Local(ev)))
        if first:
            self._ready.set_result(str(self._router.get_string(zmq.LAST_ENDPOINT)))

    def on_end(self, error: str | None) -> None:
        if self._token is not None:
            with contextlib.suppress(PipecastError):  # the bridge went first
                self.bridge.unsubscribe(self._token)
            self._token = None
        self.close_sockets()
        self._router = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Local):
            apply_to_state(self.view, message.event)
        elif isinstance(message, SocketReadable):
            self._serve()
        elif isinstance(message, TimerDue):
            self.on_tick()
        else:
            return super().on_receive(message)
        return None

    # -- requests and replies ------------------------------------------------------------

    def _serve(self) -> None:
        router = self._router
        if router is None:
            return
        for routing, body, user in self.requests(router):
            self._requests += 1
            cid: str | None = None
            try:
                req = decode_control_request(body, self.limits)
                cid = req.cid
                self.dispatch(tuple(routing), req, user)
            except PipecastError as exc:
                self.LOG.info("control request refused [cid=%s]: %s", cid, exc)
                self.error(tuple(routing), cid, exc)
            except Exception as exc:  # a bug: answer `internal`, keep serving
                self.LOG.exception("control request failed [cid=%s]", cid)
                self.error(tuple(routing), cid, PipecastError(repr(exc)))

    def ok(self, routing: tuple[bytes, ...], cid: str, result: Any) -> None:
        """Answer `result`, packed first: one that cannot be packed is an error reply."""
        try:
            body = encode_control_ok(cid, result)
        except (TypeError, ValueError, OverflowError) as exc:  # msgpack's refusals
            self.LOG.error("control reply could not be packed [cid=%s]: %r", cid, exc)
            self.error(routing, cid, PipecastError(f"the answer could not be encoded: {exc}"))
            return
        self._send(routing, body)

    def error(self, routing: tuple[bytes, ...], cid: str | None, exc: PipecastError) -> None:
        self._errors += 1
        self._refused[exc.wire_type] = self._refused.get(exc.wire_type, 0) + 1
        try:
            body = encode_control_error(cid, exc.wire_type, str(exc), exc.details())
        except (TypeError, ValueError, OverflowError):  # details that cannot be packed
            body = encode_control_error(cid, exc.wire_type, str(exc))
        self._send(routing, body)

    def _send(self, routing: tuple[bytes, ...], body: bytes) -> None:
        if self._router is not None and not self.answer(self._router, list(routing), body):
            self.LOG.warning("control reply dropped: the client is gone or flooded")
