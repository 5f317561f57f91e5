"""A relay's mirror: upstream events become the downstream changes that match them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors import RelayMirror, parse_upstream
from pipecast.actors.relay import Publication
from pipecast.transport import BadRequest, Reason, Recovered, Reset, Stale, Update


def upd(topic: str, key: str, data: object, seq: int = 1) -> Update:
    return Update(topic, key, data, seq, "e", 0.0, None)


def apply(state: dict, pubs: list[Publication]) -> None:
    for p in pubs:
        kv = state.setdefault(p.topic, {})
        if p.data is None:
            kv.pop(p.key, None)
        else:
            kv[p.key] = p.data


def test_updates_pass_through_under_the_upstreams_name() -> None:
    m = RelayMirror("n1", "n1/")
    assert m.on_event(upd("stage/a", "state", {"s": 1})) == [
        Publication("n1/stage/a", "state", {"s": 1})
    ]
    assert m.on_event(upd("stage/a", "state", {"s": 1})) == []  # nothing changed
    assert m.on_event(upd("stage/a", "state", None)) == [Publication("n1/stage/a", "state", None)]


def test_a_reset_becomes_the_changes_that_reach_the_new_state_and_says_live() -> None:
    m = RelayMirror("up")
    m.on_event(upd("t", "a", {"v": 1}))
    m.on_event(upd("t", "b", {"v": 1}))
    pubs = m.on_event(Reset("e2", Reason.EPOCH, {"t": {"b": {"v": 2}, "c": {"v": 3}}, "u": {}}))
    assert Publication("t", "a", None) in pubs
    assert Publication("t", "b", {"v": 2}) in pubs
    assert Publication("t", "c", {"v": 3}) in pubs
    assert pubs[-1] == Publication("relay/up", "upstream", {"upstream": "up", "status": "live"})
    assert m.state() == {"t": {"b": {"v": 2}, "c": {"v": 3}}}


def test_stale_and_recovered_show_on_the_relay_topic() -> None:
    m = RelayMirror("up")
    assert m.hello()[0].data == {"upstream": "up", "status": "connecting"}
    (stale,) = m.on_event(Stale(3.0))
    assert stale.data == {"upstream": "up", "status": "stale", "silent_for": 3.0}
    (live,) = m.on_event(Recovered(Reason.STALE, None, 0, snapshot=False))
    assert live.data["status"] == "live"


events = st.lists(
    st.one_of(
        st.tuples(
            st.just("u"),
            st.sampled_from("tu"),
            st.sampled_from("abc"),
            st.one_of(st.none(), st.integers(0, 3)),
        ),
        st.tuples(
            st.just("r"),
            st.dictionaries(
                st.sampled_from("tu"), st.dictionaries(st.sampled_from("abc"), st.integers(0, 3))
            ),
        ),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_downstream_always_holds_exactly_the_upstream_replicas_state(evs) -> None:
    m = RelayMirror("up", "up/")
    upstream: dict = {}
    downstream: dict = {}
    for ev in evs:
        if ev[0] == "u":
            _, topic, key, n = ev
            data = None if n is None else {"n": n}
            kv = upstream.setdefault(topic, {})
            if data is None:
                kv.pop(key, None)
            else:
                kv[key] = data
            apply(downstream, m.on_event(upd(topic, key, data)))
        else:
            state = {t: {k: {"n": n} for k, n in kv.items()} for t, kv in ev[1].items()}
            upstream.update(state)
            apply(downstream, m.on_event(Reset("e", Reason.GAP, state)))
        expected = {f"up/{t}": kv for t, kv in upstream.items() if kv}
        got = {t: kv for t, kv in downstream.items() if kv and not t.startswith("relay/")}
        assert got == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("tcp://a:1", "is not"),
        ("tcp://a:1,tcp://a:2,short", "40 Z85"),
        ("bad name=tcp://a:1,tcp://a:2", "upstream name"),
        ("n=tcp://a:1", "is not"),
    ],
)
def test_a_bad_upstream_is_refused_naming_the_problem(text: str, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        parse_upstream(text)


def test_an_upstream_spec_reads_its_parts() -> None:
    up = parse_upstream("n1=tcp://h:1,tcp://h:2," + "k" * 40)
    assert (up.name, up.status, up.sync, up.node_key) == ("n1", "tcp://h:1", "tcp://h:2", "k" * 40)
    plain = parse_upstream("tcp://h:1,tcp://h:2")
    assert (plain.name, plain.node_key, plain.label) == (None, None, "tcp-h-1")


def test_the_upstreams_endpoints_become_the_relays_own_with_the_controls_behind_it() -> None:
    serving = {"status": "tcp://r:1", "sync": "tcp://r:2", "control": "tcp://r:3"}
    mirror = RelayMirror("n", "", serving, "tcp://10.0.0.5:7701")
    advertised = {"status": "tcp://0.0.0.0:7701", "sync": "x", "control": "tcp://0.0.0.0:7703"}
    (pub,) = mirror.on_event(Update("node", "endpoints", advertised, 1, "e", 0.0, None))
    assert pub.data == {
        **serving,
        "upstream_control": "tcp://10.0.0.5:7703",
        "node_control": "tcp://10.0.0.5:7703",
    }
    # one relay further down, the root node's control is passed on as it was
    below = RelayMirror("r", "", {"control": "tcp://s:3"}, "tcp://r:1")
    (pub2,) = below.on_event(Update("node", "endpoints", pub.data, 1, "e", 0.0, None))
    assert pub2.data["upstream_control"] == "tcp://r:3"
    assert pub2.data["node_control"] == "tcp://10.0.0.5:7703"


def test_an_upstream_relays_own_actors_are_not_mirrored() -> None:
    mirror = RelayMirror("r")
    state = {"relay/actor/control": {"state": {"status": "running"}}, "ext/a": {"k": {"v": 1}}}
    pubs = mirror.on_event(Reset("e", None, state))
    assert {p.topic for p in pubs if p.topic != "relay/r"} == {"ext/a"}
