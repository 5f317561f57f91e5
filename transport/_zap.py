"""The node's ZAP handler: lets a CURVE handshake through only for an allowed key.

pyzmq's `ThreadAuthenticator` runs it in a thread of its own on the node's
context (ZAP only reaches sockets of the same context), asking the allow-list
(re-read when its file changes) for every handshake. It logs each refused
key with the peer's address (the first ten a minute, then a count); the
sockets' owners count every failed handshake from their monitors
(`SocketActor`). Started and stopped by the node (an edge).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from ._errors import PipecastError
from ._handshakes import HandshakeFailure, HandshakeTally
from ._keys import ZAP_DOMAIN, AllowList
from ._security import ServerSecurity

__all__ = ["NodeAuthenticator", "serve_with_curve"]

log = logging.getLogger("pipecast.security")


class _Keys:
    """pyzmq's credentials provider: is this public key (Z85 bytes) on the allow-list now?"""

    def __init__(self, allowed: AllowList) -> None:
        self.allowed = allowed

    def callback(self, domain: str, key: bytes) -> bool:
        return domain == ZAP_DOMAIN.decode() and self.allowed.lookup(key.decode()) is not None


class NodeAuthenticator(ThreadAuthenticator):
    """ZAP for one node's context (see module docstring). Its counts (`tally`) are
    written by the ZAP thread and read by anyone (ints: a snapshot)."""

    def __init__(self, context: zmq.Context[Any], allowed: AllowList) -> None:
        super().__init__(context, log=logging.getLogger("pipecast.zap"))
        self.allowed_list = allowed
        self.tally = HandshakeTally()
        self._peer = "?"

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(ZAP_DOMAIN.decode(), _Keys(self.allowed_list))

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # frame 3 of a ZAP request is the peer's address (RFC 27)
        self._peer = msg[3].decode(errors="replace") if len(msg) > 3 else "?"
        await super().handle_zap_message(msg)

    def _send_zap_reply(
        self,
        request_id: bytes,
        status_code: bytes,
        status_text: bytes,
        user_id: str = "anonymous",
    ) -> None:
        if status_code == b"200":
            self.tally.success()
        elif self.tally.record(HandshakeFailure.KEY_REFUSED, self._peer, time.monotonic()):
            more = self.tally.take_unlogged()
            log.warning(
                "refused a key from %s: not on the allow-list%s",
                self._peer,
                f" (and {more} more refusals not logged)" if more else "",
            )
        super()._send_zap_reply(request_id, status_code, status_text, user_id)


def serve_with_curve(
    context: zmq.Context[Any], data_dir: Path
) -> tuple[ServerSecurity, NodeAuthenticator]:
    """What a server (a node, a relay) needs to serve with CURVE: its keys from
    `data_dir` (made if missing) and this ZAP handler started on `context`.

    Raises `PipecastError` when this libzmq has no CURVE: a server never falls
    back to running unauthenticated on its own (`--insecure` says so on purpose).
    """
    if not zmq.has("curve"):
        raise PipecastError(
            "this libzmq was built without CURVE; refusing to run unauthenticated "
            "(start with --insecure on loopback to do so on purpose)"
        )
    security = ServerSecurity.for_node(data_dir)
    authenticator = NodeAuthenticator(context, security.allowed)
    authenticator.start()
    return security, authenticator
