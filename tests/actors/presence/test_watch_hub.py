"""The watch hub on a real node: views, throttling, failures, presence of local watchers."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.actors import StatisticsRequest, WatchHub
from pipecast.testing import Collector, start_test_node, wait_for
from pipecast.transport import BadRequest, Grid, InvocationWatch, StageView, Throttle

TOPIC = "invocation/net"


@pytest.fixture
def node(tmp_path):
    n = start_test_node(tmp_path / "data")
    yield n
    n.stop()


class Screen:
    """A watcher's owner: records what it was shown."""

    def __init__(self) -> None:
        self.shown: list[object] = []
        self.skipped = 0
        self.cond = threading.Condition()

    def __call__(self, watcher: str, shown: object, skipped: int) -> None:
        with self.cond:
            self.shown.append(shown)
            self.skipped = skipped
            self.cond.notify_all()

    def wait(self, predicate, timeout=5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)


def inv(run, seq, state="completed"):
    return {"id": f"{run}-{seq}", "run": run, "sequence": seq, "state": state}


def test_a_watcher_joining_mid_run_sees_the_current_run_from_the_hub_replica(node):
    for seq in range(5):
        node.bridge.publish(TOPIC, f"r1-{seq}", inv("r1", seq))
    screen = Screen()
    node.watchers.add("w1", TOPIC, InvocationWatch(Grid(1, 3)), screen)

    def seqs(s):
        return [c and c["sequence"] for c in s.shown[-1]] if s.shown else None

    assert screen.wait(lambda s: seqs(s) == [3, 4, 2])
    node.bridge.publish(TOPIC, "r1-5", inv("r1", 5))
    assert screen.wait(lambda s: seqs(s) == [3, 4, 5])


def test_local_watchers_are_in_presence_and_leave_when_removed(node):
    c = Collector(node, ("presence/",)).start()
    try:
        node.watchers.add("local-1", "stage/checksum", StageView(), lambda *a: None)
        assert wait_for(lambda: node.presence.count("stage/checksum") == 1, 5)
        assert c.wait_for(
            lambda c: (c.latest("presence/stage/checksum", "local-1") or {}).get("kind") == "local"
        )
        node.watchers.remove("local-1")
        assert wait_for(lambda: node.presence.count("stage/checksum") == 0, 5)
    finally:
        c.stop()


def test_a_watcher_that_raises_is_removed_and_counted_and_the_others_go_on(node):
    good = Screen()

    def bad(*args):
        raise RuntimeError("broken display")

    node.watchers.add("bad", TOPIC, InvocationWatch(Grid(1, 1)), bad)
    node.watchers.add("good", TOPIC, InvocationWatch(Grid(1, 1)), good)
    assert wait_for(lambda: node.presence.count(TOPIC) == 1, 5)  # bad left at once
    node.bridge.publish(TOPIC, "r1-0", inv("r1", 0))
    # (presence may count 1 before "good" has even been shown its first view)
    assert good.wait(lambda s: bool(s.shown) and s.shown[-1] == [inv("r1", 0)])


def test_throttled_watchers_get_the_latest_state_with_a_skipped_count(node):
    screen = Screen()
    node.watchers.add("slow", "stage/x", StageView(), screen, max_per_second=5)
    for i in range(50):
        node.bridge.publish("stage/x", "state", {"status": "running", "progress": i / 50})
    assert screen.wait(lambda s: bool(s.shown) and (s.shown[-1] or {}).get("progress") == 49 / 50)
    assert len(screen.shown) < 20
    assert screen.skipped > 0


def test_lifecycle_changes_are_never_delayed_by_the_throttle(node):
    screen = Screen()
    node.watchers.add("w", "stage/x", StageView(), screen, max_per_second=0.01)
    node.bridge.publish("stage/x", "state", {"status": "running", "progress": 0.1})
    node.bridge.publish("stage/x", "state", {"status": "failed", "progress": 0.1})
    assert screen.wait(lambda s: bool(s.shown) and (s.shown[-1] or {}).get("status") == "failed", 3)


