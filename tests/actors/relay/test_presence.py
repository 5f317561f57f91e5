"""A relay's routing of its watchers' presence: which node, whose watcher, what is kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors.relay import PresenceRoutes, presence_list, reachable_control
from pipecast.transport import BadRequest, TooLarge, Unauthorized

ONE = [("up", None)]
TWO = [("a-label", "a"), ("b-label", "b")]


def test_with_one_unnamed_upstream_every_topic_keeps_its_name() -> None:
    routes = PresenceRoutes(ONE)
    forward = routes.join("k1", {"watcher": "w", "topic": "stage/encode", "meta": {}}, 0.0)
    assert (forward.upstream, forward.op, forward.args["topic"]) == (
        "up",
        "presence.join",
        "stage/encode",
    )
    assert routes.route_topic("*") == ("up", "*")


def test_with_named_upstreams_a_topic_goes_to_the_node_it_names_without_the_name() -> None:
    routes = PresenceRoutes(TWO)
    assert routes.route_topic("b/stage/encode") == ("b-label", "stage/encode")
    for nowhere in ("*", "c/stage", "a/", "stage/encode"):
        with pytest.raises(BadRequest):
            routes.route_topic(nowhere)


def test_only_the_key_that_joined_a_watcher_may_heartbeat_or_leave_it() -> None:
    routes = PresenceRoutes(ONE)
    routes.join("k1", {"watcher": "w", "topic": "t"}, 0.0)
    with pytest.raises(Unauthorized):
        routes.heartbeat("k2", {"watcher": "w"}, 1.0)
    with pytest.raises(Unauthorized):
        routes.leave("k2", {"watcher": "w"}, 1.0)
    with pytest.raises(Unauthorized):
        routes.join("k2", {"watcher": "w", "topic": "t"}, 1.0)
    assert routes.heartbeat("k1", {"watcher": "w"}, 1.0) is not None
    assert routes.leave("k1", {"watcher": "w"}, 1.0) is not None
    assert routes.heartbeat("k1", {"watcher": "w"}, 1.0) is None  # gone: answer known false


def test_a_watcher_the_node_forgot_or_that_fell_silent_is_forgotten() -> None:
    routes = PresenceRoutes(ONE)
    routes.join("k1", {"watcher": "w", "topic": "t", "ttl": 5}, 0.0)
    beat = routes.heartbeat("k1", {"watcher": "w"}, 1.0)
    assert beat is not None
    routes.answered(beat, {"known": False})
    assert routes.statistics().watchers == 0
    routes.join("k1", {"watcher": "w", "topic": "t", "ttl": 5}, 0.0)
    assert routes.expire(9.9) == 0
    assert routes.expire(10.0) == 1  # twice its lease without a word


def test_a_join_the_node_refused_books_nothing() -> None:
    routes = PresenceRoutes(ONE)
    forward = routes.join("k1", {"watcher": "w", "topic": "t"}, 0.0)
    routes.failed(forward)
    assert routes.heartbeat("k2", {"watcher": "w"}, 0.0) is None


@pytest.mark.parametrize(
    "args",
    [
        {"topic": "t"},
        {"watcher": "", "topic": "t"},
        {"watcher": "x" * 129, "topic": "t"},
        {"watcher": 3, "topic": "t"},
        {"watcher": "w"},
        {"watcher": "w", "topic": ""},
        {"watcher": "w", "topic": "t", "ttl": 0},
        {"watcher": "w", "topic": "t", "ttl": True},
        {"watcher": "w", "topic": "t", "ttl": 1e9},
    ],
)
def test_a_bad_join_is_refused_and_books_nothing(args: dict) -> None:
    routes = PresenceRoutes(ONE)
    with pytest.raises(BadRequest):
        routes.join("k1", args, 0.0)
    assert routes.statistics().watchers == 0


def test_the_book_is_bounded() -> None:
    routes = PresenceRoutes(ONE, max_watchers=2)
    routes.join("k", {"watcher": "w1", "topic": "t"}, 0.0)
    routes.join("k", {"watcher": "w2", "topic": "t"}, 0.0)
    with pytest.raises(TooLarge):
        routes.join("k", {"watcher": "w3", "topic": "t"}, 0.0)
    routes.join("k", {"watcher": "w2", "topic": "t"}, 0.0)  # a rejoin is no new watcher


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["join", "heartbeat", "leave", "expire"]),
            st.sampled_from(["k1", "k2"]),
            st.sampled_from(["w1", "w2", "w3"]),
        ),
        max_size=40,
    )
)
def test_a_watcher_is_only_ever_booked_for_the_key_that_joined_it(steps: list) -> None:
    routes = PresenceRoutes(ONE, max_watchers=2)
    owner: dict[str, str] = {}
    now = 0.0
    for op, key, watcher in steps:
        now += 1.0
        try:
            if op == "join":
                routes.join(key, {"watcher": watcher, "topic": "t", "ttl": 3}, now)
                assert owner.setdefault(watcher, key) == key
            elif op == "heartbeat":
                routes.heartbeat(key, {"watcher": watcher}, now)
            elif op == "leave":
                if routes.leave(key, {"watcher": watcher}, now) is not None:
                    assert owner.pop(watcher) == key
            else:
                routes.expire(now)
        except (Unauthorized, TooLarge):
            pass
        booked = {w: e.owner for w, e in routes._book.items()}
        for w in list(owner):
            if w not in booked:
                owner.pop(w)  # expired
        assert booked == owner
        assert len(booked) <= 2


def test_presence_is_listed_from_the_mirrored_topics_as_downstream_names_them() -> None:
    view = {
        "a/presence/stage/encode": {"w1": {"host": "h"}},
        "b/presence/*": {"w2": {}},
        "a/stage/encode": {"state": {}},
        "a/presence/empty": {},
    }
    got = presence_list(view, TWO)
    assert got == {
        "a/stage/encode": {"count": 1, "watchers": {"w1": {"host": "h"}}},
        "b/*": {"count": 1, "watchers": {"w2": {}}},
    }
    assert list(presence_list(view, TWO, "b/*")) == ["b/*"]
    assert presence_list({"presence/x": {"w": {}}}, ONE) == {
        "x": {"count": 1, "watchers": {"w": {}}}
    }


@pytest.mark.parametrize(
    ("advertised", "status", "dial"),
    [
        ("tcp://127.0.0.1:7703", "tcp://127.0.0.1:7701", "tcp://127.0.0.1:7703"),
        ("tcp://0.0.0.0:7703", "tcp://10.0.0.5:7701", "tcp://10.0.0.5:7703"),
        ("tcp://*:7703", "tcp://node.lan:7701", "tcp://node.lan:7703"),
        ("ipc:///run/p/control", "ipc:///run/p/status", "ipc:///run/p/control"),
        ("tcp://host", "tcp://h:1", None),
        ("udp://h:1", "tcp://h:1", None),
        (None, "tcp://h:1", None),
        (7703, "tcp://h:1", None),
    ],
)
def test_a_node_bound_everywhere_is_dialled_where_the_relay_reaches_it(
    advertised: object, status: str, dial: str | None
) -> None:
    assert reachable_control(advertised, status) == dial


def test_many_watchers_renew_in_one_request_split_by_upstream_and_owner() -> None:
    routes = PresenceRoutes(TWO)
    routes.join("k1", {"watcher": "a1", "topic": "a/t"}, 0.0)
    routes.join("k1", {"watcher": "b1", "topic": "b/t"}, 0.0)
    routes.join("k2", {"watcher": "theirs", "topic": "a/t"}, 0.0)
    forwards, unknown = routes.heartbeat_many(
        "k1", {"watchers": ["a1", "b1", "theirs", "ghost"]}, 1.0
    )
    assert sorted((f.upstream, f.args["watchers"]) for f in forwards) == [
        ("a-label", ["a1"]),
        ("b-label", ["b1"]),
    ]
    assert unknown == ["theirs", "ghost"]  # another key's, and one never joined: join again
    routes.answered(forwards[0], {"known": 0, "unknown": forwards[0].args["watchers"]})
    assert routes.heartbeat("k1", {"watcher": forwards[0].args["watchers"][0]}, 2.0) is None


@pytest.mark.parametrize("watchers", [[], "a1", ["x" * 129], list(map(str, range(10_001)))])
def test_a_bad_many_watcher_heartbeat_is_refused(watchers: object) -> None:
    with pytest.raises(BadRequest):
        PresenceRoutes(ONE).heartbeat_many("k", {"watchers": watchers}, 0.0)
