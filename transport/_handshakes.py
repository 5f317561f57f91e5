"""The tally of a node's CURVE handshakes, and which failures deserve a log line.

Pure: `HandshakeTally.record` takes what a socket monitor said and the time,
and answers whether to log it. A client knocking with a bad key a thousand
times a second must be visible (counted, by reason) without the log
becoming the attack: the first `burst` failures of each `window` are logged
one by one, the rest are summed into the next line that is logged.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass

import zmq

__all__ = ["HandshakeFailure", "HandshakeStatistics", "HandshakeTally", "handshake_failure"]


class HandshakeFailure(enum.StrEnum):
    KEY_REFUSED = "key_refused"  # the key is not on the allow-list (ZAP said no)
    NO_CURVE = "no_curve"  # the client speaks another mechanism (NULL: no key at all)
    BAD_CRYPTO = "bad_crypto"  # it does not hold the node's public key, or a bogus key
    PROTOCOL = "protocol"  # any other ZMTP error
    OTHER = "other"  # libzmq gave no detail

    def describe(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    HandshakeFailure.KEY_REFUSED: "the client's key is not allowed",
    HandshakeFailure.NO_CURVE: "the client offered no CURVE key (an --insecure client?)",
    HandshakeFailure.BAD_CRYPTO: (
        "the client does not hold this node's public key, or its key is bogus"
    ),
    HandshakeFailure.PROTOCOL: "a ZMTP protocol error",
    HandshakeFailure.OTHER: "libzmq gave no detail",
}


def handshake_failure(event: int, value: int) -> HandshakeFailure | None:
    """What a monitor event says, or None if it is not a failed handshake."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return HandshakeFailure.KEY_REFUSED
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return HandshakeFailure.NO_CURVE
        if value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            return HandshakeFailure.BAD_CRYPTO
        return HandshakeFailure.PROTOCOL
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        return HandshakeFailure.OTHER
    return None


@dataclass(frozen=True, slots=True)
class HandshakeStatistics:
    succeeded: int
    failed: int
    failed_by_reason: dict[str, int]
    last_failure_from: str | None  # the peer address of the latest failure


class HandshakeTally:
    """Counts for one socket (or several), and log decisions; no clock of its own."""

    def __init__(self, burst: int = 10, window: float = 60.0) -> None:
        self.burst = burst
        self.window = window
        self.succeeded = 0
        self.failed: Counter[HandshakeFailure] = Counter()
        self.last_peer: str | None = None
        self._window_start = float("-inf")
        self._logged_in_window = 0
        self.unlogged = 0  # failures not logged one by one since the last line

    def success(self) -> None:
        self.succeeded += 1

    def count(self, failure: HandshakeFailure) -> None:
        """Count a failure someone else logs."""
        self.failed[failure] += 1

    def record(self, failure: HandshakeFailure, peer: str, now: float) -> bool:
        """Count a failure from `peer` (an address, or the socket's endpoint when the
        peer is unknown) at `now` (seconds); True if it should be logged (then say
        how many went unlogged before it: `take_unlogged`)."""
        self.failed[failure] += 1
        self.last_peer = peer
        if now - self._window_start >= self.window:
            self._window_start, self._logged_in_window = now, 0
        if self._logged_in_window < self.burst:
            self._logged_in_window += 1
            return True
        self.unlogged += 1
        return False

    def take_unlogged(self) -> int:
        n, self.unlogged = self.unlogged, 0
        return n

    def statistics(self) -> HandshakeStatistics:
        return HandshakeStatistics(
            succeeded=self.succeeded,
            failed=sum(self.failed.values()),
            failed_by_reason={str(k): v for k, v in sorted(self.failed.items())},
            last_failure_from=self.last_peer,
        )
