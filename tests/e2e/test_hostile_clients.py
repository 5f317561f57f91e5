"""A real node under attack from its own sockets: no request may crash, stall or starve it.

Each case is something a client did to a node and broke it before; after each,
the node still answers `ping` and `status`, a watcher of everything is still in
step with no hole, and nothing that was there was lost.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors import MEDIA_STAGES, Node
from pipecast.testing import Collector, RawClient, start_test_node, wait_for
from pipecast.transport import Reset, Stale, decode_heartbeat

V = 2


def body(op: str, **args: Any) -> bytes:
    return msgpack.packb({"v": V, "op": op, **args})


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = start_test_node(tmp_path / "data", MEDIA_STAGES)
    yield node
    node.stop()


@pytest.fixture
def control(node: Node) -> Iterator[RawClient]:
    with RawClient(node.control_endpoint, node.owner) as raw:
        yield raw


@pytest.fixture
def witness(node: Node) -> Iterator[Collector]:
    """A watcher of everything: it must stay in step through every attack."""
    c = Collector(node, ()).start()
    yield c
    c.stop()


def still_well(node: Node, witness: Collector) -> None:
    """The node answers, and the witness holds exactly the node's state, never reset."""
    client = node.client(5.0)
    assert client.call("ping")["pong"]
    client.call("publish", topic="ext/probe", key="k", data={"n": os.urandom(4).hex()})
    status = client.call("status")["topics"]
    assert witness.wait_for(lambda c: c.subscriber.state() == _live(c.subscriber.state(), status))
    recoveries = [e for e in witness.events if isinstance(e, Reset) and e.reason is not None]
    assert recoveries == []
    assert not [e for e in witness.events if isinstance(e, Stale)]


