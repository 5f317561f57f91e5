"""Presence leases and coalescing (pure), against a model replayed from the flushes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.actors.presence import PresenceTable
from pipecast.transport import BadRequest

WATCHERS = [f"w{i}" for i in range(5)]
TOPICS = ["invocation/a", "invocation/b"]

op = st.one_of(
    st.tuples(
        st.just("join"),
        st.sampled_from(WATCHERS),
        st.sampled_from(TOPICS),
        st.dictionaries(st.sampled_from(["mode", "host"]), st.integers(0, 2), max_size=2),
        st.one_of(st.none(), st.floats(0.5, 5)),
    ),
    st.tuples(st.just("leave"), st.sampled_from(WATCHERS)),
    st.tuples(st.just("beat"), st.sampled_from(WATCHERS)),
    st.tuples(st.just("tick"), st.floats(0, 3)),
    st.just(("flush",)),
)


@given(st.lists(op, max_size=60))
def test_replaying_the_flushes_gives_exactly_the_table_and_counts_stay_exact(ops):
    table = PresenceTable()
    replica: dict[tuple[str, str], dict] = {}
    now = 0.0
    sent = 0
    for o in ops:
        if o[0] == "join":
            table.join(o[1], o[2], o[3], o[4], now)
        elif o[0] == "leave":
            table.leave(o[1])
        elif o[0] == "beat":
            table.heartbeat(o[1], now)
        elif o[0] == "tick":
            now += o[1]
            table.expire(now)
        else:
            changes = table.flush()
            assert len({(c.topic, c.watcher) for c in changes}) == len(changes)
            sent += len(changes)
            for c in changes:
                if c.meta is None:
                    assert (c.topic, c.watcher) in replica  # never a leave for a stranger
                    del replica[(c.topic, c.watcher)]
                else:
                    replica[(c.topic, c.watcher)] = c.meta
        for t in TOPICS:
            assert table.count(t) == len(table.watchers(t))
    for c in table.flush():
        if c.meta is None:
            del replica[(c.topic, c.watcher)]
        else:
            replica[(c.topic, c.watcher)] = c.meta
    expected = {(t, w): m for t in TOPICS for w, m in table.watchers(t).items()}
    assert replica == expected


def test_a_join_and_leave_within_one_flush_interval_publishes_nothing():
    table = PresenceTable()
    table.join("w", "t", {}, 3.0, 0.0)
    table.leave("w")
    assert table.flush() == []


def test_k_watchers_reconnecting_at_once_cost_at_most_k_changes():
    table = PresenceTable()
    for i in range(100):
        table.join(f"w{i}", "t", {"n": i}, 3.0, 0.0)
    table.flush()
    for i in range(100):  # everyone drops and comes back
        table.leave(f"w{i}")
        table.join(f"w{i}", "t", {"n": i, "again": True}, 3.0, 0.1)
    assert len(table.flush()) == 100


def test_updating_metadata_is_one_change_not_a_leave_and_join():
    table = PresenceTable()
    table.join("w", "t", {"display": "grid:2x2"}, None, 0.0)
    table.flush()
    table.join("w", "t", {"display": "single:0:1"}, None, 1.0)
    (change,) = table.flush()
    assert change.meta == {"display": "single:0:1"}


def test_a_silent_remote_watcher_leaves_when_its_lease_ends_and_heartbeats_renew_it():
    table = PresenceTable()
    table.join("remote", "t", {}, 3.0, 0.0)
    table.join("local", "t", {}, None, 0.0)
    assert table.expire(2.9) == []
    assert table.heartbeat("remote", 2.9)
    assert table.expire(5.8) == []
    assert table.expire(5.9) == ["remote"]
    assert table.count("t") == 1
    assert not table.heartbeat("remote", 6.0)


@pytest.mark.parametrize(
    "args",
    [
        ("", "t", {}, 1.0),
        ("w", "", {}, 1.0),
        ("w", "t", [], 1.0),
        ("w", "t", {}, 0),
        ("w", "t", {}, 1e9),
    ],
)
def test_bad_joins_are_refused_and_change_nothing(args):
    table = PresenceTable()
    with pytest.raises(BadRequest):
        table.join(*args, 0.0)
    assert len(table) == 0
    assert table.flush() == []


def test_time_the_node_could_not_listen_is_no_watchers_silence():
    table = PresenceTable()
    table.join("w", "t", {}, 2.0, now=0.0)
    table.forgive(5.0)  # stalled for 5 s right after the join
    assert table.expire(6.9) == []  # 2 s of its own silence still to go
    assert table.heartbeat("w", 6.9)  # a beat that waited out the stall
    assert table.expire(8.8) == []
    assert table.expire(8.95) == ["w"]
