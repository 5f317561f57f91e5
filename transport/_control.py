"""The control socket's wire format, and a blocking client for the edges.

Requests are `{v, op, cid, ...args}`; replies `{v, ok: true, cid, result}` or
`{v, ok: false, cid, error: {type, message}}` (docs/PROTOCOL.md). Decoding is
pure and raises `TooLarge`, `BadRequest` or `UnsupportedVersion` with the
reason, before anything looks at the op. `ControlClient` is for the CLI and
tests only (it blocks); actors never use it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import zmq

from ._errors import BadRequest, NodeUnreachable, RemoteError, TooLarge, UnsupportedVersion
from ._limits import Limits, check_value
from ._security import ClientSecurity, KeyRefused, refusal, unwatch, watch_handshakes
from ._wire import PROTOCOL_VERSION, is_version

__all__ = [
    "ControlClient",
    "ControlRequest",
    "decode_control_request",
    "encode_control_error",
    "encode_control_ok",
    "new_cid",
]

_DEFAULT_LIMITS = Limits()


def new_cid() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class ControlRequest:
    op: str
    cid: str
    args: dict[str, Any]


def decode_control_request(body: bytes, limits: Limits = _DEFAULT_LIMITS) -> ControlRequest:
    """Validate a control request within `limits`: its size, then its msgpack, then
    every value in it (depth, width, plain data), then its version, op and cid."""
    if len(body) > limits.request_bytes:
        raise TooLarge(f"request of {len(body)} bytes exceeds {limits.request_bytes}")
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many types on bad input
        raise BadRequest(f"request is not valid msgpack: {type(exc).__name__}") from None
    if type(msg) is not dict:
        raise BadRequest("request must be a map")
    check_value(msg, limits, "the request")
    if not is_version(msg.get("v")):
        raise UnsupportedVersion(f"protocol version {msg.get('v')!r}: this node speaks 2")
    op, cid = msg.pop("op", None), msg.pop("cid", None)
    msg.pop("v")
    if type(op) is not str or not op:
        raise BadRequest("op must be a non-empty string")
    if cid is None:
        cid = new_cid()
    elif type(cid) is not str or not 0 < len(cid) <= 128:
        raise BadRequest("cid must be a string of 1 to 128 characters")
    return ControlRequest(op, cid, msg)


def encode_control_ok(cid: str | None, result: Any) -> bytes:
    out: bytes = msgpack.packb({"v": PROTOCOL_VERSION, "ok": True, "cid": cid, "result": result})
    return out


def encode_control_error(
    cid: str | None, wire_type: str, message: str, details: dict[str, Any] | None = None
) -> bytes:
    """An error reply; `details` (e.g. `ready_at` of `locked_out`) join type and message."""
    error = {**(details or {}), "type": wire_type, "message": message}
    out: bytes = msgpack.packb({"v": PROTOCOL_VERSION, "ok": False, "cid": cid, "error": error})
    return out


class ControlClient:
    """Blocking request/reply to a node's control socket (CLI, tests).

    Every call waits at most `timeout` seconds, then raises `NodeUnreachable`;
    a node that refuses the key at the handshake raises `KeyRefused` at once;
    an error reply raises `RemoteError` with the node's error type. A fresh
    socket per call keeps a late reply from answering the next request.
    `security`: the client's CURVE keys (None: no CURVE, for an --insecure node).
    """

    def __init__(
        self, endpoint: str, timeout: float = 5.0, security: ClientSecurity | None = None
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.security = security

    def call(self, op: str, cid: str | None = None, **args: Any) -> Any:
        cid = cid or new_cid()
        body = msgpack.packb({"v": PROTOCOL_VERSION, "op": op, "cid": cid, **args})
        return self.call_raw(body)

    def call_raw(self, body: bytes) -> Any:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        if self.security is not None:
            self.security.apply(sock)
        monitor = watch_handshakes(sock)
        try:
            sock.connect(self.endpoint)
            sock.send_multipart([b"", body])
            poller = zmq.Poller()
            poller.register(sock, zmq.POLLIN)
            poller.register(monitor, zmq.POLLIN)
            deadline = time.monotonic() + self.timeout
            while True:
                left = deadline - time.monotonic()
                ready = dict(poller.poll(max(0, int(left * 1000))))
                if sock in ready:
                    break
                why = refusal(monitor) if monitor in ready else None
                if why is not None:
                    raise KeyRefused(why)
                if time.monotonic() >= deadline:
                    raise NodeUnreachable(
                        f"no answer from {self.endpoint} within {self.timeout} s "
                        "(is the node running?)"
                    )
            reply = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
        except zmq.ZMQError as exc:
            raise NodeUnreachable(f"cannot reach {self.endpoint}: {exc}") from None
        finally:
            unwatch(sock, monitor)
            sock.close()
            ctx.term()
        if type(reply) is not dict or "ok" not in reply:
            raise RemoteError("bad_reply", f"malformed reply: {reply!r}")
        if not reply["ok"]:
            err = reply.get("error")
            err = err if type(err) is dict else {}
            details = {k: v for k, v in err.items() if k not in ("type", "message")}
            raise RemoteError(
                str(err.get("type", "internal")), str(err.get("message", "")), details
            )
        return reply.get("result")
