"""The same watcher classes outside the hub: a dedicated actor, and a Subscriber."""

from __future__ import annotations

import threading

import pytest

from pipecast.actors.presence import WatcherActor
from pipecast.testing import Collector, start_test_node, wait_for
from pipecast.transport import Grid, InvocationWatch, Single, Subscriber, ViewFeeder

TOPIC = "invocation/net"


def inv(run, seq, state="completed"):
    return {"id": f"{run}-{seq}", "run": run, "sequence": seq, "state": state}


@pytest.fixture
def node(tmp_path):
    n = start_test_node(tmp_path / "data")
    yield n
    n.stop()


class Box:
    def __init__(self) -> None:
        self.value = None
        self.cond = threading.Condition()

    def __call__(self, shown) -> None:
        with self.cond:
            self.value = shown
            self.cond.notify_all()

    def wait(self, predicate, timeout=5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.value), timeout)


def test_a_subscriber_in_another_process_runs_the_same_views_over_the_wire(node):
    for seq in range(4):
        node.bridge.publish(TOPIC, f"r-{seq}", inv("r", seq))
    box = Box()
    feeder = ViewFeeder(TOPIC, InvocationWatch(Single(offset=1, stride=2)), box)
    with Subscriber(
        node.bridge.status_endpoint,
        node.bridge.sync_endpoint,
        [TOPIC],
        on_event=feeder,
        security=node.owner,
    ) as sub:
        sub.wait_synced(5)
        assert box.wait(lambda v: v is not None and v["sequence"] == 3)
        node.bridge.publish(TOPIC, "r-5", inv("r", 5, "invoking"))
        node.bridge.publish(TOPIC, "r-5", inv("r", 5))
        assert box.wait(lambda v: v["sequence"] == 5 and v["state"] == "completed")


def test_a_dedicated_watcher_actor_is_in_presence_for_exactly_its_life(node):
    box = Box()
    c = Collector(node, ("presence/",)).start()
    ref = WatcherActor.start(
        "solo", TOPIC, InvocationWatch(Grid(1, 2)), box, node.bridge, node.registry
    )
    try:
        assert wait_for(lambda: node.presence.count(TOPIC) == 1, 5)
        node.bridge.publish(TOPIC, "r-0", inv("r", 0))
        assert box.wait(lambda v: v is not None and v[0] is not None)
        ref.stop()
        assert wait_for(lambda: node.presence.count(TOPIC) == 0, 5)
        assert c.wait_for(lambda c: "solo" not in c.subscriber.topic(f"presence/{TOPIC}"))
    finally:
        c.stop()


def test_a_watcher_actor_that_dies_leaves_presence_at_once(node):
    def explode(shown):
        raise RuntimeError("display on fire")

    ref = WatcherActor.start(
        "doomed", TOPIC, InvocationWatch(Grid(1, 1)), explode, node.bridge, node.registry
    )
    assert wait_for(lambda: node.presence.count(TOPIC) == 1, 5)
    node.bridge.publish(TOPIC, "r-0", inv("r", 0))
    assert wait_for(lambda: not ref.is_alive(), 5)
    assert wait_for(lambda: node.presence.count(TOPIC) == 0, 1)