def test_bad_throttle_settings_are_refused_in_the_caller(node):
    with pytest.raises(BadRequest):
        node.watchers.add("w", TOPIC, StageView(), lambda *a: None, max_per_second=0)


@given(st.lists(st.tuples(st.floats(0, 0.5), st.booleans()), max_size=80), st.floats(1, 50))
def test_throttle_tells_at_most_the_rate_and_accounts_for_every_change(steps, rate):
    t = Throttle(rate)
    now, told, lifecycle_told = 0.0, 0, 0
    for dt, lifecycle in steps:
        now += dt
        if t.due(now):
            told += 1
        if t.offer(now, lifecycle=lifecycle):
            told += 1
            lifecycle_told += lifecycle
    now += 2 / rate  # past the interval, whatever the float rounding
    told += t.due(now)
    assert not t.pending
    assert told + t.skipped == len(steps) + 0  # every change told, or folded into one told


def test_watchers_with_identical_views_share_one_and_each_keeps_its_own_throttle(node):
    fast, slow = Screen(), Screen()
    node.watchers.add("fast", TOPIC, InvocationWatch(Grid(2, 2)), fast)
    node.watchers.add("slow", TOPIC, InvocationWatch(Grid(2, 2)), slow, max_per_second=2)
    node.watchers.add("other", TOPIC, InvocationWatch(Grid(1, 1)), lambda *a: None)
    for seq in range(6):
        node.bridge.publish(TOPIC, f"r-{seq}", inv("r", seq))

    def seqs(s):
        return [c and c["sequence"] for c in s.shown[-1]] if s.shown else None

    assert fast.wait(lambda s: seqs(s) == [4, 5, 2, 3])
    assert slow.wait(lambda s: seqs(s) == [4, 5, 2, 3])
    assert len(slow.shown) < len(fast.shown)
    done = threading.Event()
    stats: dict = {}

    def reply(s):
        stats.update(s)
        done.set()

    node.watchers.ref.tell(StatisticsRequest(reply))
    assert done.wait(5)
    assert (stats["watchers"], stats["views"]) == (3, 2)


class _Crash:
    """Told to the hub by the test below, whose patched handler raises on it."""


def test_a_hub_that_dies_is_restarted_and_hosts_its_watchers_again(node, monkeypatch):
    seen: dict[str, list[object]] = {"a": [], "b": []}
    node.watchers.add("a", TOPIC, StageView(), lambda w, shown, _: seen[w].append(shown))
    node.watchers.add("b", TOPIC, StageView(), lambda w, shown, _: seen[w].append(shown))
    assert wait_for(lambda: node.presence.count(TOPIC) == 2, 5)
    actors = Collector(node, ("actor/watch_hub",)).start()
    original = WatchHub.on_receive

    def crashing(self, message):
        if isinstance(message, _Crash):
            raise RuntimeError("hub bug")
        return original(self, message)

    monkeypatch.setattr(WatchHub, "on_receive", crashing)  # a fault we cannot cause for real
    try:
        node.watchers.ref.tell(_Crash())
        # the death is published, and the next incarnation runs
        assert actors.wait_for(
            lambda c: (
                [u.data["status"] for u in c.updates("actor/watch_hub")][-2:]
                == ["restarting", "running"]
            )
        )
        assert "RuntimeError: hub bug" in actors.updates("actor/watch_hub")[-2].data["error"]
        # both watchers are hosted again: in presence, and shown what comes next
        assert wait_for(lambda: node.presence.count(TOPIC) == 2, 5)
        before = {w: len(v) for w, v in seen.items()}
        node.bridge.publish(TOPIC, "state", {"status": "after the restart"})
        assert wait_for(lambda: all(len(seen[w]) > before[w] for w in seen), 5)
    finally:
        actors.stop()
