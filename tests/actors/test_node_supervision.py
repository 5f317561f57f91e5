"""Every actor of a node is supervised: the bridge, the control server and the watch hub
(tests/actors/presence/test_watch_hub.py) die, are published dead, and come back where
they were, with nothing a watcher holds made wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pipecast.actors._control_server as control_module
from pipecast.actors import Bridge, ControlServer, Node, StageConfig
from pipecast.testing import Collector, start_test_node, wait_for
from pipecast.transport import ControlClient, RemoteError, Reset, Update


class _Crash:
    """A message the patched actor raises on: a bug we cannot cause for real."""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = start_test_node(tmp_path / "data", (StageConfig("checksum", "checksum"),))
    yield node
    node.stop()


def _crash_on(monkeypatch: pytest.MonkeyPatch, actor_class: type) -> None:
    original = actor_class.on_receive

    def crashing(self: Any, message: Any) -> Any:
        if isinstance(message, _Crash):
            raise RuntimeError(f"{actor_class.__name__} bug")
        return original(self, message)

    monkeypatch.setattr(actor_class, "on_receive", crashing)


def _statuses(c: Collector, topic: str) -> list[str]:
    return [u.data["status"] for u in c.updates(topic)]


def test_a_bridge_that_dies_comes_back_in_the_same_epoch_on_the_same_ports(node, monkeypatch):
    assert node.bridge is not None
    endpoints = (node.bridge.status_endpoint, node.bridge.sync_endpoint)
    watch = Collector(node, ("ext/", "actor/bridge")).start()
    client = node.client(5.0)
    try:
        client.call("publish", topic="ext/a", key="k", data={"n": 1})
        assert watch.wait_for(lambda c: c.latest("ext/a", "k") == {"n": 1})
        _crash_on(monkeypatch, Bridge)
        node.bridge.ref.tell(_Crash())
        assert watch.wait_for(
            lambda c: _statuses(c, "actor/bridge")[-2:] == ["restarting", "running"], 10
        )
        assert "Bridge bug" in watch.updates("actor/bridge")[-2].data["error"]
        assert (node.bridge.status_endpoint, node.bridge.sync_endpoint) == endpoints
        client.call("publish", topic="ext/a", key="k", data={"n": 2})
        assert watch.wait_for(lambda c: c.latest("ext/a", "k") == {"n": 2})
        # one epoch, gapless: the subscriber never had to start over
        assert not [e for e in watch.events if isinstance(e, Reset) and e.reason is not None]
        assert [u.seq for u in watch.updates("ext/a")] == [1, 2]
        assert {u.epoch for u in watch.updates()} == {node.bridge.epoch}
        # the in-process subscribers follow the new incarnation too
        assert wait_for(
            lambda: client.call("status", prefix="ext/")["topics"] == {"ext/a": {"k": {"n": 2}}},
            5,
        )
        assert node.bridge.statistics().incarnation == 2
    finally:
        watch.stop()


def test_a_control_server_that_dies_comes_back_on_the_same_endpoint(node, monkeypatch):
    watch = Collector(node, ("actor/control",)).start()
    client = node.client(5.0)
    try:
        _crash_on(monkeypatch, ControlServer)
        node.registry.get("control").tell(_Crash())
        assert watch.wait_for(
            lambda c: _statuses(c, "actor/control")[-2:] == ["restarting", "running"], 10
        )
        assert wait_for(lambda: _pong(client), 5)
        assert client.call("status", prefix="stage/")["topics"]["stage/checksum"]
    finally:
        watch.stop()


def _pong(client: ControlClient) -> bool:
    try:
        return bool(client.call("ping")["pong"])
    except Exception:
        return False


def test_an_answer_that_cannot_be_packed_is_an_error_reply_and_the_server_goes_on(
    node, monkeypatch
):
    # every value from outside is checked first, so only a bug could make one
    monkeypatch.setattr(control_module, "networks_result", lambda *a: {"bad": object()})
    client = node.client(5.0)
    with pytest.raises(RemoteError) as info:
        client.call("networks")
    assert info.value.wire_type == "internal"
    assert "could not be encoded" in info.value.message
    assert client.call("ping")["pong"]
    stats = client.call("stats")
    assert stats["control"]["errors_by_type"] == {"internal": 1}


def test_updates_keep_flowing_to_a_watcher_across_a_bridge_restart(node, monkeypatch):
    assert node.bridge is not None
    watch = Collector(node, ("stage/",)).start()
    try:
        _crash_on(monkeypatch, Bridge)
        node.bridge.ref.tell(_Crash())
        node.bridge.publish("stage/extra", "state", {"status": "after"})
        # published to the old or the new incarnation: either lost before its seq, or
        # sequenced; a later one always arrives, and no subscriber sees a hole
        assert wait_for(lambda: node.bridge.incarnations == 2, 10)
        node.bridge.publish("stage/extra", "state", {"status": "later"})
        assert watch.wait_for(lambda c: c.latest("stage/extra") == {"status": "later"})
        seqs = [u.seq for u in watch.updates("stage/extra")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert all(isinstance(u, Update) for u in watch.updates("stage/extra"))
    finally:
        watch.stop()
