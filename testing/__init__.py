"""pipecast.testing: helpers and pytest fixtures for scripted harnesses.

Registered as a pytest plugin (entry point `pytest11`), so any test suite in
an environment with pipecast installed can use the fixtures:

- `pipecast_node`: a running node on free loopback ports with a fresh data
  directory, stopped after the test;
- `pipecast_client`: a `ControlClient` for that node;
- `pipecast_watch`: a factory for `Collector`s following topic prefixes.

`wait_for(predicate, timeout)` waits on a condition, never a fixed sleep;
`NodeProcess` runs a node in a subprocess and the CLI against it;
`ClusterNodes` runs several sharing one library store;
`ChecksumStage` is a small real stage (kind `checksum` in `start_test_node`);
`RawClient` sends raw frames to a node's sockets, as an attacker would;
`start_test_web`, `WebClient` and `SseReader` drive the web gateway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipecast.actors import STAGE_KINDS, MediaPolicy, Node, NodeConfig, StageConfig
from pipecast.transport import ControlClient, Subscriber, Update

from ._postgres import PostgresServer, find_postgres
from ._raw import RawClient
from ._stages import ChecksumStage

__all__ = [
    "ALL_STAGES",
    "PIPECAST",
    "TEST_STAGE_KINDS",
    "ChecksumStage",
    "ClusterNodes",
    "Collector",
    "NodeProcess",
    "PostgresServer",
    "RawClient",
    "SseEvent",
    "SseReader",
    "WebClient",
    "apply_record",
    "browser_watchers",
    "find_postgres",
    "free_endpoint",
    "start_test_node",
    "start_test_web",
    "wait_for",
]

LOOPBACK = "tcp://127.0.0.1:*"
# the node's stage kinds and the harnesses' own
TEST_STAGE_KINDS = {**STAGE_KINDS, "checksum": ChecksumStage}


def free_endpoint() -> str:
    """A loopback tcp endpoint below the kernel's ephemeral port range, free a moment ago.

    No port there is handed out by chance (not to a `tcp://127.0.0.1:*` bind, not
    to an outgoing connection), so a node may stop and bind the same endpoint
    again while other processes come and go; only a process that names the
    port could take it.
    """
    import random  # noqa: PLC0415
    import socket  # noqa: PLC0415

    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    pick = random.SystemRandom()
    for _ in range(500):
        port = pick.randrange(max(1024, low - 12000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return f"tcp://127.0.0.1:{port}"
    raise RuntimeError(f"no free loopback port below {low}")


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; returns whether it held.

    For conditions with no event to wait on (another process's state). Prefer
    `Collector.wait_for`, which wakes on every update.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def start_test_node(
    data_dir: Path, stages: tuple[StageConfig, ...] | None = None, **config: Any
) -> Node:
    """A node on free loopback ports (heartbeat 0.1 s unless given), which knows
    the stage kind `checksum` besides the node's own, and whose library root is the
    data directory's parent (the test's folder) unless its `media` names roots."""
    config.setdefault("heartbeat_interval", 0.1)
    config.setdefault("stage_kinds", TEST_STAGE_KINDS)
    media = config.get("media", MediaPolicy())
    if not media.roots:
        config["media"] = replace(media, roots=(str(data_dir.parent.absolute()),))
    if stages is not None:
        config["stages"] = stages
    cfg = NodeConfig(LOOPBACK, LOOPBACK, LOOPBACK, data_dir=data_dir, **config)
    return Node(cfg).start()


class Collector:
    """A `Subscriber` that keeps every event, with waits that wake on updates."""

    def __init__(self, node: Node, prefixes: tuple[str, ...] = ()) -> None:
        assert node.bridge is not None
        self.events: list[Any] = []
        # Lock order: the subscriber's lock, then this one (never the reverse):
        # events arrive under the subscriber's lock, and waits hold it too.
        self._lock = threading.Lock()
        self.subscriber = Subscriber(
            node.bridge.status_endpoint,
            node.bridge.sync_endpoint,
            prefixes,
            on_event=self._on_event,
            security=node.owner,
        )

    def _on_event(self, ev: Any) -> None:
        with self._lock:
            self.events.append(ev)

    def start(self, timeout: float = 5.0) -> Collector:
        self.subscriber.start()
        self.subscriber.wait_synced(timeout)
        return self

    def stop(self) -> None:
        self.subscriber.stop()

    def updates(self, topic: str | None = None, key: str | None = None) -> list[Update]:
        """The updates seen so far, of one topic and one key when given."""
        with self._lock:
            return [
                e
                for e in self.events
                if isinstance(e, Update)
                and (topic is None or e.topic == topic)
                and (key is None or e.key == key)
            ]

    def latest(self, topic: str, key: str = "state") -> Any:
        return self.subscriber.topic(topic).get(key)

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate(self)` holds; re-checked after every batch of events."""
        return self.subscriber.wait_for(lambda _: predicate(self), timeout)


@pytest.fixture
def pipecast_node(tmp_path: Path) -> Iterator[Node]:
    node = start_test_node(tmp_path / "data")
    yield node
    node.stop()


@pytest.fixture
def pipecast_client(pipecast_node: Node) -> ControlClient:
    return pipecast_node.client(5.0)


@pytest.fixture
def pipecast_watch(pipecast_node: Node) -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(*prefixes: str) -> Collector:
        c = Collector(pipecast_node, prefixes).start()
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


from ._cluster import ALL_STAGES, ClusterNodes  # noqa: E402 - it uses NodeProcess
from ._process import PIPECAST, NodeProcess  # noqa: E402 - it uses the helpers above
from ._web import (  # noqa: E402
    SseEvent,
    SseReader,
    WebClient,
    apply_record,
    browser_watchers,
    start_test_web,
)
