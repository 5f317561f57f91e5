"""A node stopped (SIGSTOP) for longer than its watchers' leases keeps them on resume.

The node runs as `pipecast start` in a subprocess. A remote watcher with a
2 s lease heartbeats every 0.5 s; the node is stopped for 5 s and continued.
Heartbeats sent meanwhile wait in the sockets; the watcher must never have
left presence.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

from pipecast.testing import NodeProcess, wait_for
from pipecast.transport import ControlClient, PipecastError, Subscriber, Update

TOPIC = "stage/x"
WATCHED = f"presence/{TOPIC}"


def test_a_stalled_node_does_not_expire_watchers_that_kept_heartbeating(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data", "--config", str(_no_stages(tmp_path)))
    done = threading.Event()
    leaves: list[Update] = []
    sub = Subscriber(
        node.status,
        node.sync,
        [WATCHED],
        security=node.owner,
        on_event=lambda ev: leaves.append(ev) if isinstance(ev, Update) and ev.data is None else 0,
    )
    client = node.client(1.0)

    def heartbeat() -> None:
        while not done.wait(0.5):  # a beat every half second, as `pipecast watch` does
            # the node stopped: this beat waits in the socket, or is lost
            with contextlib.suppress(PipecastError):
                client.call("presence.heartbeat", watcher="w1")

    try:
        client.call("presence.join", watcher="w1", topic=TOPIC, ttl=2.0)
        with sub:
            sub.wait_synced(10)
            assert sub.wait_for(lambda s: s.topic(WATCHED).get("w1") is not None, 5)
            thread = threading.Thread(target=heartbeat)
            thread.start()
            try:
                node.proc.send_signal(signal.SIGSTOP)
                threading.Event().wait(5.0)  # the stall itself: a duration, not a wait for news
                node.proc.send_signal(signal.SIGCONT)
                # the node speaks again, with the watcher still there
                assert wait_for(lambda: _pong(client), 10)
                assert wait_for(
                    lambda: client.call("presence.list", topic=TOPIC)[TOPIC]["count"] == 1, 5
                )
                assert wait_for(lambda: sub.statistics().received > 0, 5)
            finally:
                done.set()
                thread.join(10)
        assert leaves == [], leaves
        stats = client.call("stats")["presence"]
        assert stats["stalls_forgiven"] >= 1
        assert stats["expired"] == 0
    finally:
        node.proc.send_signal(signal.SIGCONT)
        node.close()


def _pong(client: ControlClient) -> bool:
    try:
        return bool(client.call("ping")["pong"])
    except PipecastError:
        return False


def _no_stages(tmp_path: Path) -> Path:
    config = tmp_path / "node.toml"
    config.write_text("stages = []\nnetworks = []\n")
    return config
