"""The remote subscriber's rate limit: each key's latest state, at most N times a second."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.transport import BadRequest, Reason, Recovered, Reset, Stale, Update, UpdateGate

RATE = 10.0  # one told update per key per 0.1 s


def upd(topic: str, key: str, seq: int, data: object) -> Update:
    return Update(topic, key, data, seq, "e", 0.0, None)


def test_the_first_update_of_a_key_is_told_at_once_and_a_quick_second_is_held() -> None:
    gate = UpdateGate(RATE)
    a, b = upd("t", "k", 1, {"i": 1}), upd("t", "k", 2, {"i": 2})
    assert gate.offer([a], 0.0) == [a]
    assert gate.offer([b], 0.01) == []
    assert gate.held == 1
    assert gate.next_due() == pytest.approx(0.1)
    assert gate.due(0.05) == []
    assert gate.due(0.1) == [b]
    assert gate.held == 0
    assert gate.skipped == 0


def test_a_newer_update_of_a_held_key_replaces_it_and_counts_one_skipped() -> None:
    gate = UpdateGate(RATE)
    ups = [upd("t", "k", i, {"i": i}) for i in range(1, 6)]
    assert gate.offer(ups, 0.0) == [ups[0]]
    assert gate.skipped == 3  # 2, 3 and 4 were superseded; 5 is held
    assert gate.offer([], 0.2) == [ups[4]]


def test_keys_are_throttled_apart() -> None:
    gate = UpdateGate(RATE)
    a, b = upd("t", "a", 1, {"i": 1}), upd("t", "b", 2, {"i": 1})
    c = upd("u", "a", 1, {"i": 1})
    assert gate.offer([a, b, c], 0.0) == [a, b, c]


def test_a_status_change_or_a_deletion_is_told_at_once_carrying_the_held_one() -> None:
    gate = UpdateGate(RATE)
    run = [upd("stage/x", "state", i, {"status": "running", "p": i}) for i in (1, 2)]
    paused = upd("stage/x", "state", 3, {"status": "paused"})
    gone = upd("stage/x", "state", 4, None)
    assert gate.offer(run, 0.0) == [run[0]]
    assert gate.offer([paused], 0.01) == [paused]
    assert gate.skipped == 1
    assert gate.held == 0
    assert gate.offer([gone], 0.02) == [gone]


def test_every_other_event_first_releases_what_is_held_in_order() -> None:
    gate = UpdateGate(RATE)
    a1, b1 = upd("t", "a", 1, {"i": 1}), upd("t", "b", 2, {"i": 1})
    a2, b2 = upd("t", "a", 3, {"i": 2}), upd("t", "b", 4, {"i": 2})
    for other in (
        Stale(1.0),
        Reset("e", Reason.GAP, {"t": {}}),
        Recovered(Reason.GAP, "t", 1, snapshot=False),
    ):
        gate = UpdateGate(RATE)
        assert gate.offer([a1, b1, a2, b2, other], 0.0) == [a1, b1, a2, b2, other]
        assert gate.held == 0


@pytest.mark.parametrize("bad", [0, -1, "5", True, float("nan")])
def test_a_rate_that_is_not_a_positive_number_is_refused(bad: object) -> None:
    with pytest.raises(BadRequest):
        UpdateGate(bad)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------

_steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # key
        st.sampled_from(["running", "running", "running", "paused", None]),  # status; None: del
        st.floats(0, 0.3),  # time since the previous step
        st.booleans(),  # a Stale event after this step
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_each_keys_updates_keep_order_never_come_early_and_the_last_is_told(
    steps: list[tuple[str, str | None, float, bool]],
) -> None:
    gate = UpdateGate(RATE)
    now, told, offered = 0.0, [], []
    for seq, (key, status, dt, stale) in enumerate(steps, 1):
        now += dt
        u = upd("t", key, seq, None if status is None else {"status": status, "n": seq})
        offered.append(u)
        told += [(now, e) for e in gate.offer([u, Stale(1.0)] if stale else [u], now)]
    now += 1.0
    told += [(now, e) for e in gate.due(now)]
    ups = [(t, e) for t, e in told if isinstance(e, Update)]
    for key in "abc":  # each key's updates in order (keys are throttled apart)
        seqs = [e.seq for _, e in ups if e.key == key]
        assert seqs == sorted(seqs)
    assert len(ups) + gate.skipped == len(offered)  # every update told or counted
    last = {u.key: u.seq for u in offered}
    assert set(last.values()) <= {e.seq for _, e in ups}  # the latest of each key told
    # no two told updates of one key closer than the interval, unless the
    # second is a lifecycle change or came out with a Stale that flushed it
    flushed = {e.seq for t, e in ups if any(isinstance(x, Stale) and tx == t for tx, x in told)}
    prev: dict[str, tuple[float, object]] = {}
    for t, e in ups:
        if e.key in prev:
            pt, pstatus = prev[e.key]
            status = e.data.get("status") if e.data else None
            lifecycle = e.data is None or status != pstatus
            assert lifecycle or e.seq in flushed or t - pt >= 1 / RATE - 1e-9
        prev[e.key] = (t, e.data.get("status") if e.data else None)
        if e.data is None:
            prev.pop(e.key)
