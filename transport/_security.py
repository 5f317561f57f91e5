"""Who may watch a node and who may steer it: CURVE on the sockets, roles per request.

Every socket of a node is a CURVE server (ZeroMQ's CurveZMQ). A client holds a
keypair of its own and the node's public key; the node lets a handshake
through only for a public key on its allow-list (see `_keys`), and checks each
request against that key's role, found again for every request from the
message's ZAP User-Id (the client's public key in Z85), so a revoked key is
refused at once. Roles: `watch` (the status and sync sockets; the control ops
in `WATCH_OPS`) and `operate` (everything).

No sockets of its own: `apply` sets options on a socket its caller owns, and
the monitor helpers read that socket's handshake events in the caller's thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.utils.monitor

from ._errors import ErrorType, NodeUnreachable, PipecastError
from ._keys import (
    ALLOWED,
    KEYS_DIR,
    NODE_KEY,
    OWNER_KEY,
    ZAP_DOMAIN,
    AllowList,
    KeyFileError,
    Keypair,
    Role,
    check_public_key,
    ensure_node_keys,
    read_keypair,
)

__all__ = [
    "WATCH_OPS",
    "ClientSecurity",
    "KeyRefused",
    "ServerSecurity",
    "Unauthorized",
    "is_local_endpoint",
    "refusal",
    "unwatch",
    "watch_handshakes",
]

# what a `watch` key may ask of the control socket (presence ops: its own watchers only)
WATCH_OPS = frozenset(
    {
        "ping",
        "status",
        "stats",
        "jobs",
        "job",
        "nodes",
        "networks",
        "invocations",
        "runs",
        "installations.list",
        "presence.join",
        "presence.heartbeat",
        "presence.leave",
        "presence.list",
    }
)


class Unauthorized(PipecastError):
    """The request's key is not allowed (any more), or its role does not cover the op."""

    wire_type = ErrorType.UNAUTHORIZED


class KeyRefused(NodeUnreachable):
    """The node refused this client's key at the handshake (not allowed, or no key)."""


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """A client's side of CURVE: its keypair and the node's public key."""

    keys: Keypair
    server: str  # the node's public key, Z85

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make `sock` (not yet connected) a CURVE client of the node. Caller's thread."""
        assert self.keys.secret is not None
        sock.curve_publickey = self.keys.public.encode()
        sock.curve_secretkey = self.keys.secret.encode()
        sock.curve_serverkey = self.server.encode()

    @classmethod
    def owner(cls, data_dir: Path) -> ClientSecurity:
        """The owner's key and the node's public key from a node's data directory."""
        folder = data_dir / KEYS_DIR
        return cls.from_key_file(
            folder / f"{OWNER_KEY}.key_secret", read_keypair(folder / f"{NODE_KEY}.key").public
        )

    @classmethod
    def from_key_file(cls, key_file: Path, server: str) -> ClientSecurity:
        keys = read_keypair(key_file)
        if keys.secret is None:
            raise KeyFileError(f"{key_file} has no secret key: a client needs its own keypair")
        return cls(keys, check_public_key(server))


@dataclass(frozen=True, slots=True)
class ServerSecurity:
    """A node's side of CURVE: its keypair and the allow-list (see module docstring)."""

    keys: Keypair
    allowed: AllowList

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make `sock` (not yet bound) a CURVE server that asks the node's ZAP handler."""
        assert self.keys.secret is not None
        sock.curve_server = True
        sock.curve_publickey = self.keys.public.encode()
        sock.curve_secretkey = self.keys.secret.encode()
        sock.zap_domain = ZAP_DOMAIN

    def role_of(self, user_id: str | None) -> Role | None:
        """The role of the key a message came with (its ZAP User-Id); None: not allowed."""
        grant = self.allowed.lookup(user_id)
        return grant.role if grant is not None else None

    @classmethod
    def for_node(cls, data_dir: Path) -> ServerSecurity:
        folder = ensure_node_keys(data_dir)
        keys = read_keypair(folder / f"{NODE_KEY}.key_secret")
        return cls(keys, AllowList(folder / ALLOWED))


def is_local_endpoint(endpoint: str) -> bool:
    """True for an endpoint only this machine can reach: ipc, inproc, or tcp on loopback."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


_REFUSALS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def watch_handshakes(sock: zmq.Socket[Any]) -> zmq.Socket[Any]:
    """A monitor of `sock`'s failed handshakes (its owner's thread; poll it, then
    `refusal`). libzmq does not retry a connection whose handshake was refused, so
    a client that does not watch would only ever time out."""
    return sock.get_monitor_socket(_REFUSALS)


def refusal(monitor: zmq.Socket[Any]) -> str | None:
    """Why a handshake failed, if the monitor says one did (never blocks)."""
    why = None
    while True:
        try:
            event = zmq.utils.monitor.recv_monitor_message(monitor, zmq.NOBLOCK)
        except zmq.Again:
            return why
        endpoint = event.get("endpoint", b"")
        where = endpoint.decode(errors="replace") if isinstance(endpoint, bytes) else endpoint
        if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            why = f"the node at {where} refused this key"
        elif event["event"] & _REFUSALS:
            why = (
                f"the handshake with {where} failed: its key is not the one given, or it "
                "does not speak CURVE (an --insecure node?) or this client does not"
            )


def unwatch(sock: zmq.Socket[Any], monitor: zmq.Socket[Any]) -> None:
    """Stop watching `sock` and close the monitor (before closing `sock`)."""
    with contextlib.suppress(zmq.ZMQError):
        sock.disable_monitor()
    monitor.close()
