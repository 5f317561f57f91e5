"""The web gateway over real HTTP against a real node: access, controls, the stream, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipecast.actors import Node, NodeConfig, StageConfig
from pipecast.testing import (
    TEST_STAGE_KINDS,
    WebClient,
    browser_watchers,
    free_endpoint,
    start_test_node,
    start_test_web,
    wait_for,
)
from pipecast.transport import ClientSecurity, Keypair, Role, allow_list

STAGES = (StageConfig("sum", "checksum"),)


@pytest.fixture
def node(tmp_path: Path):
    node = start_test_node(tmp_path / "data", stages=STAGES, networks=())
    yield node
    node.stop()


@pytest.fixture
def web(node):
    server = start_test_web(node)
    yield server
    server.stop()


def signed_in(server) -> WebClient:
    return WebClient(server.base, server.web.access.token)


def stage_status(node: Node) -> str:
    return node.client().call("status")["topics"]["stage/sum"]["state"]["status"]


def test_nothing_is_served_without_a_session(web) -> None:
    anon = WebClient.__new__(WebClient)
    anon.host, anon.port, anon.cookie = "127.0.0.1", web.port, ""
    for path in ("/", "/jobs", "/api/snapshot", "/api/stream", "/api/jobs", "/images/x.png"):
        status, _, _ = anon.request("GET", path)
        assert status == 401, path
    status, _, _ = anon.request("GET", "/?token=wrong-token-of-some-length")
    assert status == 401
    status, _, _ = anon.request("POST", "/api/control", b"{}", {"Content-Type": "application/json"})
    assert status == 401
    assert web.web.access.refused == 1  # the wrong token


def test_the_token_becomes_an_httponly_strict_cookie_and_leaves_the_url(web) -> None:
    client = signed_in(web)
    flags = {f.strip().lower() for f in client.set_cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    status, headers, _ = client.request("GET", f"/jobs?token={web.web.access.token}&x=1")
    assert (status, headers["location"]) == (303, "/jobs?x=1")


def test_a_control_request_needs_the_csrf_token_and_changes_nothing_without(node, web) -> None:
    client = signed_in(web)
    for csrf in ("", "forged"):
        status, doc = client.control("pause", csrf=csrf or "-", stage="sum")
        assert status == 403
        assert doc["error"]["type"] == "csrf"
    status, _, _ = client.request(
        "POST",
        "/api/control",
        json.dumps({"op": "pause", "stage": "sum"}).encode(),
        {"Content-Type": "application/json", "X-CSRF-Token": client.csrf, "Origin": "http://evil"},
    )
    assert status == 403
    assert stage_status(node) == "idle"
    status, doc = client.control("pause", stage="sum")
    assert status == 200
    assert doc["result"]["status"] == "paused"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"op": "shutdown"}', "application/json", 400),
        (b'{"op": "publish", "topic": "ext/x"}', "application/json", 400),
        (b"not json", "application/json", 400),
        (b'["pause"]', "application/json", 400),
        (b'{"op": "pause", "stage": "sum"}', "text/plain", 415),
        (b'{"op": "pause", "pad": "' + b"x" * 70_000 + b'"}', "application/json", 413),
        (b'{"op": "pause", "stage": "nope"}', "application/json", 400),
    ],
)
def test_a_bad_control_request_gets_a_typed_error_and_changes_nothing(
    node, web, body: bytes, content_type: str, status: int
) -> None:
    client = signed_in(web)
    got, _, answer = client.request(
        "POST", "/api/control", body, {"Content-Type": content_type, "X-CSRF-Token": client.csrf}
    )
    assert got == status
    assert "error" in json.loads(answer)
    assert stage_status(node) == "idle"
    assert node.client().call("ping")["pong"]  # the node is fine


def test_a_gateway_whose_key_has_role_watch_shows_no_controls_and_changes_nothing(node) -> None:
    keys = Keypair.new()
    allow_list(node.config.data_dir).allow("screen", keys.public, Role.WATCH)
    owner = ClientSecurity.owner(node.config.data_dir)
    server = start_test_web(node, security=ClientSecurity(keys, owner.server))
    try:
        client = signed_in(server)
        _, _, page = client.request("GET", "/")
        assert b'data-operate="no"' in page
        assert b"enqueue-form" not in page
        status, _ = client.control("pause", stage="sum")
        assert status == 403
        assert stage_status(node) == "idle"
    finally:
        server.stop()


def test_the_stream_starts_with_the_state_then_every_event_in_order(node, web) -> None:
    client = signed_in(web)
    reader = client.stream()
    try:
        assert reader.wait_for(lambda r: bool(r.events))
        first = reader.events[0]
        assert first.event == "snapshot"
        assert first.data["reloaded"] is False
        assert first.id.startswith(web.web.gateway.epoch + ":")
        for i in range(50):
            node.client().call("publish", topic="ext/t", key=f"k{i % 5}", data={"i": i})
        assert reader.wait_for(lambda r: r.state().get("ext/t", {}).get("k4") == {"i": 49})
        seqs = [
            rec["seq"]
            for ev in reader.events
            if ev.event == "batch"
            for rec in ev.data
            if rec.get("topic") == "ext/t"
        ]
        assert seqs == list(range(1, 51))
    finally:
        reader.stop()


def test_a_reconnect_replays_exactly_what_it_missed(node, web) -> None:
    client = signed_in(web)
    first = client.stream()
    node.client().call("publish", topic="ext/r", key="k", data={"i": 0})
    assert first.wait_for(lambda r: "ext/r" in r.state())
    last = first.last_id
    first.stop()
    for i in range(1, 30):
        node.client().call("publish", topic="ext/r", key="k", data={"i": i})
    assert wait_for(lambda: web.web.gateway.topic("ext/r") == {"k": {"i": 29}}, 5)
    second = client.stream(last_event_id=last)
    try:
        assert second.wait_for(
            lambda r: any(
                rec.get("data") == {"i": 29}
                for ev in r.events
                if ev.event == "batch"
                for rec in ev.data
            )
        )
        assert all(ev.event == "batch" for ev in second.events)  # no snapshot: a replay
        got = [
            rec["data"]["i"]
            for ev in second.events
            for rec in ev.data
            if rec.get("topic") == "ext/r"
        ]
        assert got == list(range(1, 30))
    finally:
        second.stop()


def test_a_restarted_gateway_reloads_and_says_so(node, web) -> None:
    client = signed_in(web)
    reader = client.stream()
    assert reader.wait_for(lambda r: r.last_id is not None)
    old_id = reader.last_id
    reader.stop()
    other = start_test_web(node)
    try:
        again = WebClient(other.base, other.web.access.token).stream(last_event_id=old_id)
        assert again.wait_for(lambda r: bool(r.events))
        snap = again.events[0]
        assert (snap.event, snap.data["reloaded"], snap.data["why"]) == (
            "snapshot",
            True,
            "the gateway restarted",
        )
        again.stop()
    finally:
        other.stop()


def test_a_client_that_cannot_keep_up_is_cut_then_reloads_never_skipped(node) -> None:
    server = start_test_web(node, max_lag=50, batch=10)
    try:
        client = signed_in(server)
        slow = client.stream(read=False)
        big = "x" * 4000
        for i in range(3000):
            node.client().call("publish", topic="ext/flood", key="k", data={"i": i, "pad": big})
        slow.resume_reading()
        assert slow.wait_for(lambda r: r.ended, 30)
        assert slow.events[-1].event == "cut"
        # what it did get was contiguous: no event was skipped before the cut
        got = [
            rec["data"]["i"]
            for ev in slow.events
            if ev.event == "batch"
            for rec in ev.data
            if rec.get("topic") == "ext/flood"
        ]
        assert got == list(range(got[0], got[0] + len(got))) if got else True
        assert server.web.gateway.statistics()["clients_cut"] >= 1
        again = client.stream(last_event_id=slow.last_id)
        assert again.wait_for(lambda r: bool(r.events))
        assert again.events[0].event == "snapshot"
        assert again.events[0].data["reloaded"] is True
        assert again.state()["ext/flood"]["k"]["i"] == 2999
        again.stop()
        slow.stop()
    finally:
        server.stop()


def test_each_open_stream_is_a_watcher_in_presence(node, web) -> None:
    client = signed_in(web)
    a, b = client.stream(), client.stream()

    def browsers() -> int:
        return browser_watchers(node.client())

    try:
        assert wait_for(lambda: browsers() == 2, 10)
    finally:
        a.stop()
    assert wait_for(lambda: browsers() == 1, 10)
    b.stop()
    assert wait_for(lambda: browsers() == 0, 10)


def test_a_restarted_node_shows_as_a_reset_in_the_stream(tmp_path: Path) -> None:
    eps = [free_endpoint() for _ in range(3)]
    cfg = NodeConfig(
        *eps,
        data_dir=tmp_path / "data",
        stages=STAGES,
        networks=(),
        heartbeat_interval=0.1,
        stage_kinds=TEST_STAGE_KINDS,
    )
    node = Node(cfg).start()
    server = start_test_web(node)
    try:
        reader = signed_in(server).stream()
        node.client().call("publish", topic="ext/n", key="k", data={"v": 1})
        assert reader.wait_for(lambda r: "ext/n" in r.state())
        node.stop()
        node = Node(cfg).start()
        assert reader.wait_for(
            lambda r: any(
                rec.get("t") == "reset" and rec.get("reason") == "epoch"
                for ev in r.events
                if ev.event == "batch"
                for rec in ev.data
            ),
            20,
        )
        assert reader.wait_for(lambda r: "ext/n" not in r.state())  # the new epoch has none
        reader.stop()
    finally:
        server.stop()
        node.stop()


def test_reading_the_gateways_statistics_while_events_flow_never_deadlocks(node, web) -> None:
    """statistics() once took the gateway's lock, then the subscriber's: the subscriber's
    thread takes them the other way round while it delivers events."""
    import threading  # noqa: PLC0415

    done = threading.Event()
    reads = [0]

    def read() -> None:
        while not done.is_set():
            web.web.gateway.statistics()
            reads[0] += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            node.bridge.publish("ext/busy", f"k{i % 7}", {"i": i})
        assert wait_for(lambda: web.web.gateway.topic("ext/busy").get("k6") is not None, 20)
    finally:
        done.set()
        reader.join(10)
    assert not reader.is_alive()
    assert reads[0] > 0
