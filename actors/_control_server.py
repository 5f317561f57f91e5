"""The control socket's server: an actor owning the node's control ROUTER.

It decodes each request, answers what it can itself (ping, status, stats,
publish) and forwards stage commands to the stage by `tell` with a reply
callable; the stage's answer comes back as a message and goes out on the
ROUTER from this actor's thread (one owner per socket). Bad requests get typed
error replies and change nothing. `status` is answered from an in-process
replica fed by the bridge, so it says exactly what watchers see.

Every request is checked against the node's `Limits` before any work, and
every reply is packed before it is sent: a reply that cannot be packed
becomes an error reply, so nothing a request contains can raise past the
loop. The server is supervised: a restarted incarnation binds the endpoint
the first one bound (a port of 0 stays the same port).
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

import pykka
import zmq

from pipecast.transport import (
    TRACE,
    WATCH_OPS,
    BadRequest,
    ControlRequest,
    ErrorType,
    Limits,
    PipecastError,
    Role,
    ServerSecurity,
    TooLarge,
    Unauthorized,
    UnknownOp,
    expect_str,
    pack_data,
)

from .media import library_request
from .networks import (
    INSTALLATION_OPS,
    INSTALLATIONS,
    NETWORK_OPS,
    InstallationRequest,
    network_request,
    networks_result,
)
from .presence import PresenceBeat, PresenceJoin, PresenceLeave, PresenceList
from .runtime import (
    BridgeHandle,
    ControlSocket,
    Enqueue,
    Registry,
    StageCommand,
    StatisticsRequest,
)

__all__ = ["CONTROL", "CONTROL_OPS", "ControlServer", "UnknownStage"]

log = logging.getLogger("pipecast.control")

# how loudly each request is logged: what changes something at INFO (-v), what
# only reads at DEBUG (-vv), the one that comes every second per watcher at TRACE
_READ_OPS = WATCH_OPS - {"presence.heartbeat"}
_QUIET_OPS = {"presence.heartbeat": TRACE}


CONTROL = "control"  # the control server's name among a node's actors
PRESENCE_PREFIX = "presence/"

# A remote watcher heartbeats every second; 2.5 s tolerates one lost beat
# and still ends a vanished watcher within 3 s (with the 50 ms flush).
DEFAULT_TTL = 2.5
MAX_BEATS = 10_000  # watchers renewed by one presence.heartbeat (a gateway's open pages)


# every op the control socket serves (docs/PROTOCOL.md, "Ops", lists exactly these)
CONTROL_OPS = frozenset(
    {
        "ping",
        "status",
        "stats",
        "pause",
        "suspend",
        "resume",
        "toggle",
        "enqueue",
        "jobs",
        "job",
        "retry",
        "cancel",
        "nodes",
        "publish",
        "presence.join",
        "presence.heartbeat",
        "presence.leave",
        "presence.list",
        "networks",
        "shutdown",
        *NETWORK_OPS,
        *INSTALLATION_OPS,
    }
)


class UnknownStage(PipecastError):
    wire_type = ErrorType.UNKNOWN_STAGE


@dataclass(frozen=True, slots=True)
class _Answer:
    routing: tuple[bytes, ...]
    cid: str
    result: Any


@dataclass(frozen=True, slots=True)
class _StatsPart:
    """One component's statistics, for the stats request `token`."""

    token: int
    part: str
    stats: Any


@dataclass(slots=True)
class _PendingStats:
    token: int
    routing: tuple[bytes, ...]
    cid: str
    deadline: float
    parts: dict[str, Any] = field(default_factory=dict)
    expected: set[str] = field(default_factory=set)


