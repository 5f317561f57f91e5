"""The handshake tally: every failure counted, and the log bounded however many come."""

from __future__ import annotations

import zmq
from hypothesis import given
from hypothesis import strategies as st

from pipecast.transport import HandshakeFailure, HandshakeTally, handshake_failure


def test_monitor_events_are_named_by_what_went_wrong():
    assert handshake_failure(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400) is HandshakeFailure.KEY_REFUSED
    protocol = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    assert (
        handshake_failure(protocol, zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        is HandshakeFailure.NO_CURVE
    )
    assert (
        handshake_failure(protocol, zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        is HandshakeFailure.BAD_CRYPTO
    )
    assert (
        handshake_failure(protocol, zmq.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND)
        is HandshakeFailure.PROTOCOL
    )
    assert handshake_failure(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0) is HandshakeFailure.OTHER
    assert handshake_failure(zmq.EVENT_HANDSHAKE_SUCCEEDED, 0) is None
    assert handshake_failure(zmq.EVENT_CONNECTED, 0) is None
    for failure in HandshakeFailure:
        assert failure.describe()


def test_the_first_failures_of_a_window_are_logged_then_summed_into_the_next_line():
    tally = HandshakeTally(burst=3, window=60.0)
    logged = [tally.record(HandshakeFailure.KEY_REFUSED, "p", t * 0.1) for t in range(10)]
    assert logged == [True, True, True] + [False] * 7
    assert tally.record(HandshakeFailure.KEY_REFUSED, "p", 61.0)  # a new window
    assert tally.take_unlogged() == 7
    assert tally.take_unlogged() == 0
    stats = tally.statistics()
    assert stats.failed == 11
    assert stats.failed_by_reason == {"key_refused": 11}
    assert stats.last_failure_from == "p"


@given(
    st.lists(
        st.tuples(st.sampled_from(list(HandshakeFailure)), st.floats(0, 1000)),
        max_size=300,
    ),
    st.integers(1, 20),
    st.floats(0.5, 120),
)
def test_every_failure_is_counted_and_at_most_burst_are_logged_per_window(events, burst, window):
    tally = HandshakeTally(burst=burst, window=window)
    logged_at: list[float] = []
    unlogged = 0
    for failure, now in sorted(events, key=lambda e: e[1]):
        if tally.record(failure, "peer", now):
            logged_at.append(now)
            unlogged += tally.take_unlogged()
    unlogged += tally.take_unlogged()
    stats = tally.statistics()
    assert stats.failed == len(events)
    assert sum(stats.failed_by_reason.values()) == len(events)
    assert len(logged_at) + unlogged == len(events)  # each failure is a line or in a sum
    for t in logged_at:  # no window of `window` seconds holds more than 2 bursts of lines
        assert sum(1 for u in logged_at if t <= u < t + window) <= 2 * burst
