"""The one exception hierarchy of pipecast.

Every error pipecast raises on purpose is a `PipecastError`. Each subclass has
one precise meaning, and the ones that cross the wire carry their `error.type`
in `wire_type`, one of `ErrorType`: the one declaration of every error type a
pipecast server sends (docs/PROTOCOL.md lists exactly these; a test checks
it), so the node and its clients translate between exceptions and error
replies in one place. Errors of a domain (an unknown stage, a locked-out
prompt, a failed model) are defined beside the code that raises them, with a
`wire_type` from here.

Third-party errors (zmq.ZMQError, msgpack's exceptions) never leak out of
pipecast: they are translated at the boundary where they happen.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "BadRequest",
    "BindError",
    "BridgeClosed",
    "ErrorType",
    "HistoryGone",
    "MalformedFrame",
    "NodeUnreachable",
    "PipecastError",
    "ProtocolError",
    "RemoteError",
    "TooLarge",
    "UnknownOp",
    "UnsupportedVersion",
]


class ErrorType(enum.StrEnum):
    """Every `error.type` a pipecast server sends in an error reply."""

    BAD_REQUEST = "bad_request"  # malformed, or a field missing or of the wrong type
    TOO_LARGE = "too_large"  # over a stated limit: size, depth, width or count
    UNSUPPORTED_VERSION = "unsupported_version"  # `v` is not the integer 2
    UNAUTHORIZED = "unauthorized"  # the key is not allowed (now), or its role falls short
    UNKNOWN_OP = "unknown_op"  # an op this socket does not serve
    HISTORY_GONE = "history_gone"  # a replay from before the bounded history
    UNKNOWN_STAGE = "unknown_stage"  # no stage of that name
    UNKNOWN_NETWORK = "unknown_network"  # no network of that name
    LOCKED_OUT = "locked_out"  # a prompt within the lockout; carries `ready_at`
    MODEL_FAILED = "model_failed"  # a model raised or returned the wrong kind
    MEDIA_FAILED = "media_failed"  # a media operation failed; the message says how
    OUTSIDE_ROOTS = "outside_roots"  # a path not under the node's library roots
    STORE_UNAVAILABLE = "store_unavailable"  # the store cannot be read or written now
    INTERNAL = "internal"  # a component is down, or a bug; the node goes on


class PipecastError(Exception):
    """Base of every error pipecast raises on purpose."""

    wire_type: str = ErrorType.INTERNAL

    def details(self) -> dict[str, Any]:
        """Fields an error reply carries besides type and message (none by default)."""
        return {}


class ProtocolError(PipecastError):
    """Something received does not follow PROTOCOL.md."""

    wire_type = ErrorType.BAD_REQUEST


class MalformedFrame(ProtocolError):
    """A message's frames or msgpack body could not be decoded or validated.

    Subscribers count these and drop the message; servers answer `bad_request`.
    """


class BadRequest(ProtocolError):
    """A request is well-formed msgpack but its fields are missing or invalid."""


class TooLarge(ProtocolError):
    """A request or value is over one of the node's stated limits (`Limits`)."""

    wire_type = ErrorType.TOO_LARGE


class UnsupportedVersion(ProtocolError):
    """A body's `v` is not this protocol's version (exactly the integer 2)."""

    wire_type = ErrorType.UNSUPPORTED_VERSION


class UnknownOp(ProtocolError):
    """A request names an op this socket does not serve."""

    wire_type = ErrorType.UNKNOWN_OP


class HistoryGone(PipecastError):
    """A replay was asked for updates the bounded history no longer holds."""

    wire_type = ErrorType.HISTORY_GONE


class BindError(PipecastError):
    """An endpoint could not be bound: in use by another node, or malformed."""


class BridgeClosed(PipecastError):
    """The bridge was stopped by us; it no longer accepts publications."""


class NodeUnreachable(PipecastError):
    """A node did not answer within the timeout (not running, or wrong endpoint)."""


class RemoteError(PipecastError):
    """The node answered a request with an error reply.

    `wire_type` is the node's error type as it sent it: one of `ErrorType`,
    or a type this client does not know (a newer node's).
    """

    def __init__(self, wire_type: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{wire_type}: {message}")
        self.wire_type = wire_type
        self.message = message
        self._details = dict(details or {})

    def details(self) -> dict[str, Any]:
        return dict(self._details)
