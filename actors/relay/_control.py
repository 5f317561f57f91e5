"""A relay's control socket: ping, status and presence for its downstream watchers.

`RelayControl` serves a ROUTER with the ops a watcher needs (`RELAY_OPS`):
`ping`, `status` and `presence.list` it answers from its own view of what it
mirrors; `presence.join`, `presence.heartbeat` and `presence.leave` it routes
(`PresenceRoutes`) and hands to the `ControlForwarder` of the upstream they
name, which sends them to that node's control socket under the relay's key
and tells the answer back. Every other op is `unknown_op`, naming where the
node's control is: control stays with the node.

Any key the relay allows may use these ops (they are all the watch role's).
Both are supervised actors of the relay; neither ever blocks: a forward the
node does not answer within `timeout` is answered `internal` by the forwarder.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from dataclasses import dataclass
from typing import Any

import pykka
import zmq

from pipecast.actors.runtime import BridgeHandle, ControlSocket, Registry, WireError
from pipecast.transport import (
    NODE_TOPIC,
    BadRequest,
    ControlRequest,
    Limits,
    ServerSecurity,
    Unauthorized,
    UnknownOp,
)

from ._forwarder import ControlAt, ForwardRequest, forwarder_name
from ._presence import Forward, PresenceRoutes, presence_list

__all__ = ["RELAY_OPS", "RelayControl"]

log = logging.getLogger("pipecast.relay")

RELAY_OPS = frozenset(
    {"ping", "status", "presence.list", "presence.join", "presence.heartbeat", "presence.leave"}
)


@dataclass(slots=True)
class _Gather:
    """A many-watcher heartbeat split over upstreams: the answers so far."""

    routing: tuple[bytes, ...]
    cid: str
    waiting: int
    unknown: list[str]
    known: int = 0


@dataclass(frozen=True, slots=True)
class _Answered:
    routing: tuple[bytes, ...]
    cid: str
    forward: Forward
    ok: bool
    payload: Any
    gather: _Gather | None = None


class RelayControl(ControlSocket):
    """The relay's control ROUTER (see module docstring)."""

    LOG = log
    WHAT = "the relay's control"

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any] | None,
        bridge: BridgeHandle,
        endpoint: str,
        ready: concurrent.futures.Future[str],
        upstreams: tuple[tuple[str, str | None, str], ...],  # (label, name, status endpoint)
        registry: Registry,
        limits: Limits | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        security: ServerSecurity | None = None,
    ) -> None:
        super().__init__(
            name=name,
            supervisor=supervisor,
            bridge=bridge,
            endpoint=endpoint,
            ready=ready,
            limits=limits,
            context=context,
            security=security,
        )
        self.upstreams = upstreams
        self.registry = registry
        self._routes = PresenceRoutes([(label, name) for label, name, _ in upstreams])
        self._controls: dict[str, str] = {}  # label -> the upstream's control endpoint
        self._node_controls: dict[str, str] = {}  # label -> the root node's control

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Answered):
            self._answered(message)
            return None
        return super().on_receive(message)

    def on_tick(self) -> None:
        super().on_tick()
        self._routes.expire(time.monotonic())
        # told every tick, so a restarted forwarder learns it again at once
        for label, name, _ in self.upstreams:
            topic = f"{name}/{NODE_TOPIC}" if name is not None else NODE_TOPIC
            # the mirror rewrote it: `upstream_control` is where the upstream listens
            endpoints = (self.view.get(topic) or {}).get("endpoints") or {}
            control = endpoints.get("upstream_control")
            node_control = endpoints.get("node_control")
            if type(node_control) is str:
                self._node_controls[label] = node_control
            if type(control) is str:
                self._controls[label] = control
                self.registry.tell(forwarder_name(label), ControlAt(control))

    def dispatch(self, routing: tuple[bytes, ...], req: ControlRequest, user: str | None) -> None:
        op, cid, args = req.op, req.cid, req.args
        role = None
        if self.security is not None:
            role = self.security.role_of(user)
            if role is None or user is None:
                raise Unauthorized(f"{op}: this key is not allowed (any more)")
        if op not in RELAY_OPS:
            where = ", ".join(f"{label} at {ep}" for label, ep in self._node_controls.items())
            raise UnknownOp(
                f"{op}: a relay serves {', '.join(sorted(RELAY_OPS))}; control stays with "
                f"the node ({where or 'not known yet'})"
            )
        owner = user or ""
        now = time.monotonic()
        if op == "ping":
            self.ok(
                routing,
                cid,
                {
                    "pong": True,
                    "ts": time.time(),
                    "epoch": self.bridge.epoch,
                    "role": role.value if role else "operate",
                    "relay": True,
                },
            )
        elif op == "status":
            self.ok(routing, cid, self._status(args.get("prefix", "")))
        elif op == "presence.list":
            topic = args.get("topic")
            if topic is not None and type(topic) is not str:
                raise BadRequest("topic must be a string")
            names = [(label, name) for label, name, _ in self.upstreams]
            self.ok(routing, cid, presence_list(self.view, names, topic))
        elif op == "presence.join":
            self._forward(routing, cid, self._routes.join(owner, args, now))
        elif op == "presence.heartbeat" and "watchers" in args:
            forwards, unknown = self._routes.heartbeat_many(owner, args, now)
            if not forwards:
                self.ok(routing, cid, {"known": 0, "unknown": unknown})
                return
            gather = _Gather(routing, cid, len(forwards), unknown)
            for each in forwards:
                self._forward(routing, cid, each, gather)
        else:
            about = self._routes.heartbeat if op == "presence.heartbeat" else self._routes.leave
            one = about(owner, args, now)
            if one is None:  # a watcher this relay does not know
                key = "known" if op == "presence.heartbeat" else "left"
                self.ok(routing, cid, {key: False})
            else:
                self._forward(routing, cid, one)

    def _status(self, prefix: Any) -> dict[str, Any]:
        if type(prefix) is not str:
            raise BadRequest("prefix must be a string")
        topics = {t: dict(kv) for t, kv in self.view.items() if t.startswith(prefix) and kv}
        upstreams = [
            {
                "label": label,
                "name": name,
                "status_endpoint": status,
                "control": self._controls.get(label),
                "node_control": self._node_controls.get(label),
            }
            for label, name, status in self.upstreams
        ]
        return {
            "epoch": self.bridge.epoch,
            "topics": topics,
            "security": "curve" if self.security is not None else "insecure",
            "relay": {"upstreams": upstreams},
        }

    def _forward(
        self,
        routing: tuple[bytes, ...],
        cid: str,
        forward: Forward,
        gather: _Gather | None = None,
    ) -> None:
        me = self.actor_ref

        def reply(ok: bool, payload: Any) -> None:
            me.tell(_Answered(routing, cid, forward, ok, payload, gather))

        message = ForwardRequest(forward.op, forward.args, reply)
        if not self.registry.tell(forwarder_name(forward.upstream), message):
            reply(False, {"type": "internal", "message": "the relay's forwarder is down"})

    def _answered(self, msg: _Answered) -> None:
        if msg.gather is not None:
            self._gathered(msg, msg.gather)
            return
        if msg.ok:
            self._routes.answered(msg.forward, msg.payload)
            self.ok(msg.routing, msg.cid, msg.payload)
            return
        self._routes.failed(msg.forward)
        error = msg.payload
        details = {k: v for k, v in error.items() if k not in ("type", "message")}
        self.error(
            msg.routing,
            msg.cid,
            WireError(str(error.get("type", "internal")), str(error.get("message", "")), details),
        )

    def _gathered(self, msg: _Answered, gather: _Gather) -> None:
        """One upstream's answer to a many-watcher heartbeat; the reply once all are in.
        An upstream that failed counts its watchers unknown (they join again)."""
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        if msg.ok:
            self._routes.answered(msg.forward, payload)
            known = payload.get("known")
            gather.known += known if type(known) is int else 0
            gather.unknown += [w for w in payload.get("unknown") or () if isinstance(w, str)]
        else:
            gather.unknown += msg.forward.args.get("watchers", [])
        gather.waiting -= 1
        if gather.waiting == 0:
            self.ok(gather.routing, gather.cid, {"known": gather.known, "unknown": gather.unknown})

    def statistics(self) -> dict[str, Any]:
        stats = self._routes.statistics()
        return {
            "requests": self._requests,
            "errors": self._errors,
            "watchers": stats.watchers,
            "forwarded": stats.forwarded,
            "refused": stats.refused,
            "expired": stats.expired,
        }
