"""The one exception hierarchy of pipecast.

Every error pipecast raises on purpose is a `PipecastError`. Each subclass has
one precise meaning, and the ones that cross the wire carry the `error.type`
string of PROTOCOL.md in `wire_type`, so the node and its clients translate
between exceptions and error replies in one place.

Third-party errors (zmq.ZMQError, msgpack's exceptions) never leak out of
pipecast: they are translated at the boundary where they happen.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "BindError",
    "BridgeClosed",
    "HistoryGone",
    "MalformedFrame",
    "NodeUnreachable",
    "PipecastError",
    "ProtocolError",
    "RemoteError",
    "UnknownOp",
]


class PipecastError(Exception):
    """Base of every error pipecast raises on purpose."""

    wire_type: str = "internal"

    def details(self) -> dict[str, Any]:
        """Fields an error reply carries besides type and message (none by default)."""
        return {}


class ProtocolError(PipecastError):
    """Something received does not follow PROTOCOL.md."""

    wire_type = "bad_request"


class MalformedFrame(ProtocolError):
    """A message's frames or msgpack body could not be decoded or validated.

    Subscribers count these and drop the message; servers answer `bad_request`.
    """


class BadRequest(ProtocolError):
    """A request is well-formed msgpack but its fields are missing or invalid."""


class UnknownOp(ProtocolError):
    """A request names an op this socket does not serve."""

    wire_type = "unknown_op"


class HistoryGone(PipecastError):
    """A replay was asked for updates the bounded history no longer holds."""

    wire_type = "history_gone"


class BindError(PipecastError):
    """An endpoint could not be bound: in use by another node, or malformed."""


class BridgeClosed(PipecastError):
    """The bridge was stopped by us; it no longer accepts publications."""


class NodeUnreachable(PipecastError):
    """A node did not answer within the timeout (not running, or wrong endpoint)."""


class RemoteError(PipecastError):
    """The node answered a request with an error reply.

    `wire_type` is the node's error type (`bad_request`, `history_gone`, ...).
    """

    def __init__(self, wire_type: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{wire_type}: {message}")
        self.wire_type = wire_type
        self.message = message
        self._details = dict(details or {})

    def details(self) -> dict[str, Any]:
        return dict(self._details)