class ControlServer(ControlSocket):
    """See module docstring. Started as the supervised child `CONTROL` of a node;
    the first incarnation resolves `ready` with the endpoint it bound."""

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any] | None,
        bridge: BridgeHandle,
        endpoint: str,
        registry: Registry,
        stage_names: tuple[str, ...],
        on_shutdown: Callable[[], None],
        ready: concurrent.futures.Future[str],
        networks: dict[str, dict[str, Any]] | None = None,
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
        self.networks = networks or {}
        self.registry = registry
        self.stage_names = stage_names
        self._on_shutdown = on_shutdown
        self._pending_stats: dict[int, _PendingStats] = {}
        self._stats_asked = 0

    # -- messages (control thread) ---------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Answer):
            self._answer(message)
        elif isinstance(message, _StatsPart):
            self._stats_part(message)
        else:
            return super().on_receive(message)
        return None

    def on_tick(self) -> None:
        self._expire_stats(time.monotonic())
        super().on_tick()

    def _reply_to(self, routing: tuple[bytes, ...], cid: str) -> Callable[[Any], None]:
        me = self.actor_ref

        def reply(result: Any) -> None:
            me.tell(_Answer(routing, cid, result))

        return reply

    def _authorize(self, op: str, user: str | None) -> str:
        """Who asks (their key's User-Id; "" without CURVE): `Unauthorized` if that key
        is not allowed now, or its role does not cover `op`. Checked per request, so a
        revoked key is refused at once, whatever its connection let through."""
        if self.security is None:
            return ""
        role = self.security.role_of(user)
        if role is None or user is None:
            raise Unauthorized(f"{op}: this key is not allowed (any more)")
        if role is not Role.OPERATE and op not in WATCH_OPS:
            raise Unauthorized(f"{op} needs the operate role; this key has the {role} role")
        return user

    def _who(self, user: str | None) -> str:
        """The name a request's key was allowed under (for the log)."""
        if self.security is None:
            return "anyone (insecure)"
        grant = self.security.allowed.lookup(user)
        return grant.name if grant is not None else "an unknown key"

    def dispatch(
        self, routing: tuple[bytes, ...], req: ControlRequest, user: str | None = None
    ) -> None:
        op, cid, args = req.op, req.cid, req.args
        if op not in CONTROL_OPS:
            raise UnknownOp(f"unknown op {op!r}")
        owner = self._authorize(op, user)
        level = _QUIET_OPS.get(op, logging.DEBUG if op in _READ_OPS else logging.INFO)
        if log.isEnabledFor(level):
            log.log(level, "control %s by %s [cid=%s]", op, self._who(user), cid)
        if op == "ping":
            role = Role.OPERATE if self.security is None else self.security.role_of(user)
            pong = {"pong": True, "ts": time.time(), "epoch": self.bridge.epoch}
            self.ok(routing, cid, {**pong, "role": role.value if role else None})
        elif op == "status":
            prefix = args.get("prefix", "")
            if type(prefix) is not str:
                raise BadRequest("prefix must be a string")
            view = {t: dict(kv) for t, kv in self.view.items() if t.startswith(prefix) and kv}
            security = "curve" if self.security is not None else "insecure"
            self.ok(
                routing, cid, {"epoch": self.bridge.epoch, "topics": view, "security": security}
            )
        elif op in ("pause", "suspend", "resume", "toggle"):
            ref = self._stage_ref(args.get("stage"))
            ref.tell(StageCommand(op, cid, self._reply_to(routing, cid)))
        elif op == "enqueue":
            self._enqueue(routing, cid, args)
        elif op in ("jobs", "job", "retry", "cancel", "nodes"):
            ref = self._stage_ref(self.stage_names[0] if self.stage_names else None)
            ref.tell(library_request(op, args, cid, self._reply_to(routing, cid)))
        elif op == "publish":
            self._publish(routing, cid, args)
        elif op == "stats":
            self._stats(routing, cid)
        elif op.startswith("presence."):
            self._presence(routing, cid, op, args, owner)
        elif op in NETWORK_OPS:
            name, request = network_request(
                op, args, cid, self._reply_to(routing, cid), self.networks
            )
            if not self.registry.tell(name, request):
                raise PipecastError(f"the runner of {args['network']!r} is down (see actor/{name})")
        elif op in INSTALLATION_OPS:
            asked = InstallationRequest(op, args, cid, self._reply_to(routing, cid))
            if not self.registry.tell(INSTALLATIONS, asked):
                raise PipecastError("the installations actor is down (see actor/installations)")
        elif op == "networks":
            self.ok(routing, cid, networks_result(self.networks, self.view))
        elif op == "shutdown":
            self.ok(routing, cid, {"stopping": True})
            self._on_shutdown()
        else:
            raise UnknownOp(f"unknown op {op!r}")

    def _stage_ref(self, stage: Any) -> pykka.ActorRef[Any]:
        if type(stage) is not str or not stage:
            raise BadRequest("stage must be a non-empty string")
        if stage not in self.stage_names:
            raise UnknownStage(f"no stage named {stage!r} (stages: {', '.join(self.stage_names)})")
        ref = self.registry.get(stage)
        if ref is None or not ref.is_alive():
            raise PipecastError(f"stage {stage!r} is down (see actor/{stage})")
        return ref

    def _presence(
        self, routing: tuple[bytes, ...], cid: str, op: str, args: dict[str, Any], owner: str
    ) -> None:
        """`owner`: the key that asks; only the key that joined a watcher heartbeats,
        leaves or moves it."""
        ref = self.registry.get("presence")
        if ref is None or not ref.is_alive():
            raise PipecastError("the presence tracker is down (see actor/presence)")
        reply = self._reply_to(routing, cid)
        watcher = args.get("watcher")
        if op == "presence.heartbeat" and "watchers" in args:
            many = args["watchers"]
            if (
                type(many) is not list
                or not 0 < len(many) <= MAX_BEATS
                or not all(type(w) is str and 0 < len(w) <= 128 for w in many)
            ):
                raise BadRequest(
                    f"watchers must be a list of 1 to {MAX_BEATS} strings of 1 to 128 characters"
                )
            ref.tell(PresenceBeat(tuple(many), reply, owner, many=True))
            return
        if op == "presence.list":
            topic = args.get("topic")
            if topic is not None:
                expect_str(topic, "topic", self.limits.topic_chars)
            ref.tell(PresenceList(topic, reply))
            return
        if type(watcher) is not str or not 0 < len(watcher) <= 128:
            raise BadRequest("watcher must be a string of 1 to 128 characters")
        if op == "presence.join":
            topic, meta, ttl = args.get("topic"), args.get("meta", {}), args.get("ttl", DEFAULT_TTL)
            # its presence topic, presence/<topic>, must fit a topic's bound too
            topic = expect_str(topic, "topic", self.limits.topic_chars - len(PRESENCE_PREFIX))
            if type(meta) is not dict:
                raise BadRequest("meta must be a map")
            if len(pack_data(meta)) > self.limits.value_bytes:
                raise TooLarge(f"meta is over {self.limits.value_bytes} bytes packed")
            if type(ttl) not in (int, float) or not 0 < ttl <= 3600:
                raise BadRequest("ttl must be a number of seconds in (0, 3600]")
            meta = {**meta, "host": meta.get("host") or "remote"}
            ref.tell(PresenceJoin(watcher, topic, meta, float(ttl), reply, cid, owner))
        elif op == "presence.heartbeat":
            ref.tell(PresenceBeat((watcher,), reply, owner))
        elif op == "presence.leave":
            ref.tell(PresenceLeave(watcher, reply, owner))
        else:
            raise UnknownOp(f"unknown op {op!r}")

    def _enqueue(self, routing: tuple[bytes, ...], cid: str, args: dict[str, Any]) -> None:
        paths = args.get("paths")
        if type(paths) is not list or not paths or not all(type(p) is str and p for p in paths):
            raise BadRequest("paths must be a non-empty list of strings")
        if len(paths) > 100_000:
            raise BadRequest("at most 100,000 paths per request")
        recursive = args.get("recursive", False)
        if type(recursive) is not bool:
            raise BadRequest("recursive must be true or false")
        stage = args.get("stage") or (self.stage_names[0] if self.stage_names else None)
        ref = self._stage_ref(stage)
        payloads = tuple({"path": p, "recursive": recursive} for p in paths)
        ref.tell(Enqueue(payloads, cid, self._reply_to(routing, cid)))

    def _publish(self, routing: tuple[bytes, ...], cid: str, args: dict[str, Any]) -> None:
        topic, key, data = args.get("topic"), args.get("key"), args.get("data")
        if type(topic) is not str or not topic.startswith("ext/") or len(topic) <= 4:
            raise BadRequest("topic must start with 'ext/' and name something")
        topic = expect_str(topic, "topic", self.limits.topic_chars)
        key = expect_str(key, "key", self.limits.key_chars)
        if data is not None and type(data) is not dict:
            raise BadRequest("data must be a map or nil")
        if data is not None and len(pack_data(data)) > self.limits.value_bytes:
            raise TooLarge(f"data is over {self.limits.value_bytes} bytes packed")
        reply = self._reply_to(routing, cid)
        self.bridge.publish(
            topic,
            key,
            data,
            cid,
            reply=lambda seq: reply(
                seq if isinstance(seq, PipecastError) else {"topic": topic, "seq": seq}
            ),
        )

    def _stats(self, routing: tuple[bytes, ...], cid: str) -> None:
        """Ask every component for its statistics by tell; answer when all have."""
        self._stats_asked += 1
        pending = _PendingStats(self._stats_asked, routing, cid, time.monotonic() + 2.0)
        targets: dict[str, pykka.ActorRef[Any]] = {"bridge": self.bridge.ref}
        if self.supervisor is not None:
            targets["supervisor"] = self.supervisor
        for name in ("presence", INSTALLATIONS, *self.stage_names):
            ref = self.registry.get(name)
            if ref is not None:
                own = name in ("presence", INSTALLATIONS)
                targets[name if own else f"stage/{name}"] = ref
        for network in self.networks:
            ref = self.registry.get(f"network/{network}")
            if ref is not None:
                targets[f"network/{network}"] = ref
        pending.expected = set(targets)
        self._pending_stats[pending.token] = pending
        me = self.actor_ref
        for part, ref in targets.items():
            try:
                ref.tell(StatisticsRequest(functools.partial(_tell_part, me, pending.token, part)))
            except pykka.ActorDeadError:
                pending.parts[part] = {"error": "not running"}
        self._maybe_finish(pending)

    def _stats_part(self, msg: _StatsPart) -> None:
        pending = self._pending_stats.get(msg.token)
        if pending is not None:  # None: answered already, past its deadline
            pending.parts[msg.part] = _as_dict(msg.stats)
            self._maybe_finish(pending)

    def _answer(self, msg: _Answer) -> None:
        if isinstance(msg.result, PipecastError):
            self.error(msg.routing, msg.cid, msg.result)
        else:
            self.ok(msg.routing, msg.cid, msg.result)

    def _maybe_finish(self, pending: _PendingStats) -> None:
        if pending.expected <= set(pending.parts):
            self._finish_stats(pending)

    def _finish_stats(self, pending: _PendingStats) -> None:
        self._pending_stats.pop(pending.token, None)
        pending.parts["control"] = {
            "requests": self._requests,
            "errors": self._errors,
            "errors_by_type": dict(self._refused),
            "mailbox_depth": self.mailbox_depth(),
            "topics_viewed": len(self.view),
            "limits": self.limits.as_dict(),
            "security": self._security_statistics(),
        }
        self.ok(pending.routing, pending.cid, pending.parts)

    def _security_statistics(self) -> dict[str, Any]:
        """The node's security at a glance: mode, keys, and this socket's handshakes."""
        if self.security is None:
            return {"mode": "insecure"}
        allowed = self.security.allowed
        return {
            "mode": "curve",
            "keys_allowed": len(allowed.grants()),
            "allow_list_error": allowed.error,
            "handshakes": _as_dict(self.handshake_statistics()),
        }

    def _expire_stats(self, now: float) -> None:
        for pending in [p for p in self._pending_stats.values() if now > p.deadline]:
            for part in pending.expected - set(pending.parts):
                pending.parts[part] = {"error": "no answer within 2 s"}
            self._finish_stats(pending)


def _tell_part(me: pykka.ActorRef[Any], token: int, part: str, stats: Any) -> None:
    me.tell(_StatsPart(token, part, stats))


def _as_dict(value: Any) -> Any:
    """A statistics dataclass as plain maps, for msgpack."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value
