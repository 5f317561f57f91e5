"""Relays as real processes: node -> relay -> relay -> subscribers, through kills and restarts."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from pipecast.testing import (
    PIPECAST,
    NodeProcess,
    WebClient,
    browser_watchers,
    free_endpoint,
    wait_for,
)
from pipecast.transport import (
    ClientSecurity,
    ControlClient,
    Keypair,
    Recovered,
    RemoteError,
    Role,
    Subscriber,
    allow_list,
    ensure_node_keys,
    node_public_key,
    write_keypair,
)

UP = re.compile(r"pipecast relay up: status (\S+) sync (\S+)")


class RelayProcess:
    """`pipecast relay` in a subprocess, on fixed endpoints so it can come back on them."""

    def __init__(
        self, data_dir: Path, upstream: str, key: Path, endpoints: tuple[str, str, str]
    ) -> None:
        self.data_dir, self.upstream, self.key, self.endpoints = data_dir, upstream, key, endpoints
        self.log = data_dir.parent / f"{data_dir.name}-relay.log"
        self.starts = 0  # "relay up" lines seen: each start waits for one more
        self.start()

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [
                    PIPECAST,
                    "relay",
                    "--upstream",
                    self.upstream,
                    "--key",
                    str(self.key),
                    "--status",
                    self.endpoints[0],
                    "--sync",
                    self.endpoints[1],
                    "--control",
                    self.endpoints[2],
                    "--data-dir",
                    str(self.data_dir),
                    "--heartbeat",
                    "0.2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        assert wait_for(lambda: len(UP.findall(self.log.read_text())) >= self.starts + 1, 20), (
            self.log.read_text()
        )
        self.starts += 1

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)

    @property
    def public(self) -> str:
        return node_public_key(self.data_dir)


def client_key(folder: Path, name: str, allowed_by: Path) -> Path:
    keys = Keypair.new()
    ensure_node_keys(allowed_by)
    allow_list(allowed_by).allow(name, keys.public, Role.WATCH)
    return write_keypair(folder, name, keys)


@pytest.fixture
def chain(tmp_path: Path):
    node_eps = [free_endpoint() for _ in range(3)]
    node = NodeProcess(
        tmp_path / "node" / "data",
        *("--status", node_eps[0], "--sync", node_eps[1], "--control", node_eps[2]),
    )
    keys = tmp_path / "keys"
    keys.mkdir()
    r1_dir, r2_dir = tmp_path / "r1", tmp_path / "r2"
    r1 = RelayProcess(
        r1_dir,
        f"{node.status},{node.sync},{node_public_key(node.data_dir)}",
        client_key(keys, "relay1", node.data_dir),
        (free_endpoint(), free_endpoint(), free_endpoint()),
    )
    r2 = RelayProcess(
        r2_dir,
        f"{r1.endpoints[0]},{r1.endpoints[1]},{r1.public}",
        client_key(keys, "relay2", r1_dir),
        (free_endpoint(), free_endpoint(), free_endpoint()),
    )
    yield node, r1, r2, node_eps
    for p in (r2, r1):
        p.close()
    node.close()


def node_state(node: NodeProcess) -> dict:
    return node.client().call("status", prefix="ext/")["topics"]


def follow(relay: RelayProcess, events: list) -> Subscriber:
    sub = Subscriber(
        *relay.endpoints[:2],
        (),
        on_event=events.append,
        security=ClientSecurity.owner(relay.data_dir),
    )
    sub.start()
    sub.wait_synced(10)
    return sub


def ext(sub: Subscriber) -> dict:
    return {t: kv for t, kv in sub.state().items() if t.startswith("ext/") and kv}


def test_a_killed_middle_relay_comes_back_and_every_subscriber_ends_exact(chain) -> None:
    node, r1, r2, _ = chain
    client = node.client()
    seen1, seen2 = [], []
    on_r1, on_r2 = follow(r1, seen1), follow(r2, seen2)
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", r1.endpoints[0]).strip("-")
    try:
        for i in range(50):
            client.call("publish", topic=f"ext/t{i % 5}", key=f"k{i % 3}", data={"i": i})
        r1.kill()  # mid-stream: the last relay's upstream goes silent
        assert on_r2.wait_for(
            lambda s: (s.topic(f"relay/{label}").get("upstream") or {}).get("status") == "stale",
            10,
        )
        for i in range(50, 100):
            client.call("publish", topic=f"ext/t{i % 5}", key=f"k{i % 3}", data={"i": i})
        r1.start()
        want = node_state(node)
        for sub in (on_r1, on_r2):
            assert sub.wait_for(lambda s: ext(s) == want, 20), (ext(sub), want)
        assert on_r2.wait_for(
            lambda s: (s.topic(f"relay/{label}").get("upstream") or {}).get("status") == "live", 10
        )
        assert any(isinstance(e, Recovered) for e in seen1)  # r1's own epoch changed
    finally:
        on_r1.stop()
        on_r2.stop()


def test_a_restarted_node_behind_two_relays_reaches_every_subscriber_exactly(
    chain, tmp_path
) -> None:
    node, _r1, r2, eps = chain
    seen: list = []
    sub = follow(r2, seen)
    try:
        node.client().call("publish", topic="ext/before", key="k", data={"v": 1})
        assert sub.wait_for(lambda s: "ext/before" in ext(s), 10)
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)
        again = NodeProcess(
            node.data_dir, *("--status", eps[0], "--sync", eps[1], "--control", eps[2])
        )
        try:
            again.client().call("publish", topic="ext/after", key="k", data={"v": 2})
            want = node_state(again)
            assert "ext/before" not in want  # a new epoch starts empty
            assert sub.wait_for(lambda s: ext(s) == want, 20), ext(sub)
        finally:
            again.close()
    finally:
        sub.stop()


def test_a_relay_refuses_a_subscriber_whose_key_it_does_not_allow(chain, tmp_path) -> None:
    from pipecast.transport import KeyRefused  # noqa: PLC0415

    _node, _r1, r2, _ = chain
    stranger = ClientSecurity(Keypair.new(), r2.public)
    sub = Subscriber(*r2.endpoints[:2], ("ext/",), security=stranger)
    sub.start()
    try:
        with pytest.raises(KeyRefused):
            sub.wait_synced(10)
        assert sub.state() == {}
    finally:
        sub.stop()


# -- control through a relay: ping, status, presence -----------------------------------


def relay_cli(relay: RelayProcess, *args: str, timeout: float = 30) -> list[str]:
    """`pipecast COMMAND` against a relay, as its owner."""
    endpoints = ("--status", relay.endpoints[0], "--sync", relay.endpoints[1])
    return [
        PIPECAST,
        args[0],
        *endpoints,
        *("--control", relay.endpoints[2], "--data-dir", str(relay.data_dir)),
        *args[1:],
    ]


def relay_client(relay: RelayProcess, security: ClientSecurity | None = None) -> ControlClient:
    return ControlClient(relay.endpoints[2], 5.0, security or ClientSecurity.owner(relay.data_dir))


def node_watchers(node: NodeProcess, topic: str) -> dict:
    return (node.client().call("presence.list", topic=topic).get(topic) or {}).get("watchers", {})


def test_a_watch_through_two_relays_is_counted_in_the_nodes_presence_until_it_leaves(
    chain,
) -> None:
    node, r1, r2, _ = chain
    watch = subprocess.Popen(
        relay_cli(r2, "watch", "ext/", "--json"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: len(node_watchers(node, "ext/")) == 1, 20)
        (watcher,) = node_watchers(node, "ext/")
        assert watcher == f"cli-{socket.gethostname()}-{watch.pid}"
        # the node's presence comes back down the chain: the relay answers presence itself
        listed = json.loads(
            subprocess.run(
                relay_cli(r2, "presence", "ext/", "--json"),
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
        )
        assert list(listed["ext/"]["watchers"]) == [watcher]
        watch.terminate()  # a SIGTERM'd watch leaves on its way out
        assert watch.wait(10) == 143
        assert wait_for(lambda: node_watchers(node, "ext/") == {}, 10)
    finally:
        if watch.poll() is None:
            watch.kill()
        watch.wait(10)
    r1_client = relay_client(r1)
    assert r1_client.call("ping")["relay"] is True


def test_a_relays_watcher_belongs_to_the_key_that_joined_it(chain, tmp_path) -> None:
    node, _r1, r2, _ = chain
    owner = relay_client(r2)
    other_key = client_key(tmp_path / "keys", "other", r2.data_dir)
    other = relay_client(r2, ClientSecurity.from_key_file(other_key, r2.public))
    assert wait_for(lambda: _joined(owner), 20)  # once the relay knows where the node is
    assert "w1" in node_watchers(node, "ext/")
    for op in ("presence.heartbeat", "presence.leave"):
        with pytest.raises(RemoteError) as refused:
            other.call(op, watcher="w1")
        assert refused.value.wire_type == "unauthorized"
    assert "w1" in node_watchers(node, "ext/")  # nothing changed
    assert owner.call("presence.heartbeat", watcher="w1") == {"known": True}
    assert owner.call("presence.leave", watcher="w1") == {"left": True}
    assert "w1" not in node_watchers(node, "ext/")
    assert owner.call("presence.heartbeat", watcher="w1") == {"known": False}


def _joined(client: ControlClient) -> bool:
    try:
        client.call("presence.join", watcher="w1", topic="ext/", meta={"m": 1}, ttl=30)
    except RemoteError:
        return False  # the relay does not know the node's control endpoint yet
    return True


def test_control_stays_with_the_node_and_the_relay_says_where(chain) -> None:
    node, _r1, r2, _ = chain
    client = relay_client(r2)
    with pytest.raises(RemoteError) as refused:
        client.call("pause", stage="analyze")
    assert refused.value.wire_type == "unknown_op"

    def says_where() -> bool:
        out = subprocess.run(
            relay_cli(r2, "status"), capture_output=True, text=True, timeout=30, check=False
        )
        return f"control stays with the node at {node.control}" in out.stdout

    assert wait_for(says_where, 20)
    with pytest.raises(RemoteError, match=re.escape(node.control)):
        client.call("enqueue", paths=["/x.mkv"])


def test_a_web_gateway_on_a_relay_keeps_its_pages_counted_at_the_node(chain) -> None:
    from pipecast.web import GatewayConfig, gateway_server, new_token, parse_http  # noqa: PLC0415

    node, _r1, r2, _ = chain
    config = GatewayConfig(
        r2.endpoints[0], r2.endpoints[1], r2.endpoints[2], ClientSecurity.owner(r2.data_dir)
    )
    server = gateway_server(
        config, parse_http("127.0.0.1:0"), token=new_token(), images=None, presence_ttl=1.5
    )
    server.start_in_thread()
    page = None

    def browsers() -> int:
        return browser_watchers(node.client())

    try:
        page = WebClient(server.base, server.web.access.token).stream()
        assert wait_for(lambda: browsers() == 1, 20)
        # kept alive by the gateway's many-watcher heartbeats, forwarded through two relays:
        # still counted after several leases (1.5 s each) have come and gone
        assert not wait_for(lambda: browsers() != 1, 5.0)
        page.stop()
        page = None
        assert wait_for(lambda: browsers() == 0, 10)
    finally:
        if page is not None:
            page.stop()
        server.stop()