def _live(mine: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """The node's status as the witness should hold it (status leaves out empty topics)."""
    return {**{t: kv for t, kv in mine.items() if not kv}, **status}


def error_type(reply: Any) -> str | None:
    assert reply is not None, "no reply: the node stalled"
    return None if reply.get("ok", reply.get("op") != "error") else reply["error"]["type"]


def test_a_watcher_whose_meta_nests_a_thousand_deep_is_refused_and_control_lives(
    node, control, witness
):
    reply = control.request(body("presence.join", watcher="w", topic="t", meta=nested(1023)))
    assert error_type(reply) == "too_large"
    still_well(node, witness)


def test_a_publish_nested_a_thousand_deep_is_refused_and_every_subscriber_can_still_sync(
    node, control, witness
):
    reply = control.request(body("publish", topic="ext/x", key="k", data=nested(1022)))
    assert error_type(reply) == "too_large"
    late = Collector(node, ("",)).start()  # a joiner of everything syncs
    late.stop()
    still_well(node, witness)


@pytest.mark.parametrize(
    "request_body",
    [
        body("cancel", id=2**63),
        body("retry", ids=[2**63]),
        body("cancel", id=-(2**63)),
        body("invocations", network="demo", run=2**63),
        body("jobs", state=["encoded"]),
        body("jobs", limit=2**64 - 1),
    ],
)
def test_ints_beyond_the_store_and_wrong_types_are_bad_requests_and_no_stage_dies(
    node, control, witness, request_body
):
    for _ in range(4):  # four used to pass the stage's restart intensity
        assert error_type(control.request(request_body)) == "bad_request"
    actors = node.client().call("status", prefix="actor/")["topics"]
    assert all(kv["state"]["restarts"] == 0 for kv in actors.values()), actors
    still_well(node, witness)


@pytest.mark.parametrize("v", [1, 2.0, True, "2", None, 3])
def test_any_version_but_the_integer_2_is_unsupported(node, control, witness, v):
    reply = control.request(msgpack.packb({"v": v, "op": "ping"}))
    assert error_type(reply) == "unsupported_version"
    with RawClient(node.bridge.sync_endpoint, node.owner) as sync:
        reply = sync.request(msgpack.packb({"v": v, "op": "snapshot", "topics": []}))
        assert error_type(reply) == "unsupported_version"
    still_well(node, witness)


def test_a_frame_over_the_frame_bound_is_never_read_and_the_node_goes_on(node, witness):
    huge = b"\x00" * (8 * 1024 * 1024)  # twice frame_bytes
    for endpoint in (node.control_endpoint, node.bridge.sync_endpoint):
        with RawClient(endpoint, node.owner) as raw:
            raw.send(b"", huge)
            assert raw.reply(1.0) is None  # cut off: no answer, nothing read
    still_well(node, witness)


def test_a_request_just_over_the_request_bound_is_too_large(node, control, witness):
    reply = control.request(body("ping", pad="x" * (1024 * 1024)))
    assert error_type(reply) == "too_large"
    still_well(node, witness)


def test_a_snapshot_of_a_hundred_thousand_prefixes_is_refused_at_once(node, witness):
    with RawClient(node.bridge.sync_endpoint, node.owner) as sync:
        request = msgpack.packb(
            {"v": V, "op": "snapshot", "topics": [f"p{i}" for i in range(110_000)]}
        )
        assert error_type(sync.request(request)) == "too_large"
    still_well(node, witness)


def test_a_flood_of_topics_stops_at_the_clients_share_and_the_heartbeat_stays_small(
    node, control, witness
):
    limit = node.config.limits.client_topics
    refused = 0
    for i in range(limit + 50):
        reply = control.request(body("publish", topic=f"ext/t{i}", key="k", data={"i": i}))
        refused += error_type(reply) == "too_large"
    assert refused == 50
    # the node's own topics still have room
    node.bridge.publish("stage/own", "state", {"ok": True})
    assert witness.wait_for(lambda c: c.latest("stage/own") == {"ok": True})
    assert len(heartbeat_heads(node)) > limit
    # dead topics leave the heartbeat
    for i in range(limit):
        control.request(body("publish", topic=f"ext/t{i}", key="k", data=None))
    assert wait_for(lambda: len(heartbeat_heads(node)) < 100, 10)
    still_well(node, witness)


def heartbeat_heads(node: Node) -> dict[str, int]:
    """The heads of the next heartbeat, read off the status socket."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    assert node.owner is not None
    node.owner.apply(sub)
    try:
        sub.setsockopt(zmq.SUBSCRIBE, b"_hb")
        sub.connect(node.bridge.status_endpoint)
        assert sub.poll(5000), "no heartbeat"
        return decode_heartbeat(sub.recv_multipart()[1]).heads
    finally:
        sub.close()
        ctx.term()


def test_two_requests_with_one_cid_each_get_their_reply(node, witness):
    with (
        RawClient(node.control_endpoint, node.owner) as a,
        RawClient(node.control_endpoint, node.owner) as b,
    ):
        a.send(b"", body("stats", cid="same"))
        b.send(b"", body("stats", cid="same"))
        ra, rb = a.reply(), b.reply()
    assert (ra["ok"], rb["ok"]) == (True, True)
    assert ra["cid"] == rb["cid"] == "same"
    still_well(node, witness)


@pytest.mark.parametrize(
    "frames",
    [
        [b""],
        [b"\xc1"],
        [b"", b"", b"\x82"],
        [b"", msgpack.packb([1, 2, 3])],
        [b"", msgpack.packb({"v": V})],
        [b"", msgpack.packb({"v": V, "op": 7})],
        [b"", msgpack.packb({"v": V, "op": "ping", "cid": "x" * 200})],
        [b"", msgpack.packb({"v": V, "op": "ping", 1: 2}, strict_types=False)],
        [b"", b"\xd4\x01\x00"],  # a msgpack ext type
        [b"", msgpack.packb({"v": V, "op": "ping", "x": msgpack.ExtType(5, b"zz")})],
    ],
)
def test_malformed_frames_get_typed_errors_or_nothing_and_change_nothing(
    node, control, witness, frames
):
    control.send(*frames)
    reply = control.reply(1.0)
    assert reply is None or error_type(reply) in ("bad_request", "too_large", "unsupported_version")
    still_well(node, witness)


WRONG = [
    None,
    True,
    -1,
    0,
    1.5,
    2**63,
    -(2**63),
    2**64 - 1,
    "",
    "x" * 300,
    [],
    [1],
    {},
    {"a": 1},
    b"b",
]
ARGS = {
    "ping": [],
    "status": ["prefix"],
    "stats": [],
    "pause": ["stage"],
    "resume": ["stage"],
    "toggle": ["stage"],
    "suspend": ["stage"],
    "enqueue": ["paths", "recursive", "stage"],
    "jobs": ["state", "limit"],
    "job": ["id"],
    "nodes": [],
    "retry": ["ids", "code"],
    "cancel": ["id"],
    "publish": ["topic", "key", "data"],
    "presence.join": ["watcher", "topic", "meta", "ttl"],
    "presence.heartbeat": ["watcher"],
    "presence.leave": ["watcher"],
    "presence.list": ["topic"],
    "run": ["network", "prompt"],
    "run.stop": ["network"],
    "invocations": ["network", "run", "limit"],
    "runs": ["network", "limit"],
    "networks": [],
}
GOOD = {
    "stage": "analyze", "paths": ["/nonexistent"], "topic": "ext/t", "key": "k",
    "data": {"a": 1}, "watcher": "w", "network": "demo", "prompt": "p", "ids": [1],
}  # fmt: skip


def test_every_field_of_every_op_refuses_every_wrong_type_without_an_internal_error(
    node, control, witness
):
    seen: dict[str, int] = {}
    for op, fields in ARGS.items():
        for name in fields:
            for wrong in WRONG:
                args = {k: GOOD[k] for k in fields if k in GOOD and k != name}
                reply = control.request(body(op, **args, **{name: wrong}))
                kind = error_type(reply) or "ok"
                assert kind != "internal", (op, name, wrong, reply)
                seen[kind] = seen.get(kind, 0) + 1
    assert seen.get("bad_request", 0) > 100
    client = node.client()
    assert client.call("stats")["control"]["errors_by_type"].get("internal", 0) == 0
    still_well(node, witness)


def test_a_peer_that_never_reads_its_snapshots_gets_only_a_few_queued(node, witness):
    for i in range(200):
        node.bridge.publish("ext/big", f"k{i}", {"blob": "x" * 10_000})
    request = msgpack.packb({"v": V, "op": "snapshot", "topics": []})
    with RawClient(node.bridge.sync_endpoint, node.owner) as sync:
        sync.socket.rcvhwm = 1
        for _ in range(200):  # never read
            sync.send(b"", request)
        assert wait_for(lambda: node.bridge.statistics().sync_requests >= 200, 10)
        stats = node.bridge.statistics()
        # replies past its queue (16, and what the kernel buffers) were dropped, not kept
        assert stats.sync_errors >= 150, stats
    still_well(node, witness)


def test_a_control_client_that_floods_from_many_threads_gets_all_its_answers(node, witness):
    errors: list[BaseException] = []

    def pings() -> None:
        try:
            client = node.client(10.0)
            for _ in range(20):
                assert client.call("ping")["pong"]
        except BaseException as exc:  # collected, then asserted in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=pings) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    still_well(node, witness)


# -- fuzzing every op over the real socket ----------------------------------------------

LETTERS = st.text(alphabet="abcdefghij_", min_size=0, max_size=12)
PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | LETTERS
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(LETTERS, inner, max_size=4),
    max_leaves=12,
)


def test_random_arguments_to_every_op_never_get_an_internal_error(tmp_path: Path) -> None:
    node = start_test_node(tmp_path / "data", MEDIA_STAGES)
    witness = Collector(node, ()).start()
    try:
        ops = sorted(ARGS)
        with RawClient(node.control_endpoint, node.owner) as control:

            @given(
                op=st.sampled_from(ops),
                args=st.dictionaries(
                    st.sampled_from(sorted({a for fields in ARGS.values() for a in fields}))
                    | LETTERS,
                    PLAIN,
                    max_size=4,
                ),
            )
            @settings(max_examples=300, deadline=None, database=None)
            def attack(op: str, args: dict[str, Any]) -> None:
                if op == "enqueue":
                    args.pop("recursive", None)  # a walk of '.' would walk the checkout
                reply = control.request(body(op, **args))
                assert error_type(reply) != "internal", (op, args, reply)

            attack()
        still_well(node, witness)
    finally:
        witness.stop()
        node.stop()


def test_random_sync_requests_never_get_an_internal_error(tmp_path: Path) -> None:
    node = start_test_node(tmp_path / "data", networks=())
    try:
        with RawClient(node.bridge.sync_endpoint, node.owner) as sync:

            @given(
                request=st.dictionaries(
                    st.sampled_from(["v", "op", "topics", "topic", "after"]) | LETTERS,
                    PLAIN | st.sampled_from([2, "snapshot", "replay"]),
                    max_size=5,
                )
            )
            @settings(max_examples=300, deadline=None, database=None)
            def attack(request: dict[str, Any]) -> None:
                reply = sync.request(msgpack.packb(request))
                assert error_type(reply) != "internal", (request, reply)

            attack()
        assert node.client().call("ping")["pong"]
    finally:
        node.stop()
