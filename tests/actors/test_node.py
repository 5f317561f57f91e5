"""A whole node in-process: control ops, the button that never lies, bad requests."""

from __future__ import annotations

import hashlib
import random
import threading

import msgpack
import pytest

from pipecast.actors import StageConfig
from pipecast.testing import Collector, start_test_node, wait_for
from pipecast.transport import RemoteError


@pytest.fixture
def node(tmp_path):
    n = start_test_node(
        tmp_path / "data", (StageConfig("checksum", "checksum", {"step_bytes": 4096}),)
    )
    c = n.client()
    # settled: the stage and the demo network's runner have published their first state
    assert wait_for(
        lambda: {"stage/checksum", "invocation/demo"} <= set(c.call("status")["topics"]), 5
    )
    yield n
    n.stop()


@pytest.fixture
def client(node):
    return node.client(5.0)


def test_ping_answers_with_the_node_epoch(node, client):
    result = client.call("ping")
    assert result["pong"] is True
    assert result["epoch"] == node.bridge.epoch


def test_checksum_stage_hashes_enqueued_files_and_publishes_progress(node, client, tmp_path):
    data = random.Random(1).randbytes(100_000)
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    w = Collector(node, ("stage/",)).start()
    try:
        (item_id,) = client.call("enqueue", paths=[str(f)])["ids"]
        assert w.wait_for(lambda c: (c.latest("stage/checksum") or {}).get("done") == 1, 10)
        progress = [
            u.data["progress"] for u in w.updates("stage/checksum") if u.data["item"] is not None
        ]
        assert len(progress) >= 10
        assert progress == sorted(progress)
        state, result, _ = node.store.result(item_id)
        assert state == "done"
        assert result == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    finally:
        w.stop()


def test_the_button_never_lies_after_concurrent_toggles_from_many_clients(node, client):
    w = Collector(node, ("stage/",)).start()
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        c = node.client(5.0)
        try:
            for _ in range(15):
                c.call(rng.choice(["pause", "resume", "toggle"]), stage="checksum")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors
        reported = client.call("status", prefix="stage/")["topics"]["stage/checksum"]["state"]
        assert w.wait_for(lambda c: c.latest("stage/checksum") == reported)
        held = reported["status"] in ("paused", "pausing")
        assert node.store.is_paused("checksum") == held
        # and the stage really behaves so: work waits while paused, runs otherwise
        f = node.config.data_dir / "probe.bin"
        f.write_bytes(b"x" * 10)
        client.call("enqueue", paths=[str(f)])
        if held:
            assert w.wait_for(lambda c: c.latest("stage/checksum")["queue"] == 1)
            assert node.store.counts("checksum")["done"] == 0
            client.call("resume", stage="checksum")
        assert w.wait_for(lambda c: c.latest("stage/checksum")["done"] == 1, 10)
    finally:
        w.stop()


def test_pause_survives_a_node_restart(tmp_path):
    data = tmp_path / "data"
    n = start_test_node(data)
    n.client().call("pause", stage="encode")
    n.stop()
    n2 = start_test_node(data)
    try:
        c = n2.client()
        assert wait_for(lambda: c.call("status")["topics"].get("stage/encode") is not None, 5)
        assert c.call("status")["topics"]["stage/encode"]["state"]["status"] == "paused"
    finally:
        n2.stop()


@pytest.mark.parametrize(
    ("body", "etype"),
    [
        (b"\xc1", "bad_request"),
        (msgpack.packb([1, 2]), "bad_request"),
        (msgpack.packb({"v": 2}), "bad_request"),
        (msgpack.packb({"v": 1, "op": "ping"}), "unsupported_version"),
        (msgpack.packb({"v": 2.0, "op": "ping"}), "unsupported_version"),
        (msgpack.packb({"v": True, "op": "ping"}), "unsupported_version"),
        (msgpack.packb({"v": 2, "op": "launch"}), "unknown_op"),
        (msgpack.packb({"v": 2, "op": "pause", "stage": "nope"}), "unknown_stage"),
        (msgpack.packb({"v": 2, "op": "pause"}), "bad_request"),
        (
            msgpack.packb({"v": 2, "op": "publish", "topic": "stage/x", "key": "k", "data": {}}),
            "bad_request",
        ),
        (
            msgpack.packb({"v": 2, "op": "publish", "topic": "ext/x", "key": "k", "data": [1]}),
            "bad_request",
        ),
        (msgpack.packb({"v": 2, "op": "enqueue", "paths": "x"}), "bad_request"),
        (msgpack.packb({"v": 2, "op": "ping", "cid": 5}), "bad_request"),
        (b"\x00" * (1024 * 1024 + 1), "too_large"),
    ],
)
def test_bad_control_requests_get_typed_errors_and_change_nothing(node, client, body, etype):
    before = client.call("status")
    with pytest.raises(RemoteError) as info:
        client.call_raw(body)
    assert info.value.wire_type == etype
    assert client.call("status") == before
    assert client.call("ping")["pong"]


def test_publish_from_outside_reaches_watchers_with_the_request_cid(node, client):
    w = Collector(node, ("ext/",)).start()
    try:
        result = client.call(
            "publish", cid="my-cid-1", topic="ext/script", key="job", data={"step": 3}
        )
        assert result == {"topic": "ext/script", "seq": 1}
        assert w.wait_for(lambda c: len(c.updates("ext/script")) == 1)
        (u,) = w.updates("ext/script")
        assert (u.data, u.cid) == ({"step": 3}, "my-cid-1")
        again = client.call("publish", topic="ext/script", key="job", data={"step": 3})
        assert again["seq"] is None  # unchanged: nothing published
    finally:
        w.stop()


def test_stats_are_telemetry_from_each_component(node, client):
    stats = client.call("stats")
    assert stats["bridge"]["epoch"] == node.bridge.epoch
    assert stats["bridge"]["published"] >= 2
    assert stats["control"]["requests"] >= 1
    # the bridge, the presence tracker, the stage, the demo network's runner,
    # the installations, the watch hub and the control server
    assert stats["supervisor"]["children"] == 7
    assert stats["installations"] == {"changes": 0, "refused": 0}
    assert stats["network/demo"]["model_calls"] == 0
    assert stats["presence"]["watchers"] == 0
    assert stats["stage/checksum"]["steps"] >= 0
