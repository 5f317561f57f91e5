"""Many subscribers on one hub thread: each exact and independent of the others."""

from __future__ import annotations

import threading

import pytest

from pipecast.actors import BridgeConfig, start_bridge
from pipecast.transport import (
    ClientSecurity,
    Keypair,
    KeyRefused,
    NodeAuthenticator,
    ServerSecurity,
    Subscriber,
    SubscriberHub,
    Update,
)

LOOP = "tcp://127.0.0.1:*"


@pytest.fixture
def bridge():
    handle = start_bridge(BridgeConfig(LOOP, LOOP, heartbeat_interval=0.1))
    yield handle
    handle.stop()


def test_a_hubs_members_each_end_with_the_exact_state_and_one_leaving_stops_only_itself(
    bridge,
) -> None:
    hub = SubscriberHub().start()
    counts = [0] * 30

    def counter(i: int):
        def on_event(ev: object) -> None:
            if type(ev) is Update:
                counts[i] += 1

        return on_event

    subs = [
        Subscriber(
            bridge.status_endpoint, bridge.sync_endpoint, ["t/"], on_event=counter(i), hub=hub
        )
        for i in range(30)
    ]
    try:
        for s in subs:
            s.start()
        for s in subs:
            s.wait_synced(10)
        for i in range(200):
            bridge.publish(f"t/{i % 7}", f"k{i % 3}", {"i": i})
        want = {
            f"t/{t}": {
                f"k{k}": {"i": max(i for i in range(200) if i % 7 == t and i % 3 == k)}
                for k in range(3)
            }
            for t in range(7)
        }
        for s in subs:
            assert s.wait_for(lambda x: x.state() == want, 10)
        assert counts == [200] * 30  # every update told to every member, none twice
        subs[0].stop()
        bridge.publish("t/0", "k0", {"i": -1})
        for s in subs[1:]:
            assert s.wait_for(lambda x: x.topic("t/0")["k0"] == {"i": -1}, 10)
        assert subs[0].topic("t/0")["k0"] != {"i": -1}  # it left: it hears no more
        stats = hub.statistics()
        assert stats["members"] == 29
        assert stats["turns"] > stats["polls"]  # a poll serves several members at once
    finally:
        for s in subs:
            s.stop()
        hub.stop()


def test_a_member_whose_key_is_refused_says_so_and_the_others_go_on(tmp_path) -> None:
    import zmq  # noqa: PLC0415

    ctx = zmq.Context()
    security = ServerSecurity.for_node(tmp_path)
    zap = NodeAuthenticator(ctx, security.allowed)
    zap.start()
    handle = start_bridge(BridgeConfig(LOOP, LOOP), context=ctx, security=security)
    hub = SubscriberHub().start()
    try:
        owner = ClientSecurity.owner(tmp_path)
        stranger = ClientSecurity(Keypair.new(), security.keys.public)
        good = Subscriber(
            handle.status_endpoint, handle.sync_endpoint, ["t"], security=owner, hub=hub
        )
        bad = Subscriber(
            handle.status_endpoint, handle.sync_endpoint, ["t"], security=stranger, hub=hub
        )
        good.start()
        bad.start()
        with pytest.raises(KeyRefused):
            bad.wait_synced(10)
        good.wait_synced(10)
        handle.publish("t", "k", {"v": 1})
        assert good.wait_for(lambda s: s.topic("t") == {"k": {"v": 1}}, 10)
        bad.stop()
        good.stop()
    finally:
        hub.stop()
        handle.stop()
        zap.stop()
        ctx.term()


def test_a_raising_callback_is_counted_and_the_hub_serves_on(bridge) -> None:
    hub = SubscriberHub().start()
    told = threading.Event()

    def boom(ev: object) -> None:
        raise RuntimeError("the user's bug")

    def fine(ev: object) -> None:
        if type(ev) is Update:
            told.set()

    a = Subscriber(bridge.status_endpoint, bridge.sync_endpoint, ["t"], on_event=boom, hub=hub)
    b = Subscriber(bridge.status_endpoint, bridge.sync_endpoint, ["t"], on_event=fine, hub=hub)
    try:
        a.start()
        b.start()
        a.wait_synced(10)
        b.wait_synced(10)
        bridge.publish("t", "k", {"v": 1})
        assert told.wait(10)
        assert a.wait_for(lambda s: s.statistics().callback_failures >= 1, 10)
    finally:
        a.stop()
        b.stop()
        hub.stop()


def test_stopping_the_hub_closes_the_members_still_on_it(bridge) -> None:
    hub = SubscriberHub().start()
    sub = Subscriber(bridge.status_endpoint, bridge.sync_endpoint, ["t"], hub=hub)
    sub.start()
    sub.wait_synced(10)
    hub.stop()
    assert sub.wait_for(lambda s: False, 5) is False  # returns at once: it is closed
    sub.stop()
    with pytest.raises(RuntimeError):
        Subscriber(bridge.status_endpoint, bridge.sync_endpoint, ["t"], hub=hub).start()


def test_a_hub_stopped_without_starting_holds_nothing_open() -> None:
    SubscriberHub().stop()  # the leak check of every test says whether a descriptor stayed
