"""Presence on a real node: P1, P3, P4, P5 and P8 of docs/bus_guarantees.md."""

from __future__ import annotations

import random
import threading

import pytest

from pipecast.testing import Collector, start_test_node, wait_for
from pipecast.transport import Ended, RemoteError, Update

TOPIC = "invocation/demo"
PTOPIC = f"presence/{TOPIC}"


@pytest.fixture
def node(tmp_path):
    n = start_test_node(tmp_path / "data")
    yield n
    n.stop()


@pytest.fixture
def client(node):
    return node.client()


@pytest.fixture
def watch(node):
    c = Collector(node, ("presence/",)).start()
    yield c
    c.stop()


def key_history(c: Collector, key: str) -> list[object]:
    return [u.data for u in c.updates(PTOPIC) if u.key == key]


def test_p1_join_update_and_leave_are_exact_and_an_update_is_not_a_leave(node, client, watch):
    r = client.call("presence.join", watcher="w1", topic=TOPIC, meta={"display": "grid:2x2"})
    assert r["viewers"] == 1
    assert node.presence.count(TOPIC) == 1
    assert watch.wait_for(lambda c: c.latest(PTOPIC, "w1") is not None)
    client.call("presence.join", watcher="w1", topic=TOPIC, meta={"display": "single:0:1"})
    assert watch.wait_for(lambda c: (c.latest(PTOPIC, "w1") or {}).get("display") == "single:0:1")
    assert None not in key_history(watch, "w1")  # no visible leave gap
    assert node.presence.count(TOPIC) == 1  # double join is an update, not a second watcher
    assert client.call("presence.leave", watcher="w1") == {"left": True}
    assert watch.wait_for(lambda c: "w1" not in c.subscriber.topic(PTOPIC))
    assert node.presence.count(TOPIC) == 0
    listing = client.call("presence.list", topic=TOPIC)
    assert listing[TOPIC]["count"] == 0


def test_p3_a_silent_remote_watcher_leaves_when_its_ttl_runs_out(node, client, watch):
    client.call("presence.join", watcher="ghost", topic=TOPIC, meta={}, ttl=0.3)
    assert watch.wait_for(lambda c: c.latest(PTOPIC, "ghost") is not None)
    assert watch.wait_for(lambda c: "ghost" not in c.subscriber.topic(PTOPIC), 3)
    assert client.call("presence.heartbeat", watcher="ghost") == {"known": False}


def test_heartbeats_keep_a_remote_watcher_present(node, client, watch):
    client.call("presence.join", watcher="alive", topic=TOPIC, meta={}, ttl=0.5)
    for _ in range(6):
        assert client.call("presence.heartbeat", watcher="alive") == {"known": True}
        assert not wait_for(lambda: node.presence.count(TOPIC) == 0, 0.2)
    assert node.presence.count(TOPIC) == 1


def test_p5_a_graceful_stop_publishes_every_leave_before_the_epoch_ends(tmp_path):
    n = start_test_node(tmp_path / "data")
    c = Collector(n, ("presence/",)).start()
    try:
        n.client().call("presence.join", watcher="w", topic=TOPIC, meta={}, ttl=60)
        assert c.wait_for(lambda c: c.latest(PTOPIC, "w") is not None)
        n.stop()
        assert c.wait_for(lambda c: any(isinstance(e, Ended) for e in c.events))
        events = c.events
        leave = next(
            i
            for i, e in enumerate(events)
            if isinstance(e, Update) and e.key == "w" and e.data is None
        )
        ended = next(i for i, e in enumerate(events) if isinstance(e, Ended))
        assert leave < ended
    finally:
        c.stop()
        n.stop()


def test_p8_a_reconnect_storm_costs_at_most_one_update_per_watcher(node, client, watch):
    k = 60
    for i in range(k):
        client.call("presence.join", watcher=f"w{i}", topic=TOPIC, meta={"n": i}, ttl=30)
    assert watch.wait_for(lambda c: len(c.subscriber.topic(PTOPIC)) == k)
    before = len(watch.updates(PTOPIC))
    for i in range(k):  # everyone drops and comes back at once
        client.call("presence.leave", watcher=f"w{i}")
        client.call("presence.join", watcher=f"w{i}", topic=TOPIC, meta={"n": i}, ttl=30)
    assert watch.wait_for(lambda c: len(c.subscriber.topic(PTOPIC)) == k)
    assert node.presence.count(TOPIC) == k
    assert len(watch.updates(PTOPIC)) - before <= 2 * k  # never O(k^2); usually far fewer


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("presence.join", {"watcher": "", "topic": TOPIC}),
        ("presence.join", {"watcher": "w", "topic": ""}),
        ("presence.join", {"watcher": "w", "topic": TOPIC, "meta": [1]}),
        ("presence.join", {"watcher": "w", "topic": TOPIC, "ttl": -1}),
        ("presence.heartbeat", {}),
        ("presence.list", {"topic": 3}),
        ("presence.teleport", {"watcher": "w"}),
    ],
)
def test_bad_presence_requests_get_typed_errors_and_change_nothing(node, client, op, args):
    with pytest.raises(RemoteError) as info:
        client.call(op, **args)
    assert info.value.wire_type in ("bad_request", "unknown_op")
    assert client.call("presence.list") == {}


def test_p4_a_dashboard_joining_during_heavy_churn_ends_with_exactly_the_node_presence(node):
    stop = threading.Event()
    c = node.client()

    def churn() -> None:
        rng = random.Random(7)
        i = 0
        while not stop.is_set():
            w = f"w{rng.randrange(40)}"
            if rng.random() < 0.5:
                c.call("presence.join", watcher=w, topic=TOPIC, meta={"i": i}, ttl=60)
            else:
                c.call("presence.leave", watcher=w)
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        assert wait_for(lambda: node.presence.count(TOPIC) > 5, 10)
        dash = Collector(node, ("presence/",)).start()  # joins mid-churn
        try:
            assert wait_for(lambda: len(dash.updates(PTOPIC)) > 50, 10)
        finally:
            stop.set()
            t.join()
        expected = c.call("presence.list", topic=TOPIC)[TOPIC]["watchers"]
        assert dash.wait_for(lambda d: d.subscriber.topic(PTOPIC) == expected, 5)
        dash.stop()
    finally:
        stop.set()
        t.join()


def test_p3_at_the_defaults_a_vanished_remote_watcher_is_gone_within_three_seconds(node, client):
    client.call("presence.join", watcher="vanisher", topic=TOPIC)  # default ttl
    client.call("presence.heartbeat", watcher="vanisher")
    # ... and then nothing more from it
    assert wait_for(lambda: node.presence.count(TOPIC) == 0, 3.0)
