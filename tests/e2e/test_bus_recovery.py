"""The bus over real ZeroMQ sockets on loopback: joining, recovery, slow readers, shutdown.

Named after the cases of docs/bus_guarantees.md (R1-R9, S1, S3, L8).
"""

from __future__ import annotations

import functools
import threading
import time

import msgpack
import pytest
import zmq

from pipecast.actors import BridgeConfig, start_bridge
from pipecast.transport import (
    Ended,
    HistoryLimits,
    Reason,
    Recovered,
    Reset,
    Subscriber,
    SubscriberHub,
    Update,
)

LOOP = "tcp://127.0.0.1:*"
_Subscriber = Subscriber


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # every case twice: subscribers on threads of their own, and on one hub's thread;
    # a case about one subscriber's own stalled thread runs once (a hub shares it)
    if not any(m.name == "own_thread" for m in metafunc.definition.iter_markers()):
        metafunc.parametrize("subscriber_mode", ["thread", "hub"], indirect=True)


@pytest.fixture(autouse=True)
def subscriber_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    mode = getattr(request, "param", "thread")
    if mode == "thread":
        yield mode
        return
    hub = SubscriberHub().start()
    monkeypatch.setitem(globals(), "Subscriber", functools.partial(_Subscriber, hub=hub))
    try:
        yield mode
    finally:
        hub.stop()


def final_state(bridge, topic):
    """What the node holds for `topic`, read through a fresh snapshot."""
    with Subscriber(bridge.status_endpoint, bridge.sync_endpoint, [topic]) as probe:
        probe.wait_synced(5)
        return probe.topic(topic)


