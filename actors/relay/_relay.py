"""A relay: a client of upstream nodes and a server of the same protocol downstream.

Each upstream is followed by a `Subscriber` (its own replica: it recovers
from upstream gaps, lost history and restarts by itself); its events become
publications (`RelayMirror`) on the relay's own bridge, which sequences them
under the relay's own epoch, keeps their history, answers snapshots and
replays, and heartbeats — so a subscriber cannot tell a relay from a node,
and relays chain into trees. The relay is its own identity: its data
directory holds its keypair and allow-list (`pipecast keys --data-dir`), it
serves downstream with CURVE like a node, and it presents its own client
certificate upstream (`key_file`), which the node must allow.

Threads: each upstream's subscriber thread runs its mirror and tells the
bridge; the bridge actor owns the downstream sockets. `start` and `stop`
block (edges: the CLI, tests).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
import zmq

from pipecast.actors.runtime import (
    BridgeConfig,
    BridgeHandle,
    ChildSpec,
    Registry,
    Supervisor,
    begin_shutdown,
    start_bridge,
    start_child,
)
from pipecast.transport import (
    BadRequest,
    ClientSecurity,
    HistoryLimits,
    Limits,
    NodeAuthenticator,
    PipecastError,
    ServerSecurity,
    Subscriber,
    is_local_endpoint,
    serve_with_curve,
)

from ._control import RelayControl
from ._forwarder import ControlForwarder, forwarder_name
from ._mirror import RELAY_ACTOR_PREFIX, RelayMirror

__all__ = ["Relay", "RelayConfig", "Upstream", "parse_upstream"]

log = logging.getLogger("pipecast.relay")

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONTROL = "control"


@dataclass(frozen=True, slots=True)
class Upstream:
    """One node (or relay) to follow: `name` None keeps its topics' names."""

    status: str
    sync: str
    node_key: str | None  # its public key (Z85); None: an insecure upstream
    name: str | None = None

    @property
    def label(self) -> str:
        """Its name, or one made from its address (for `relay/<label>`)."""
        return self.name or re.sub(r"[^A-Za-z0-9_-]+", "-", self.status).strip("-")[:64]


def parse_upstream(text: str) -> Upstream:
    """`[NAME=]STATUS_EP,SYNC_EP[,NODE_PUBLIC_KEY]`; `BadRequest` naming what is wrong."""
    name, sep, rest = text.partition("=")
    if not sep or "://" in name:
        name, rest = "", text
    elif not _NAME.fullmatch(name):
        raise BadRequest(f"upstream name {name!r} must be 1-64 of A-Z a-z 0-9 _ -")
    parts = [p.strip() for p in rest.split(",")]
    if len(parts) not in (2, 3) or not all("://" in p for p in parts[:2]):
        raise BadRequest(f"--upstream {text!r} is not [NAME=]STATUS_EP,SYNC_EP[,NODE_PUBLIC_KEY]")
    key = parts[2] if len(parts) == 3 else None
    if key is not None and len(key) != 40:
        raise BadRequest("a node's public key is 40 Z85 characters (pipecast keys node)")
    return Upstream(parts[0], parts[1], key, name or None)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    upstreams: tuple[Upstream, ...]
    data_dir: Path
    status_endpoint: str = "tcp://127.0.0.1:7711"
    sync_endpoint: str = "tcp://127.0.0.1:7712"
    control_endpoint: str = "tcp://127.0.0.1:7713"  # ping, status, presence (watchers)
    key_file: Path | None = None  # our client certificate upstream (default: none)
    insecure: bool = False  # downstream without CURVE: loopback or ipc only
    heartbeat_interval: float = 1.0
    history: HistoryLimits = field(default_factory=HistoryLimits)
    limits: Limits = field(default_factory=Limits)
    batch: bool = True

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise BadRequest("a relay needs at least one --upstream")
        names = [u.name for u in self.upstreams]
        if None in names and len(names) > 1:
            raise BadRequest("with several upstreams, name each one (NAME=...)")
        if len(set(names)) != len(names):
            raise BadRequest(f"upstream names must be unique: {names}")
        local = all(
            is_local_endpoint(e)
            for e in (self.status_endpoint, self.sync_endpoint, self.control_endpoint)
        )
        if self.insecure and not local:
            raise BadRequest("insecure (no CURVE) downstream only on loopback or ipc endpoints")
        if any(u.node_key for u in self.upstreams) and self.key_file is None:
            raise BadRequest("a secure upstream needs this relay's --key (a client certificate)")


