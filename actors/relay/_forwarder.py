"""One upstream node's control socket, as a client with the relay's key.

`ControlForwarder` is the relay's half of forwarding presence: `RelayControl`
tells it where the node's control socket is (`ControlAt`, every tick, so a
restarted forwarder learns it at once) and hands it requests
(`ForwardRequest`); it sends each on its DEALER under a cid of its own and calls
the request's `reply` with the node's answer, or with an `internal` error when
the node does not answer within `timeout` (3 s) or too many wait (1,024).
Supervised; never blocks; its thread owns its socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import pykka
import zmq

from pipecast.actors.runtime import (
    BridgeHandle,
    SocketActor,
    SocketReadable,
    Supervised,
    TimerDue,
)
from pipecast.transport import ClientSecurity, Limits, new_cid

__all__ = ["ControlAt", "ControlForwarder", "ForwardRequest", "forwarder_name"]

log = logging.getLogger("pipecast.relay")

_INTERVAL = 0.25


def forwarder_name(label: str) -> str:
    return f"forward-{label}"


@dataclass(frozen=True, slots=True)
class ControlAt:
    """Told to a forwarder: its node's control socket is (now) at `endpoint`."""

    endpoint: str


@dataclass(frozen=True, slots=True)
class ForwardRequest:
    op: str
    args: dict[str, Any]
    reply: Callable[[bool, Any], None]  # (ok, result or error map); forwarder thread


class ControlForwarder(SocketActor, Supervised):
    """One upstream node's control socket, as a client with the relay's key."""

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any] | None,
        bridge: BridgeHandle,
        security: ClientSecurity | None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        limits: Limits | None = None,
        timeout: float = 3.0,
        max_pending: int = 1024,
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.security = security
        self.context = context
        self.limits = limits or Limits()
        self.timeout = timeout
        self.max_pending = max_pending
        self.endpoint: str | None = None
        self._dealer: zmq.Socket[bytes] | None = None
        self._pending: dict[str, tuple[float, Callable[[bool, Any], None]]] = {}
        self._sent = 0
        self._timed_out = 0

    def on_begin(self) -> None:
        self.use_context(self.context)
        self.poll_every(_INTERVAL)

    def on_end(self, error: str | None) -> None:
        for _, reply in self._pending.values():
            reply(False, {"type": "internal", "message": "the relay's forwarder stopped"})
        self._pending.clear()
        self.close_sockets()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ForwardRequest):
            self._send(message)
        elif isinstance(message, SocketReadable):
            self._read()
        elif isinstance(message, ControlAt):
            self._connect(message.endpoint)
        elif isinstance(message, TimerDue):
            self._expire(time.monotonic())
        else:
            return super().on_receive(message)
        return None

    def _connect(self, endpoint: str) -> None:
        if endpoint == self.endpoint:
            return
        old, self.endpoint = self._dealer, endpoint
        self._dealer = self.connect(
            zmq.DEALER, endpoint, self.security, maxmsgsize=self.limits.frame_bytes
        )
        self.poll_every(_INTERVAL, self._dealer)
        if old is not None:
            self.close_socket(old)
        log.info("%s: the node's control is at %s", self.actor_name, endpoint)

    def _send(self, message: ForwardRequest) -> None:
        if self._dealer is None:
            message.reply(
                False,
                {
                    "type": "internal",
                    "message": "the node's control socket "
                    "is not known yet (its topic node has not arrived)",
                },
            )
            return
        if len(self._pending) >= self.max_pending:
            message.reply(False, {"type": "too_large", "message": "too many forwards waiting"})
            return
        cid = new_cid()
        body = msgpack.packb({"v": 2, "op": message.op, "cid": cid, **message.args})
        try:
            self._dealer.send_multipart([b"", body], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            message.reply(False, {"type": "internal", "message": f"cannot reach the node: {exc}"})
            return
        self._sent += 1
        self._pending[cid] = (time.monotonic() + self.timeout, message.reply)

    def _read(self) -> None:
        dealer = self._dealer
        for _ in range(1000):
            if dealer is None:
                return
            try:
                frames = dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = msgpack.unpackb(frames[-1])
                cid = reply["cid"]
                waiting = self._pending.pop(cid, None) if type(cid) is str else None
            except Exception:  # a malformed reply from upstream: dropped, its forward times out
                log.warning("%s: a malformed reply from the node, dropped", self.actor_name)
                continue
            if waiting is None:
                continue  # late: already answered as timed out
            if reply.get("ok") is True:
                waiting[1](True, reply.get("result"))
            else:
                error = reply.get("error")
                waiting[1](False, error if type(error) is dict else {"type": "internal"})

    def _expire(self, now: float) -> None:
        late = [cid for cid, (deadline, _) in self._pending.items() if deadline <= now]
        for cid in late:
            _, reply = self._pending.pop(cid)
            self._timed_out += 1
            reply(
                False,
                {
                    "type": "internal",
                    "message": f"the node behind this relay did not answer within {self.timeout} s",
                },
            )

    def statistics(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "sent": self._sent,
            "pending": len(self._pending),
            "timed_out": self._timed_out,
        }