class Recorder:
    """on_event sink that checks ordering as it goes."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.last: dict[str, int] = {}
        self.errors: list[str] = []

    def __call__(self, ev: object) -> None:
        self.events.append(ev)
        if isinstance(ev, Reset):
            for t in ev.state:
                self.last.pop(t, None)
        elif isinstance(ev, Update):
            prev = self.last.get(ev.topic)
            if prev is not None and ev.seq != prev + 1:
                self.errors.append(f"{ev.topic}: {prev} -> {ev.seq}")
            self.last[ev.topic] = ev.seq

    def recovered(self):
        return [e for e in self.events if isinstance(e, Recovered)]


def test_late_joiner_gets_the_current_state(bridge):
    for i in range(50):
        bridge.publish("stage/enc", f"k{i % 5}", {"i": i})
    with Subscriber(bridge.status_endpoint, bridge.sync_endpoint, ["stage/"]) as sub:
        sub.wait_synced(5)
        assert sub.topic("stage/enc") == {f"k{j}": {"i": 45 + j} for j in range(5)}


def test_r1_a_restarted_subscriber_resumes_with_exactly_the_missed_updates(bridge):
    for i in range(10):
        bridge.publish("t", "k", {"i": i})
    sub = Subscriber(bridge.status_endpoint, bridge.sync_endpoint, ["t"]).start()
    sub.wait_synced(5)
    assert sub.wait_for(lambda s: s.topic("t") == {"k": {"i": 9}}, 5)
    cp = sub.checkpoint()
    sub.stop()
    for i in range(10, 15):
        bridge.publish("t", "k", {"i": i})
    bridge.statistics()  # publish is a tell: this returns once all five are sequenced
    rec = Recorder()
    with Subscriber(
        bridge.status_endpoint, bridge.sync_endpoint, ["t"], on_event=rec, resume=cp
    ) as sub2:
        assert sub2.wait_for(lambda s: s.topic("t") == {"k": {"i": 14}}, 5)
        bridge.publish("t", "k", {"i": 15})
        assert sub2.wait_for(lambda s: s.topic("t") == {"k": {"i": 15}}, 5)
    seqs = [e.seq for e in rec.events if isinstance(e, Update)]
    assert seqs == [11, 12, 13, 14, 15, 16]
    assert rec.recovered()[0] == Recovered(Reason.GAP, "t", 5, snapshot=False)
    assert not any(isinstance(e, Reset) for e in rec.events)


def test_r2_a_gap_larger_than_the_history_gives_a_snapshot_and_no_partial_replay():
    handle = start_bridge(
        BridgeConfig(LOOP, LOOP, heartbeat_interval=0.1, history=HistoryLimits(max_updates=10))
    )
    try:
        with Subscriber(handle.status_endpoint, handle.sync_endpoint, ["t"]) as sub:
            sub.wait_synced(5)
            cp = sub.checkpoint()
        for i in range(100):
            handle.publish("t", "k", {"i": i})
        handle.statistics()  # all 100 sequenced before the subscriber comes back
        rec = Recorder()
        with Subscriber(
            handle.status_endpoint, handle.sync_endpoint, ["t"], on_event=rec, resume=cp
        ) as sub:
            assert sub.wait_for(lambda s: s.topic("t") == {"k": {"i": 99}}, 5)
        assert not [e for e in rec.events if isinstance(e, Update)]
        (r,) = rec.recovered()
        assert r.reason is Reason.HISTORY_GONE
        assert r.snapshot
        assert r.replayed == 0
        assert r.skipped == 100
    finally:
        handle.stop()


def test_r6_a_node_restart_is_detected_by_live_and_by_reconnecting_subscribers():
    handle = start_bridge(BridgeConfig(LOOP, LOOP, heartbeat_interval=0.1))
    status, sync = handle.status_endpoint, handle.sync_endpoint
    handle.publish("t", "old", {"x": 1})
    live = Recorder()
    sub = Subscriber(status, sync, ["t"], on_event=live, request_timeout=0.5).start()
    sub.wait_for(lambda s: s.topic("t") == {"old": {"x": 1}}, 5)
    # the SUB side is live once a heartbeat got through (ZeroMQ's slow joiner)
    assert sub.wait_for(lambda s: s.statistics().received > 0, 5)
    cp = sub.checkpoint()
    handle.stop()
    handle2 = start_bridge(BridgeConfig(status, sync, heartbeat_interval=0.1))
    try:
        handle2.publish("t", "new", {"x": 2})
        assert sub.wait_for(lambda s: s.topic("t") == {"new": {"x": 2}}, 10)
        assert sub.replica.epoch == handle2.epoch
        assert any(r.reason is Reason.EPOCH for r in live.recovered())
        assert any(isinstance(e, Ended) for e in live.events)
        again = Recorder()
        with Subscriber(status, sync, ["t"], on_event=again, resume=cp) as sub2:
            assert sub2.wait_for(lambda s: s.topic("t") == {"new": {"x": 2}}, 10)
        assert any(r.reason is Reason.EPOCH for r in again.recovered())
        assert not live.errors
    finally:
        sub.stop()
        handle2.stop()


@pytest.mark.slow
def test_r7_joining_during_a_publish_burst_leaves_no_hole_and_no_duplicate(bridge):
    for it in range(200):
        topic = f"race/{it}"
        go = threading.Event()

        def burst(topic: str = topic, go: threading.Event = go) -> None:
            go.wait(5)
            for i in range(300):
                bridge.publish(topic, f"k{i % 7}", {"i": i})

        t = threading.Thread(target=burst)
        t.start()
        rec = Recorder()
        sub = Subscriber(bridge.status_endpoint, bridge.sync_endpoint, [topic], on_event=rec)
        go.set()
        sub.start()
        t.join()
        expected = {f"k{j}": {"i": max(i for i in range(300) if i % 7 == j)} for j in range(7)}
        try:
            assert sub.wait_for(lambda s, e=expected, tp=topic: s.topic(tp) == e, 10), it
            assert sub.wait_for(lambda s, tp=topic: s.replica.last_seq(tp) == 300, 5)
        finally:
            sub.stop()
        assert not rec.errors, rec.errors


class Shim:
    """A fault-injecting relay between the bridge's PUB and a subscriber (R8, R9).

    `fate(topic, body)` returns how many copies to forward (0 drops, 2 dups) or
    "hold" to keep the message and send it after the next one (a reorder).
    """

    def __init__(self, upstream: str, fate) -> None:
        self.ctx = zmq.Context()
        self.fate = fate
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.linger = 0
        self.sub.subscribe(b"")
        self.sub.connect(upstream)
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.linger = 0
        self.pub.bind(LOOP)
        self.endpoint = self.pub.get(zmq.LAST_ENDPOINT).decode()
        self.stopping = False
        self.forwarded = 0
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self) -> None:
        held = None
        while not self.stopping:
            if not self.sub.poll(50):
                continue
            frames = self.sub.recv_multipart()
            what = self.fate(frames[0], frames[1])
            if what == "hold":
                held = frames
                continue
            for _ in range(what):
                self.pub.send_multipart(frames)
                self.forwarded += 1
            if held is not None:
                self.pub.send_multipart(held)
                held = None
        self.sub.close()
        self.pub.close()
        self.ctx.term()

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)


def seqs_of(body: bytes) -> list[int]:
    """The seqs a status message carries: one update's, or a batch's."""
    message = msgpack.unpackb(body)
    return [u.get("seq", 0) for u in (message if isinstance(message, list) else [message])]


@pytest.mark.parametrize("batch", [False, True], ids=["one_per_message", "batched"])
@pytest.mark.parametrize("fault", ["drop", "dup", "reorder"])
def test_r8_injected_drop_duplicate_and_reorder_are_detected_and_repaired(fault, batch):
    """The fault hits the message carrying seq 5: alone, or the whole batch holding it."""
    hit: list[int] = []

    def fate(topic, body):
        seqs = seqs_of(body)
        if topic == b"t" and 5 in seqs:
            hit.extend(seqs)
            return {"drop": 0, "dup": 2, "reorder": "hold"}[fault]
        return 1

    bridge = start_bridge(BridgeConfig(LOOP, LOOP, heartbeat_interval=0.1, batch=batch))
    shim = Shim(bridge.status_endpoint, fate)
    rec = Recorder()
    try:
        with Subscriber(shim.endpoint, bridge.sync_endpoint, ["t"], on_event=rec) as sub:
            sub.wait_synced(5)
            # the shim's own slow-joiner: wait until a heartbeat made it through
            assert sub.wait_for(lambda s: s.statistics().received > 0, 5)
            for i in range(10):
                bridge.publish("t", "k", {"i": i})
            assert sub.wait_for(lambda s: s.replica.last_seq("t") == 10, 5)
            assert sub.topic("t") == {"k": {"i": 9}}
            if fault == "dup":  # the copy may come a moment after the original was applied
                assert sub.wait_for(lambda s: s.statistics().replica.duplicates >= len(hit), 5)
            stats = sub.statistics().replica
    finally:
        shim.close()
        bridge.stop()
    assert not rec.errors
    assert [e.seq for e in rec.events if isinstance(e, Update)] == list(range(1, 11))
    if fault == "dup":
        assert stats.duplicates == len(hit)  # each update of the repeated message, once
        assert rec.recovered() == []
    if fault == "drop":
        assert stats.gaps == 1
        (r,) = rec.recovered()
        assert (r.reason, r.topic, r.snapshot) == (Reason.GAP, "t", False)
        assert r.replayed >= 1  # the lost one, and whatever followed it meanwhile
    if not batch:
        assert hit == [5]


def test_r9_a_silent_node_is_reported_stale_and_recovers_by_itself(bridge):
    silent = threading.Event()
    shim = Shim(bridge.status_endpoint, lambda t, b: 0 if silent.is_set() else 1)
    rec = Recorder()
    try:
        with Subscriber(
            shim.endpoint, bridge.sync_endpoint, ["t"], on_event=rec, stale_after=0.5
        ) as sub:
            sub.wait_synced(5)
            silent.set()
            assert sub.wait_for(lambda s: s.replica.stale, 5)
            bridge.publish("t", "k", {"during": "silence"})
            silent.clear()
            assert sub.wait_for(lambda s: s.topic("t") == {"k": {"during": "silence"}}, 5)
            assert not sub.replica.stale
    finally:
        shim.close()
    reasons = [r.reason for r in rec.recovered()]
    assert Reason.STALE in reasons


@pytest.mark.own_thread
def test_s1_a_slow_subscriber_overflowing_its_hwm_converges_and_the_publisher_never_blocks():
    handle = start_bridge(
        BridgeConfig(  # one message per update: batching would not overflow a 50-message hwm
            LOOP,
            LOOP,
            heartbeat_interval=0.1,
            sndhwm=50,
            history=HistoryLimits(max_updates=100),
            batch=False,
        )
    )
    release = threading.Event()

    def slow(ev: object) -> None:
        release.wait(10)

    fast = Recorder()
    try:
        slow_sub = Subscriber(
            handle.status_endpoint, handle.sync_endpoint, ["t"], on_event=slow, rcvhwm=50
        ).start()
        fast_sub = Subscriber(
            handle.status_endpoint, handle.sync_endpoint, ["t"], on_event=fast
        ).start()
        fast_sub.wait_synced(5)
        slow_sub.wait_synced(5)
        n = 20_000
        for i in range(n):
            handle.publish("t", f"k{i % 10}", {"i": i})
        # the bridge drains its whole mailbox while the slow reader is stuck
        deadline = time.monotonic() + 30
        while handle.statistics().published < n:
            assert time.monotonic() < deadline, "publisher blocked"
        expected = {f"k{j}": {"i": n - 10 + j} for j in range(10)}
        assert fast_sub.wait_for(lambda s: s.topic("t") == expected, 30)
        release.set()
        assert slow_sub.wait_for(lambda s: s.topic("t") == expected, 30)
        assert slow_sub.wait_for(lambda s: not s.replica.recovering, 10)
        slow_stats = slow_sub.statistics().replica
        assert slow_stats.gaps >= 1
        assert sum(slow_stats.recoveries.values()) >= 1
        assert not fast.errors
    finally:
        release.set()
        slow_sub.stop()
        fast_sub.stop()
        handle.stop()


def test_l8_graceful_shutdown_flushes_everything_and_ends_the_epoch():
    handle = start_bridge(BridgeConfig(LOOP, LOOP, heartbeat_interval=0.1))
    rec = Recorder()
    sub = Subscriber(handle.status_endpoint, handle.sync_endpoint, ["t"], on_event=rec).start()
    try:
        sub.wait_synced(5)
        assert sub.wait_for(lambda s: s.statistics().received > 0, 5)
        for i in range(1000):
            handle.publish("t", "k", {"i": i})
        t0 = time.monotonic()
        handle.stop()
        assert time.monotonic() - t0 < 2.0
        assert sub.wait_for(lambda s: any(isinstance(e, Ended) for e in rec.events), 5)
        assert sub.topic("t") == {"k": {"i": 999}}
        assert [e.seq for e in rec.events if isinstance(e, Update)] == list(range(1, 1001))
    finally:
        sub.stop()


@pytest.mark.own_thread
def test_s3_a_stalled_dashboard_converges_to_the_latest_state_and_says_what_it_skipped():
    handle = start_bridge(
        BridgeConfig(  # one message per update: batching would not overflow a 20-message hwm
            LOOP,
            LOOP,
            heartbeat_interval=0.1,
            sndhwm=20,
            history=HistoryLimits(max_updates=10),
            batch=False,
        )
    )
    release = threading.Event()
    rec = Recorder()

    def stalled(ev: object) -> None:
        rec(ev)
        if isinstance(ev, Reset) and ev.reason is None:
            release.wait(10)  # stuck on its first event, like a frozen dashboard

    sub = Subscriber(
        handle.status_endpoint, handle.sync_endpoint, ["t"], on_event=stalled, rcvhwm=20
    ).start()
    try:
        assert sub.wait_for(lambda s: s.replica.synced, 5)
        n = 5000
        for i in range(n):
            handle.publish("t", "k", {"i": i})
        assert handle.statistics().sequencer.published == n
        release.set()
        assert sub.wait_for(lambda s: s.topic("t") == {"k": {"i": n - 1}}, 30)
        assert sub.wait_for(lambda s: not s.replica.recovering, 10)
    finally:
        release.set()
        sub.stop()
        handle.stop()
    snaps = [r for r in rec.recovered() if r.snapshot]
    assert snaps, rec.recovered()
    assert all(r.reason is Reason.HISTORY_GONE for r in snaps)
    assert sum(r.skipped for r in snaps) > 0
    assert not rec.errors