class Relay:
    """One running relay (see module docstring)."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.bridge: BridgeHandle | None = None
        self.context: zmq.Context[zmq.Socket[bytes]] | None = None
        self.authenticator: NodeAuthenticator | None = None
        self.subscribers: list[Subscriber] = []
        self.mirrors: list[RelayMirror] = []
        self.forwarded = 0
        self.registry = Registry()
        self.supervisor: pykka.ActorRef[Supervisor] | None = None
        self.control_endpoint = ""

    def start(self, timeout: float = 10.0) -> Relay:
        """Bind downstream and follow every upstream. `BindError` (nothing left running)
        on a busy endpoint; `KeyFileError` for an unreadable key."""
        cfg = self.config
        cfg.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self.context = zmq.Context()
            security = None
            if cfg.insecure:
                log.warning("INSECURE: this relay serves without CURVE; any local user can watch")
            else:
                security, self.authenticator = serve_with_curve(self.context, cfg.data_dir)
            self.bridge = start_bridge(
                BridgeConfig(
                    cfg.status_endpoint,
                    cfg.sync_endpoint,
                    cfg.heartbeat_interval,
                    cfg.history,
                    limits=cfg.limits,
                    batch=cfg.batch,
                ),
                timeout,
                self.context,
                security,
            )
            self._start_control(security, timeout)
            for up in cfg.upstreams:
                self._follow(up)
        except BaseException:
            self.stop()
            raise
        log.info("relay up: %d upstream(s)", len(cfg.upstreams))
        return self

    def _start_control(self, security: ServerSecurity | None, timeout: float) -> None:
        """The control socket and one forwarder per upstream, supervised: a crash is
        published on `relay/actor/<name>` downstream and the actor restarts."""
        cfg = self.config
        assert self.bridge is not None
        self.supervisor = Supervisor.start(self.bridge, self.registry, RELAY_ACTOR_PREFIX)
        for up in cfg.upstreams:
            client = None
            if up.node_key is not None:
                assert cfg.key_file is not None
                client = ClientSecurity.from_key_file(cfg.key_file, up.node_key)
            spec = {"security": client, "context": self.context, "limits": cfg.limits}
            start_child(
                self.supervisor, ChildSpec(forwarder_name(up.label), ControlForwarder, spec)
            )
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()
        kwargs = {
            "endpoint": cfg.control_endpoint,
            "ready": ready,
            "upstreams": tuple((u.label, u.name, u.status) for u in cfg.upstreams),
            "registry": self.registry,
            "limits": cfg.limits,
            "context": self.context,
            "security": security,
        }
        start_child(self.supervisor, ChildSpec(_CONTROL, RelayControl, kwargs))
        self.control_endpoint = ready.result(timeout=timeout)
        if not self.registry.wait_for(self._children(), timeout):
            raise PipecastError(f"the relay's control did not start within {timeout} s")

    def _children(self) -> list[str]:
        return [_CONTROL, *(forwarder_name(u.label) for u in self.config.upstreams)]

    def _follow(self, up: Upstream) -> None:
        keys = None
        if up.node_key is not None:
            assert self.config.key_file is not None
            keys = ClientSecurity.from_key_file(self.config.key_file, up.node_key)
        assert self.bridge is not None
        serving = {
            "status": self.bridge.status_endpoint,
            "sync": self.bridge.sync_endpoint,
            "control": self.control_endpoint,
        }
        mirror = RelayMirror(up.label, f"{up.name}/" if up.name else "", serving, up.status)
        sub = Subscriber(
            up.status,
            up.sync,
            (),
            on_event=functools.partial(self._forward, mirror),
            security=keys,
            name=f"pipecast-relay-{up.label}",
        )
        self.mirrors.append(mirror)
        self.subscribers.append(sub)
        self._forward(mirror, None)  # say "connecting" until the first snapshot
        sub.start()

    def _forward(self, mirror: RelayMirror, ev: object) -> None:
        """An upstream's subscriber thread: its event, republished downstream."""
        bridge = self.bridge
        if bridge is None:
            return
        pubs = mirror.on_event(ev) if ev is not None else mirror.hello()
        for p in pubs:
            try:
                bridge.publish(p.topic, p.key, p.data)
                self.forwarded += 1
            except PipecastError as exc:  # the bridge is stopping
                log.debug("relay: not forwarded (%s)", exc)
                return

    def stop(self, timeout: float = 2.0) -> None:
        for sub in self.subscribers:
            sub.stop()
        self.subscribers.clear()
        if self.supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                begin_shutdown(self.supervisor)
            for name in self._children():
                ref = self.registry.get(name)
                if ref is not None:
                    with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                        ref.stop(block=True, timeout=timeout)
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                self.supervisor.stop(block=True, timeout=timeout)
            self.supervisor = None
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None
        if self.context is not None:
            self.context.term()
            self.context = None

    def statistics(self) -> dict[str, Any]:
        return {
            "control": self.control_endpoint,
            "forwarded": self.forwarded,
            "upstreams": {
                m.name: {"status": m.status, "received": s.statistics().received}
                for m, s in zip(self.mirrors, self.subscribers, strict=False)
            },
        }
