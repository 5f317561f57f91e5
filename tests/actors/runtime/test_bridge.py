"""The bridge actor: bad input on its sockets, local subscribers, binding, statistics."""

from __future__ import annotations

import threading

import msgpack
import pytest
import zmq

from pipecast.actors import BridgeConfig, start_bridge
from pipecast.transport import (
    BadRequest,
    BindError,
    BridgeClosed,
    HistoryLimits,
    Reset,
    Subscriber,
    Update,
    encode_update,
)


def sync_call(endpoint: str, frames: list[bytes]) -> dict:
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(endpoint)
    try:
        s.send_multipart(frames)
        assert s.poll(5000), "no reply"
        return msgpack.unpackb(s.recv_multipart()[-1])
    finally:
        s.close()
        ctx.term()


@pytest.mark.parametrize(
    ("body", "etype"),
    [
        (b"\xc1garbage", "bad_request"),
        (msgpack.packb({"v": 2, "op": "nope"}), "unknown_op"),
        (msgpack.packb({"v": 2, "op": "replay", "topic": "t", "after": "x"}), "bad_request"),
        (msgpack.packb({"v": 2, "op": "replay", "topic": "t", "after": 5}), "bad_request"),
        (b"\x00" * (1024 * 1024 + 1), "too_large"),
    ],
)
def test_bad_sync_requests_get_typed_errors_and_the_bridge_keeps_serving(bridge, body, etype):
    bridge.publish("t", "k", {"x": 1})
    reply = sync_call(bridge.sync_endpoint, [b"", body])
    assert reply["op"] == "error"
    assert reply["error"]["type"] == etype
    ok = sync_call(
        bridge.sync_endpoint, [b"", msgpack.packb({"v": 2, "op": "snapshot", "topics": []})]
    )
    assert ok["items"] == [["t", "k", 1, {"x": 1}]]
    assert bridge.statistics().sync_errors == 1


def test_a_replay_for_history_that_is_gone_says_history_gone():
    handle = start_bridge(
        BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", history=HistoryLimits(max_updates=2))
    )
    try:
        for i in range(5):
            handle.publish("t", "k", {"i": i})
        # publish is a tell and the sync socket is another way in: a request that
        # arrives while the bridge sleeps may be served before the mailbox; this
        # returns once all five are sequenced
        handle.statistics()
        reply = sync_call(
            handle.sync_endpoint,
            [b"", msgpack.packb({"v": 2, "op": "replay", "topic": "t", "after": 1})],
        )
        assert reply["error"]["type"] == "history_gone"
        reply = sync_call(
            handle.sync_endpoint,
            [b"", msgpack.packb({"v": 2, "op": "replay", "topic": "t", "after": 3})],
        )
        assert [u["seq"] for u in reply["items"]] == [4, 5]
    finally:
        handle.stop()


def test_a_req_client_without_delimiter_handling_gets_its_reply_too(bridge):
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.linger = 0
    s.connect(bridge.sync_endpoint)
    try:
        s.send(msgpack.packb({"v": 2, "op": "snapshot", "topics": []}))
        assert s.poll(5000)
        assert msgpack.unpackb(s.recv())["op"] == "snapshot"
    finally:
        s.close()
        ctx.term()


def test_malformed_frames_on_the_status_socket_are_counted_and_skipped():
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.bind("tcp://127.0.0.1:*")
    handle = start_bridge(BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*"))
    try:
        # a rogue publisher on the status endpoint the subscriber listens to
        with Subscriber(pub.get(zmq.LAST_ENDPOINT).decode(), handle.sync_endpoint) as sub:
            sub.wait_synced(5)
            for _ in range(100):
                pub.send_multipart([b"t", b"\xc1"])
                pub.send_multipart([b"t"])
                if sub.wait_for(lambda s: s.statistics().malformed >= 2, 0.05):
                    break
            assert sub.statistics().malformed >= 2
            assert sub.replica.synced
    finally:
        handle.stop()
        pub.close()
        ctx.term()


@pytest.mark.parametrize(
    "rogue",
    [
        [b"t", b"\xc1", b"stray"],  # three frames
        [b"t", b"\x80", b"stray", b"more"],  # four frames
        [b"\xff\xfe", b"\x80"],  # a topic that is not UTF-8
        [b"t", b"\xc1" * 64],  # not msgpack
    ],
)
def test_a_subscriber_stays_in_step_after_messages_of_the_wrong_shape(rogue):
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.bind("tcp://127.0.0.1:*")
    handle = start_bridge(BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*"))
    good = encode_update("k", {"n": 1}, 1, handle.epoch, 1.0, None)
    try:
        with Subscriber(pub.get(zmq.LAST_ENDPOINT).decode(), handle.sync_endpoint) as sub:
            sub.wait_synced(5)
            for _ in range(200):  # until the SUB has joined (slow joiner)
                pub.send_multipart(rogue)
                pub.send_multipart([b"t", good])
                if sub.wait_for(lambda s: s.topic("t") == {"k": {"n": 1}}, 0.05):
                    break
            assert sub.topic("t") == {"k": {"n": 1}}  # the good message after it was read whole
            assert sub.statistics().malformed >= 1
            assert sub.replica.synced
    finally:
        handle.stop()
        pub.close()
        ctx.term()


def test_local_subscribers_get_the_state_then_every_update_in_order(bridge):
    bridge.publish("stage/a", "k", {"n": 0})
    got: list[object] = []
    done = threading.Event()

    def sink(ev):
        got.append(ev)
        if isinstance(ev, Update) and ev.data == {"n": 100}:
            done.set()

    bridge.subscribe(["stage/"], sink)
    for i in range(1, 101):
        bridge.publish("stage/a", "k", {"n": i})
        bridge.publish("other", "k", {"n": i})
    assert done.wait(5)
    assert isinstance(got[0], Reset)
    assert got[0].state == {"stage/a": {"k": {"n": 0}}}
    assert [e.seq for e in got[1:]] == list(range(2, 102))


def test_a_failing_local_sink_is_removed_and_counted_and_others_go_on(bridge):
    good: list[object] = []
    seen = threading.Event()

    def bad(ev):
        raise RuntimeError("boom")

    def ok(ev):
        good.append(ev)
        if isinstance(ev, Update):
            seen.set()

    bridge.subscribe([""], bad)
    bridge.subscribe([""], ok)
    bridge.publish("t", "k", {"x": 1})
    assert seen.wait(5)
    stats = bridge.statistics()
    assert stats.local_sink_failures == 1
    assert stats.local_subscribers == 1


def test_bad_publications_raise_in_the_caller_and_change_nothing(bridge):
    for args in [("", "k", {}), ("_hb", "k", {}), ("t", 1, {}), ("t", "k", [1])]:
        with pytest.raises(BadRequest):
            bridge.publish(*args)
    bridge.publish("t", "k", {"bad": object()})  # only the bridge can tell
    bridge.publish("t", "k", {"good": 1})
    stats = bridge.statistics()
    assert stats.rejected == 1
    assert stats.sequencer.published == 1


def test_a_second_bridge_on_the_same_endpoints_fails_with_bind_error(bridge):
    with pytest.raises(BindError, match="cannot bind"):
        start_bridge(BridgeConfig(bridge.status_endpoint, "tcp://127.0.0.1:*"))


def test_publishing_to_a_stopped_bridge_raises_bridge_closed(bridge):
    bridge.stop()
    with pytest.raises(BridgeClosed):
        bridge.publish("t", "k", {})
