"""Remote watchers throttled: each key's latest state at most N times a second."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from pipecast.testing import PIPECAST, NodeProcess
from pipecast.transport import Subscriber, Update

RATE = 5.0


def test_a_throttled_subscriber_is_told_the_latest_state_within_its_rate(bridge):
    told: list[tuple[float, Update]] = []
    lock = threading.Lock()

    def on_event(ev: object) -> None:
        if isinstance(ev, Update):
            with lock:
                told.append((time.monotonic(), ev))

    with Subscriber(
        bridge.status_endpoint, bridge.sync_endpoint, ["t"], on_event=on_event, max_rate=RATE
    ) as sub:
        sub.wait_synced(5)
        for i in range(300):
            bridge.publish("t", "k", {"i": i})
        bridge.publish("t", "other", {"i": 0})
        assert sub.wait_for(lambda s: any(u.data == {"i": 299} for _, u in told), 10)
        assert sub.topic("t") == {"k": {"i": 299}, "other": {"i": 0}}  # the replica is exact
        stats = sub.statistics()
    with lock:
        ks = [(t, u) for t, u in told if u.key == "k"]
    assert ks[-1][1].data == {"i": 299}  # the latest value was told
    assert [u.seq for _, u in ks] == sorted(u.seq for _, u in ks)
    assert len(ks) + stats.skipped == 300  # every update of k told or counted skipped
    assert stats.skipped > 0
    # at most RATE a second (the exact spacing is the gate's property test; here the
    # callback's clock lags the gate's by a scheduling delay, hence the slack)
    span = ks[-1][0] - ks[0][0]
    assert len(ks) <= 2 + RATE * (span + 0.1), (len(ks), span)


def test_an_unthrottled_subscriber_is_told_every_update(bridge):
    seen: list[Update] = []
    with Subscriber(
        bridge.status_endpoint,
        bridge.sync_endpoint,
        ["t"],
        on_event=lambda ev: seen.append(ev) if isinstance(ev, Update) else None,
    ) as sub:
        sub.wait_synced(5)
        for i in range(100):
            bridge.publish("t", "k", {"i": i})
        assert sub.wait_for(lambda s: len(seen) == 100, 10)
        assert sub.statistics().skipped == 0


def test_watch_max_rate_prints_the_latest_with_the_count_it_skipped(tmp_path):
    node = NodeProcess(tmp_path / "data")
    try:
        watcher = subprocess.Popen(
            [
                *(PIPECAST, "watch", *node.args, "--data-dir", str(node.data_dir), "ext/"),
                *("--json", "--max-rate", "2", "--exit-on-end"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdout is not None
        assert json.loads(watcher.stdout.readline())["event"] == "reset"
        client = node.client()
        for i in range(200):
            client.call("publish", topic="ext/w", key="k", data={"i": i})
        client.call("shutdown")
        out, _ = watcher.communicate(timeout=30)
        assert watcher.returncode == 0
        records = [json.loads(line) for line in out.splitlines()]
        updates = [r for r in records if r["event"] == "update"]
        assert updates[-1]["data"] == {"i": 199}  # the end flushed the latest
        assert len(updates) < 200
        assert updates[-1]["skipped"] == 200 - len(updates)
    finally:
        node.close()
