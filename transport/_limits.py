"""Bounds on everything that comes from outside: stated once, configurable, checked first.

Pure: no sockets, threads or clock. The decoders and the node's request
handlers call these before doing any work, so a request over a bound gets a
typed error (`TooLarge` for size, depth, width and count; `BadRequest` for a
wrong type) and changes nothing. docs/PROTOCOL.md, "Limits", lists the
defaults; `pipecast stats` shows the limits a node runs with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import BadRequest, TooLarge

__all__ = ["INT_MAX", "INT_MIN", "Limits", "check_value", "expect_int", "expect_str"]

# the range of an integer the store can hold (SQLite's signed 64 bits)
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
# msgpack's own range: an int outside it cannot even be sent back
_WIRE_INT_MIN, _WIRE_INT_MAX = -(2**63), 2**64 - 1
_KiB, _MiB = 1024, 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What a node accepts from outside and keeps; every field is a hard bound."""

    request_bytes: int = 1 * _MiB  # one sync or control request, as received
    frame_bytes: int = 4 * _MiB  # a larger frame is dropped by the socket, the peer cut off
    value_bytes: int = 256 * _KiB  # one value a client publishes, or a watcher's meta, packed
    depth: int = 16  # nesting of maps and lists in anything received
    width: int = 100_000  # entries of one map or list received
    key_chars: int = 256  # a key of a topic, or of a map received
    topic_chars: int = 256  # a topic's name, and a snapshot prefix
    prefixes: int = 256  # prefixes of one snapshot request
    live_topics: int = 10_000  # topics with a live key
    client_topics: int = 5_000  # of which clients made (ext/ and presence/), so the rest has room
    known_topics: int = 100_000  # topics ever published in the epoch (seqs never restart)
    retained_bytes: int = 256 * _MiB  # live values and history kept for snapshots and replays
    reply_bytes: int = 512 * _MiB  # one sync reply; a larger snapshot is refused
    queued_replies: int = 16  # replies waiting for one peer that reads none (ZMQ SNDHWM)

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise BadRequest(f"limit {name} must be an int >= 1, not {value!r}")
        if self.frame_bytes < self.request_bytes:
            raise BadRequest("limit frame_bytes must be at least request_bytes")
        if not self.client_topics <= self.live_topics <= self.known_topics:
            raise BadRequest("limits must hold client_topics <= live_topics <= known_topics")

    def as_dict(self) -> dict[str, int]:
        """The limits by name (for `stats`)."""
        return {name: getattr(self, name) for name in self.__slots__}


def check_value(value: Any, limits: Limits, what: str) -> None:
    """Raise unless `value` is plain data within `limits`' depth and width.

    Plain data: nil, bool, int within msgpack's range, float, str, bytes,
    lists, and maps with string keys of at most `key_chars`. Walks the value
    once without recursion, so no depth can exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            if depth >= limits.depth:
                raise TooLarge(f"{what} nests deeper than {limits.depth} levels")
            if len(item) > limits.width:
                raise TooLarge(f"{what} has a map of {len(item)} entries (at most {limits.width})")
            for key, sub in item.items():
                if type(key) is not str:
                    raise BadRequest(f"{what} has a map key that is not a string")
                if len(key) > limits.key_chars:
                    raise TooLarge(f"{what} has a map key over {limits.key_chars} characters")
                stack.append((sub, depth + 1))
        elif kind is list:
            if depth >= limits.depth:
                raise TooLarge(f"{what} nests deeper than {limits.depth} levels")
            if len(item) > limits.width:
                raise TooLarge(f"{what} has a list of {len(item)} items (at most {limits.width})")
            stack.extend((sub, depth + 1) for sub in item)
        elif kind is int:
            if not _WIRE_INT_MIN <= item <= _WIRE_INT_MAX:
                raise BadRequest(f"{what} holds an integer out of range")
        elif item is not None and kind not in (bool, float, str, bytes):
            raise BadRequest(f"{what} holds a {kind.__name__}, which is not plain data")


def expect_int(value: Any, what: str, low: int = INT_MIN, high: int = INT_MAX) -> int:
    """`value` if it is an int (not a bool) within [low, high], else `BadRequest`."""
    if type(value) is not int or not low <= value <= high:
        raise BadRequest(f"{what} must be an integer from {low:,} to {high:,}")
    return value


def expect_str(value: Any, what: str, max_chars: int, *, empty: bool = False) -> str:
    """`value` if it is a string of at most `max_chars` (and not empty unless allowed)."""
    if type(value) is not str or (not value and not empty):
        raise BadRequest(f"{what} must be a {'' if empty else 'non-empty '}string")
    if len(value) > max_chars:
        raise TooLarge(f"{what} is over {max_chars:,} characters")
    return value
