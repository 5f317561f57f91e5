"""The node's ZAP handler: lets a CURVE handshake through only for an allowed key.

pyzmq's `ThreadAuthenticator` runs it in a thread of its own on the node's
context (ZAP only reaches sockets of the same context). Every refusal is
counted and logged with the peer's address and the reason, so a client that
keeps being turned away is visible. Started and stopped by the node (an edge).
"""

from __future__ import annotations

import logging
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from ._security import ZAP_DOMAIN, AllowList

__all__ = ["NodeAuthenticator"]

log = logging.getLogger("pipecast.security")


class _Keys:
    """pyzmq's credentials provider: is this public key (Z85 bytes) on the allow-list now?"""

    def __init__(self, allowed: AllowList) -> None:
        self.allowed = allowed

    def callback(self, domain: str, key: bytes) -> bool:
        return domain == ZAP_DOMAIN.decode() and self.allowed.lookup(key.decode()) is not None


class NodeAuthenticator(ThreadAuthenticator):
    """ZAP for one node's context (see module docstring)."""

    def __init__(self, context: zmq.Context[Any], allowed: AllowList) -> None:
        super().__init__(context, log=logging.getLogger("pipecast.zap"))
        self.allowed_list = allowed
        self.passed = 0
        self.refused = 0
        self._peer = "?"

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(ZAP_DOMAIN.decode(), _Keys(self.allowed_list))

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # the ZAP request's fourth frame is the peer's address
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
            self.passed += 1
        else:
            self.refused += 1
            log.warning(
                "refused a handshake from %s: %s",
                self._peer,
                status_text.decode(errors="replace"),
            )
        super()._send_zap_reply(request_id, status_code, status_text, user_id)
