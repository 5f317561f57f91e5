"""Raw frames to a node's ROUTER sockets, for harnesses that attack a node.

One DEALER per `RawClient`, so one routing identity: a hostile client is one
peer that may send anything and read nothing. Used from the test's thread;
every wait is bounded.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import msgpack
import zmq

from pipecast.transport import ClientSecurity

__all__ = ["RawClient"]


class RawClient:
    """A DEALER connected to `endpoint` (control or sync), with `security`'s key if
    given: an attacker who holds a key, or (None) one who holds none."""

    def __init__(self, endpoint: str, security: ClientSecurity | None = None) -> None:
        self._ctx = zmq.Context()
        self.socket = self._ctx.socket(zmq.DEALER)
        self.socket.linger = 0
        if security is not None:
            security.apply(self.socket)
        self.socket.connect(endpoint)

    def send(self, *frames: bytes) -> None:
        """Send one message of these frames as they are (no delimiter added)."""
        self.socket.send_multipart(list(frames))

    def request(self, body: bytes, timeout: float = 5.0) -> Any:
        """Send `body` as a request and return the decoded reply; None if none came."""
        self.socket.send_multipart([b"", body])
        return self.reply(timeout)

    def reply(self, timeout: float = 5.0) -> Any:
        """The next reply, decoded; None if none came within `timeout`."""
        if not self.socket.poll(int(timeout * 1000)):
            return None
        return msgpack.unpackb(self.socket.recv_multipart()[-1], strict_map_key=False)

    def close(self) -> None:
        self.socket.close()
        self._ctx.term()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
