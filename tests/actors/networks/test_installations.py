"""Installations: named screens kept in the store and published for kiosks to follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecast.actors import RunRules
from pipecast.actors.networks import check_installation
from pipecast.testing import Collector, start_test_node
from pipecast.transport import BadRequest, RemoteError

NETWORKS = (RunRules("demo", ("paint", "caption", "remix")), RunRules("echoes", ("echo",)))


@pytest.fixture
def node(tmp_path: Path):
    node = start_test_node(tmp_path / "data", stages=(), networks=NETWORKS)
    yield node
    node.stop()


def test_an_installation_is_added_switched_listed_and_removed_on_its_topic(node) -> None:
    client = node.client()
    watch = Collector(node, ("installation/",)).start()
    try:
        added = client.call("installations.add", name="hall", network="demo", display="grid:2x3")
        assert (added["network"], added["display"]) == ("demo", "grid:2x3")
        assert watch.wait_for(lambda c: c.latest("installation/hall", "config") is not None)
        switched = client.call("installations.switch", name="hall", network="echoes")
        assert (switched["network"], switched["display"]) == ("echoes", "grid:2x3")
        assert watch.wait_for(
            lambda c: (c.latest("installation/hall", "config") or {}).get("network") == "echoes"
        )
        client.call("installations.switch", name="hall", display="single:1:2:invoking")
        (listed,) = client.call("installations.list")["installations"]
        assert (listed["name"], listed["network"], listed["display"]) == (
            "hall",
            "echoes",
            "single:1:2:invoking",
        )
        assert client.call("installations.remove", name="hall") == {"removed": "hall"}
        assert watch.wait_for(lambda c: c.latest("installation/hall", "config") is None)
        assert client.call("installations.list") == {"installations": []}
    finally:
        watch.stop()


@pytest.mark.parametrize(
    ("op", "args", "error", "says"),
    [
        (
            "installations.add",
            {"name": "a", "network": "nope", "display": "grid:1x1"},
            "unknown_network",
            "no network named 'nope'",
        ),
        (
            "installations.add",
            {"name": "a", "network": "demo", "display": "grid:0x1"},
            "bad_request",
            "rows",
        ),
        (
            "installations.add",
            {"name": "a", "network": "demo", "display": "mosaic"},
            "bad_request",
            "grid:ROWSxCOLS",
        ),
        (
            "installations.add",
            {"name": "a b", "network": "demo", "display": "grid:1x1"},
            "bad_request",
            "name",
        ),
        (
            "installations.add",
            {"name": "hall", "network": "demo", "display": "grid:1x1"},
            "bad_request",
            "exists",
        ),
        (
            "installations.switch",
            {"name": "nobody", "network": "demo"},
            "bad_request",
            "no installation named 'nobody'",
        ),
        ("installations.switch", {"name": "hall", "display": 7}, "bad_request", "display"),
        ("installations.remove", {"name": "nobody"}, "bad_request", "no installation"),
    ],
)
def test_a_bad_installation_request_is_a_typed_error_and_changes_nothing(
    node, op: str, args: dict, error: str, says: str
) -> None:
    client = node.client()
    client.call("installations.add", name="hall", network="demo", display="grid:2x2")
    before = client.call("installations.list")
    with pytest.raises(RemoteError) as info:
        client.call(op, **args)
    assert info.value.wire_type == error
    assert says in info.value.message
    assert client.call("installations.list") == before


def test_installations_outlive_a_restart_and_are_published_at_start(tmp_path: Path) -> None:
    node = start_test_node(tmp_path / "data", stages=(), networks=NETWORKS)
    node.client().call("installations.add", name="hall", network="demo", display="grid:1x2")
    node.stop()
    node = start_test_node(tmp_path / "data", stages=(), networks=NETWORKS)
    try:
        config = node.client().call("status")["topics"]["installation/hall"]["config"]
        assert (config["network"], config["display"]) == ("demo", "grid:1x2")
    finally:
        node.stop()


def test_the_check_is_pure_and_normalises_the_display() -> None:
    inst = check_installation("hall", "demo", "grid:02x3", {"demo": None})
    assert inst.display == "grid:2x3"
    with pytest.raises(BadRequest):
        check_installation("hall", "demo", "x" * 100, {"demo": None})
