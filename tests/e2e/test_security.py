"""A default node against clients that may not use it: libzmq's security test categories.

Valid key, bogus key, no key (NULL), the wrong node key, a revoked key, a watch
key trying every operate op, a key whose role changes while it is connected.
Every refusal must be fast and clear for the client, counted and logged by the
node, and change nothing.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pipecast.actors import CONTROL_OPS, Node
from pipecast.testing import Collector, RawClient, start_test_node, wait_for
from pipecast.transport import (
    WATCH_OPS,
    ClientSecurity,
    ControlClient,
    Keypair,
    KeyRefused,
    RemoteError,
    Role,
    Subscriber,
    Update,
)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = start_test_node(tmp_path / "data", networks=())
    stages = {f"stage/{s.name}" for s in n.config.stages}
    assert wait_for(lambda: stages <= set(topics(n)), 10)  # every stage has said its state
    yield n
    n.stop()


def client_of(node: Node, keys: Keypair, timeout: float = 3.0) -> ControlClient:
    assert node.security is not None
    return ControlClient(
        node.control_endpoint, timeout, ClientSecurity(keys, node.security.keys.public)
    )


def allowed(node: Node, name: str, role: Role) -> Keypair:
    assert node.security is not None
    keys = Keypair.new()
    node.security.allowed.allow(name, keys.public, role)
    return keys


def subscriber_with(node: Node, keys: Keypair, prefixes: list[str]) -> Subscriber:
    assert node.security is not None
    assert node.bridge is not None
    security = ClientSecurity(keys, node.security.keys.public)
    return Subscriber(
        node.bridge.status_endpoint, node.bridge.sync_endpoint, prefixes, security=security
    )


def topics(node: Node) -> dict[str, Any]:
    return dict(node.client().call("status")["topics"])


def handshake_failures(node: Node) -> dict[str, int]:
    return dict(
        node.client().call("stats")["control"]["security"]["handshakes"]["failed_by_reason"]
    )


def test_a_new_data_directory_gets_private_keys_and_the_owner_notices_nothing(node):
    keys = node.config.data_dir / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE(node.config.data_dir.stat().st_mode) == 0o700
    for f in ("node.key", "node.key_secret", "owner.key", "owner.key_secret", "allowed.json"):
        assert stat.S_IMODE((keys / f).stat().st_mode) == 0o600, f
    client = node.client()
    assert client.call("ping")["pong"]
    assert client.call("status")["security"] == "curve"
    assert client.call("pause", stage="encode")["status"] == "paused"


def test_a_client_with_no_key_is_refused_at_once_and_the_node_counts_it(node, caplog):
    caplog.set_level(logging.WARNING, "pipecast.security")
    before = topics(node)
    with pytest.raises(KeyRefused, match="does not speak CURVE"):
        ControlClient(node.control_endpoint, 10.0).call("pause", stage="encode")
    with RawClient(node.control_endpoint) as raw:  # no key, and never reads the monitor
        assert raw.request(b"\x81\xa1v\x02", 0.5) is None
    # no_curve, or "other" when the client hung up before the node saw its greeting
    assert wait_for(lambda: sum(handshake_failures(node).values()) >= 2, 5)
    assert set(handshake_failures(node)) <= {"no_curve", "other"}
    assert "a handshake on tcp://127.0.0.1:" in caplog.text
    assert topics(node) == before


def test_a_bogus_key_is_refused_at_the_handshake_on_every_socket(node, caplog):
    caplog.set_level(logging.WARNING, "pipecast.security")
    stranger = Keypair.new()
    before = topics(node)
    with pytest.raises(KeyRefused, match="refused this key"):
        client_of(node, stranger, 10.0).call("shutdown")
    sub = subscriber_with(node, stranger, ["stage/"])
    with sub, pytest.raises(KeyRefused):
        sub.wait_synced(10)
    assert wait_for(lambda: handshake_failures(node).get("key_refused", 0) >= 1, 5)
    assert "refused a key from 127.0.0.1" in caplog.text
    assert not node.stop_requested.is_set()
    assert topics(node) == before


def test_a_client_that_holds_the_wrong_node_key_is_refused(node):
    owner = node.owner
    assert owner is not None
    impostor_node = Keypair.new().public  # a man in the middle would have this one
    client = ControlClient(node.control_endpoint, 10.0, ClientSecurity(owner.keys, impostor_node))
    with pytest.raises(KeyRefused):
        client.call("ping")
    assert wait_for(lambda: handshake_failures(node).get("bad_crypto", 0) >= 1, 5)


def test_a_watch_key_watches_but_every_operate_op_is_unauthorized_and_changes_nothing(node):
    keys = allowed(node, "viewer", Role.WATCH)
    viewer = client_of(node, keys)
    before = topics(node)
    for op in sorted(CONTROL_OPS - WATCH_OPS):
        with pytest.raises(RemoteError) as refused:
            viewer.call(
                op, stage="encode", network="n", paths=["/x"], id=1, topic="ext/t", key="k", data={}
            )
        assert refused.value.wire_type == "unauthorized", op
        assert op in str(refused.value)
    for op in sorted(WATCH_OPS - {"presence.join", "presence.heartbeat", "presence.leave"}):
        refused: list[str] = []
        try:
            viewer.call(op)
        except RemoteError as exc:  # missing arguments may be refused, never the key
            refused.append(exc.wire_type)
        assert "unauthorized" not in refused, op
    sub = subscriber_with(node, keys, ["stage/"])
    with sub:
        sub.wait_synced(10)
        assert (
            sub.topic("stage/encode")["state"]["status"]
            == before["stage/encode"]["state"]["status"]
        )
    assert not node.stop_requested.is_set()
    assert topics(node) == before


def test_a_watcher_belongs_to_the_key_that_joined_it(node):
    owner = node.client()
    owner.call("presence.join", watcher="w1", topic="stage/encode", ttl=60)
    other = client_of(node, allowed(node, "viewer", Role.WATCH))
    for op in ("presence.heartbeat", "presence.leave"):
        with pytest.raises(RemoteError) as refused:
            other.call(op, watcher="w1")
        assert refused.value.wire_type == "unauthorized", op
    with pytest.raises(RemoteError) as moved:
        other.call("presence.join", watcher="w1", topic="stage/analyze", ttl=60)
    assert moved.value.wire_type == "unauthorized"
    assert "w1" in owner.call("presence.list")["stage/encode"]["watchers"]
    other.call("presence.join", watcher="w2", topic="stage/encode", ttl=60)  # its own: fine
    other.call("presence.leave", watcher="w2")


def connected(node: Node, keys: Keypair) -> RawClient:
    """One DEALER, one connection, one handshake: what a long-lived client holds."""
    assert node.security is not None
    return RawClient(node.control_endpoint, ClientSecurity(keys, node.security.keys.public))


def ask(raw: RawClient, op: str, **args: Any) -> dict[str, Any]:
    reply = raw.request(msgpack.packb({"v": 2, "op": op, **args}), 5.0)
    assert reply is not None, op
    return dict(reply)


def test_a_key_revoked_while_connected_is_refused_at_its_next_request(node):
    keys = allowed(node, "script", Role.OPERATE)
    assert node.security is not None
    with connected(node, keys) as script:
        assert ask(script, "ping")["ok"]
        node.security.allowed.revoke("script")
        refused = ask(script, "pause", stage="encode")  # the connection let in before
    assert refused["error"]["type"] == "unauthorized"
    assert topics(node)["stage/encode"]["state"]["status"] != "paused"


def test_a_revoked_key_loses_its_subscription_within_a_heartbeat_and_the_others_lose_nothing(node):
    keys = allowed(node, "screen", Role.WATCH)
    assert node.security is not None
    assert node.bridge is not None
    revoked = subscriber_with(node, keys, ["ext/"])
    kept = Collector(node, ("ext/",))
    with revoked:
        revoked.wait_synced(10)
        kept.start()
        try:
            node.security.allowed.revoke("screen")

            def dropped() -> bool:
                stats = node.bridge.statistics()
                assert stats.handshakes is not None
                return stats.revocations >= 1 and stats.handshakes.failed >= 1

            assert wait_for(dropped, 10), node.bridge.statistics()  # its reconnection refused
            assert revoked.refused is not None
            for i in range(20):
                node.bridge.publish("ext/after", "k", {"i": i})
            assert kept.wait_for(lambda c: (c.latest("ext/after", "k") or {}).get("i") == 19, 10)
            assert "ext/after" not in revoked.state()
        finally:
            kept.stop()
    seen = [u.data["i"] for u in kept.updates("ext/after") if isinstance(u, Update)]
    assert seen == sorted(seen)
    assert node.bridge.statistics().revocations >= 1


def test_a_role_changed_while_connected_applies_to_the_next_request(node):
    keys = allowed(node, "ops", Role.WATCH)
    assert node.security is not None
    with connected(node, keys) as ops:
        assert ask(ops, "pause", stage="encode")["error"]["type"] == "unauthorized"
        node.security.allowed.allow("ops", keys.public, Role.OPERATE)
        assert ask(ops, "pause", stage="encode")["result"]["status"] == "paused"
        node.security.allowed.allow("ops", keys.public, Role.WATCH)
        assert ask(ops, "resume", stage="encode")["error"]["type"] == "unauthorized"
    assert topics(node)["stage/encode"]["state"]["status"] == "paused"


def test_a_corrupt_allow_list_allows_nobody_and_says_why(node):
    assert node.security is not None
    (node.config.data_dir / "keys" / "allowed.json").write_text("{not json")
    with pytest.raises(KeyRefused):
        node.client(3.0).call("ping")
    assert node.security.allowed.error is not None
    assert "not a valid allow-list" in node.security.allowed.error
