"""Downstream watchers, counted in the nodes' presence through a relay. Pure.

A watcher that follows a node through a relay asks the relay, not the node,
to join, heartbeat and leave (`pipecast watch --control RELAY`). The relay
answers what it can from what it mirrors (`presence.list` reads the mirrored
`presence/...` topics) and forwards the rest to the node whose topics the
watcher names, under the relay's own key. The node therefore sees every
forwarded watcher as the relay's; the relay keeps the other half of the rule
that a watcher id belongs to the key that joined it: only that downstream key
may heartbeat or leave it (`Unauthorized` for any other).

Routing a topic: with an unnamed upstream, topics keep their names; with named
upstreams, `NAME/<topic>` is `<topic>` of upstream NAME. A watcher of `*` is
counted on the relay's only upstream; with several, it must name one
upstream's topics (a watcher of everything is not any one node's watcher).

The book of watchers is bounded (`max_watchers`) and forgets a watcher that
left, that its node no longer knows, or that has not been heard of for twice
its lease. No sockets, threads or clock: the caller passes `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipecast.transport import BadRequest, TooLarge, Unauthorized

__all__ = [
    "Forward",
    "PresenceRoutes",
    "RelayPresenceStatistics",
    "presence_list",
    "reachable_control",
]

_WATCHER_CHARS = 128
_MANY = 10_000  # watchers renewed in one request, as the node allows
_DEFAULT_TTL = 10.0
_MAX_TTL = 3600.0


@dataclass(frozen=True, slots=True)
class Forward:
    """A request to send to upstream `upstream` (its label) as the relay."""

    upstream: str
    op: str
    args: dict[str, Any]  # wire arguments, as the node reads them
    watcher: str


@dataclass(frozen=True, slots=True)
class RelayPresenceStatistics:
    watchers: int
    forwarded: int
    refused: int
    expired: int


@dataclass(slots=True)
class _Watcher:
    owner: str  # the downstream key (Z85) that joined it; "" on an insecure relay
    upstream: str
    ttl: float
    expires: float


def _watcher_id(args: Mapping[str, Any]) -> str:
    watcher = args.get("watcher")
    if type(watcher) is not str or not 0 < len(watcher) <= _WATCHER_CHARS:
        raise BadRequest(f"watcher must be a string of 1 to {_WATCHER_CHARS} characters")
    return watcher


class PresenceRoutes:
    """Which upstream a downstream presence request goes to (see module docstring)."""

    def __init__(self, upstreams: Sequence[tuple[str, str | None]], max_watchers: int = 10_000):
        """`upstreams`: (label, name or None) of each upstream, in order."""
        self._upstreams = list(upstreams)
        self.max_watchers = max_watchers
        self._book: dict[str, _Watcher] = {}
        self._forwarded = 0
        self._refused = 0
        self._expired = 0

    def route_topic(self, topic: str) -> tuple[str, str]:
        """(upstream label, the topic as that node names it); `BadRequest` if none."""
        if len(self._upstreams) == 1 and self._upstreams[0][1] is None:
            return self._upstreams[0][0], topic
        if topic == "*" and len(self._upstreams) == 1:
            return self._upstreams[0][0], topic
        for label, name in self._upstreams:
            if name is not None and topic.startswith(f"{name}/") and len(topic) > len(name) + 1:
                return label, topic[len(name) + 1 :]
        names = ", ".join(f"{n}/..." for _, n in self._upstreams if n is not None)
        raise BadRequest(f"topic {topic!r} names no upstream of this relay ({names})")

    def join(self, owner: str, args: Mapping[str, Any], now: float) -> Forward:
        """A downstream `presence.join`: the forward to make (the watcher is booked)."""
        watcher = _watcher_id(args)
        topic = args.get("topic")
        if type(topic) is not str or not topic:
            raise BadRequest("topic must be a non-empty string")
        ttl = args.get("ttl", _DEFAULT_TTL)
        if type(ttl) not in (int, float) or not 0 < ttl <= _MAX_TTL:
            raise BadRequest(f"ttl must be a number of seconds in (0, {_MAX_TTL:g}]")
        self._check_owner(owner, watcher)
        label, upstream_topic = self.route_topic(topic)
        if watcher not in self._book and len(self._book) >= self.max_watchers:
            self._refused += 1
            raise TooLarge(f"this relay holds {self.max_watchers} watchers already")
        previous = self._book.get(watcher)
        if previous is not None and previous.upstream != label:
            self._refused += 1
            raise BadRequest(f"watcher {watcher!r} watches another upstream; leave it first")
        self._book[watcher] = _Watcher(owner, label, float(ttl), now + 2 * float(ttl))
        self._forwarded += 1
        return Forward(label, "presence.join", {**args, "topic": upstream_topic}, watcher)

    def heartbeat(self, owner: str, args: Mapping[str, Any], now: float) -> Forward | None:
        """A downstream `presence.heartbeat`: its forward, or None for a watcher this relay
        does not know (answer `{known: false}`: the watcher joins again)."""
        return self._about(owner, args, now, "presence.heartbeat")

    def heartbeat_many(
        self, owner: str, args: Mapping[str, Any], now: float
    ) -> tuple[list[Forward], list[str]]:
        """A downstream `presence.heartbeat` with `watchers` (the web gateway's form): one
        forward per upstream holding some of them, and the ids this relay answers
        `unknown` itself (not booked here, or booked for another key)."""
        watchers = args.get("watchers")
        if type(watchers) is not list or not 0 < len(watchers) <= _MANY:
            raise BadRequest(f"watchers must be a list of 1 to {_MANY} ids")
        groups: dict[str, list[str]] = {}
        unknown: list[str] = []
        for w in watchers:
            watcher = _watcher_id({"watcher": w})
            entry = self._book.get(watcher)
            if entry is None or entry.owner != owner:
                unknown.append(watcher)
                continue
            entry.expires = now + 2 * entry.ttl
            groups.setdefault(entry.upstream, []).append(watcher)
        self._forwarded += sum(len(ws) for ws in groups.values())
        forwards = [
            Forward(label, "presence.heartbeat", {"watchers": ws}, "")
            for label, ws in groups.items()
        ]
        return forwards, unknown

    def leave(self, owner: str, args: Mapping[str, Any], now: float) -> Forward | None:
        """A downstream `presence.leave`: its forward, or None (answer `{left: false}`)."""
        forward = self._about(owner, args, now, "presence.leave")
        if forward is not None:
            del self._book[forward.watcher]
        return forward

    def answered(self, forward: Forward, result: Any) -> None:
        """The node's answer to a forward: forget a watcher the node does not know."""
        if forward.op != "presence.heartbeat" or not isinstance(result, dict):
            return
        if result.get("known") is False:
            self._book.pop(forward.watcher, None)
        for watcher in result.get("unknown") or ():
            if isinstance(watcher, str):
                self._book.pop(watcher, None)

    def failed(self, forward: Forward) -> None:
        """A forwarded join that the node refused or never answered books nothing."""
        if forward.op == "presence.join":
            self._book.pop(forward.watcher, None)

    def expire(self, now: float) -> int:
        """Forget watchers not heard of for twice their lease; how many."""
        gone = [w for w, entry in self._book.items() if entry.expires <= now]
        for w in gone:
            del self._book[w]
        self._expired += len(gone)
        return len(gone)

    def statistics(self) -> RelayPresenceStatistics:
        return RelayPresenceStatistics(
            len(self._book), self._forwarded, self._refused, self._expired
        )

    def _about(self, owner: str, args: Mapping[str, Any], now: float, op: str) -> Forward | None:
        watcher = _watcher_id(args)
        entry = self._book.get(watcher)
        if entry is None:
            return None
        self._check_owner(owner, watcher)
        entry.expires = now + 2 * entry.ttl
        self._forwarded += 1
        return Forward(entry.upstream, op, {"watcher": watcher}, watcher)

    def _check_owner(self, owner: str, watcher: str) -> None:
        entry = self._book.get(watcher)
        if entry is not None and entry.owner != owner:
            self._refused += 1
            raise Unauthorized(f"watcher {watcher!r} belongs to another key")


def presence_list(
    view: Mapping[str, Mapping[str, Any]],
    upstreams: Sequence[tuple[str, str | None]],
    topic: str | None = None,
) -> dict[str, dict[str, Any]]:
    """`presence.list` from mirrored `[NAME/]presence/<topic>` topics, in the node's
    shape: {topic: {count, watchers: {watcher: meta}}}, topics named as downstream
    sees them (`NAME/<topic>` under named upstreams)."""
    prefixes = [f"{name}/" if name is not None else "" for _, name in upstreams]
    out: dict[str, dict[str, Any]] = {}
    for name, kv in view.items():
        for prefix in prefixes:
            head = f"{prefix}presence/"
            if name.startswith(head) and kv:
                watched = prefix + name[len(head) :]
                if topic is None or topic == watched:
                    out[watched] = {
                        "count": len(kv),
                        "watchers": {w: dict(m) for w, m in kv.items()},
                    }
    return out


_ANY_HOST = ("0.0.0.0", "*", "[::]", "::")  # noqa: S104 - hosts a node binds, never dialled


def reachable_control(advertised: Any, status_endpoint: str) -> str | None:
    """Where to dial a node's control socket, from the endpoint it advertises (topic
    `node`, key `endpoints`) and the status endpoint this relay reaches it at: a node
    bound to every interface is dialled at the host we already reach it on. None
    for anything that is not a tcp or ipc endpoint."""
    if type(advertised) is not str or len(advertised) > 512:
        return None
    if advertised.startswith("ipc://"):
        return advertised
    if not advertised.startswith("tcp://") or not status_endpoint.startswith("tcp://"):
        return None
    host, sep, port = advertised[len("tcp://") :].rpartition(":")
    if not sep or not port.isdigit():
        return None
    if host in _ANY_HOST:
        host = status_endpoint[len("tcp://") :].rpartition(":")[0]
    return f"tcp://{host}:{port}"
