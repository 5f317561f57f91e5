"""The publisher core: dense seqs, skip-unchanged, bounded history, exact replays."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.transport import BadRequest, HistoryGone, HistoryLimits, Limits, Sequencer, TooLarge


def decode_seqs(bodies):
    return [msgpack.unpackb(b)["seq"] for b in bodies]


def test_each_topic_counts_its_own_seq_from_one_without_gaps():
    s = Sequencer("e")
    assert s.publish("a", "k", {"n": 1}, None, 0.0).seq == 1
    assert s.publish("b", "k", {"n": 1}, None, 0.0).seq == 1
    assert s.publish("a", "k", {"n": 2}, None, 0.0).seq == 2
    assert s.heads() == {"a": 2, "b": 1}


def test_an_unchanged_value_is_not_published_and_uses_no_seq():
    s = Sequencer("e")
    s.publish("a", "k", {"n": 1}, None, 0.0)
    assert s.publish("a", "k", {"n": 1}, "cid", 0.0) is None
    assert s.publish("a", "gone", None, None, 0.0) is None
    assert s.publish("a", "k", {"n": 2}, None, 0.0).seq == 2
    assert s.statistics().unchanged_skipped == 2


def test_deleting_a_key_publishes_nil_and_removes_it_from_snapshots():
    s = Sequencer("e")
    s.publish("a", "k", {"n": 1}, None, 0.0)
    assert s.publish("a", "k", None, None, 0.0).seq == 2
    heads, rows = s.snapshot_rows([])
    assert heads == {"a": 2}
    assert rows == []


def test_the_published_value_is_kept_as_published_even_if_the_caller_mutates_it():
    s = Sequencer("e")
    data = {"n": 1}
    s.publish("a", "k", data, None, 0.0)
    data["n"] = 99
    _, rows = s.snapshot_rows(["a"])
    assert msgpack.unpackb(rows[0][3]) == {"n": 1}


@pytest.mark.parametrize(
    ("topic", "key", "data", "cid"),
    [
        ("", "k", {}, None),
        ("_hb", "k", {}, None),
        (3, "k", {}, None),
        ("a", 1, {}, None),
        ("a", "k", [1], None),
        ("a", "k", {}, 5),
        ("a", "k", {"x": object()}, None),
    ],
)
def test_invalid_publications_raise_bad_request_and_change_nothing(topic, key, data, cid):
    s = Sequencer("e")
    with pytest.raises(BadRequest):
        s.publish(topic, key, data, cid, 0.0)
    assert s.heads() == {}
    assert s.publish("a", "k", {"ok": 1}, None, 0.0).seq == 1


def test_snapshot_selects_topics_by_prefix():
    s = Sequencer("e")
    for t in ("stage/a", "stage/b", "presence/x"):
        s.publish(t, "k", {"t": t}, None, 0.0)
    heads, rows = s.snapshot_rows(["stage/"])
    assert heads == {"stage/a": 1, "stage/b": 1}
    assert {r[0] for r in rows} == {"stage/a", "stage/b"}


@given(n=st.integers(1, 60), limit=st.integers(1, 20), after=st.integers(0, 70))
def test_replay_is_exactly_the_missed_updates_or_history_gone_never_partial(n, limit, after):
    s = Sequencer("e", HistoryLimits(max_updates=limit))
    for i in range(n):
        s.publish("t", "k", {"i": i}, None, 0.0)
    oldest = max(1, n - limit + 1)
    if after > n:
        with pytest.raises(BadRequest):
            s.replay("t", after, 0.0)
    elif after >= oldest - 1:
        assert decode_seqs(s.replay("t", after, 0.0)) == list(range(after + 1, n + 1))
    else:
        with pytest.raises(HistoryGone):
            s.replay("t", after, 0.0)


def test_history_older_than_the_age_bound_is_gone_but_the_head_position_still_recovers():
    # R5: away longer than the TTL is history_gone; at the head it recovers with 0.
    s = Sequencer("e", HistoryLimits(max_updates=100, max_age=60.0))
    for i in range(5):
        s.publish("t", "k", {"i": i}, None, 100.0)
    assert decode_seqs(s.replay("t", 2, 150.0)) == [3, 4, 5]
    with pytest.raises(HistoryGone):
        s.replay("t", 2, 161.0)
    assert s.replay("t", 5, 161.0) == []
    s.expire(1000.0)
    assert s.statistics().history_updates == 0


def test_replay_of_an_unknown_topic_from_zero_is_empty_and_from_elsewhere_is_refused():
    s = Sequencer("e")
    assert s.replay("nope", 0, 0.0) == []
    with pytest.raises(BadRequest):
        s.replay("nope", 3, 0.0)


def test_history_limits_are_validated():
    with pytest.raises(BadRequest):
        HistoryLimits(max_updates=0)
    with pytest.raises(BadRequest):
        HistoryLimits(max_age=0)


# -- what it keeps is bounded --------------------------------------------------------


def test_heads_list_only_topics_with_a_live_key_and_a_dead_topics_seq_goes_on():
    s = Sequencer("e")
    s.publish("a", "k", {"n": 1}, None, 0.0)
    s.publish("b", "k", {"n": 1}, None, 0.0)
    assert s.publish("b", "k", None, None, 0.0).seq == 2  # b's last key deleted
    assert s.heads() == {"a": 1}
    assert s.publish("b", "k", {"n": 2}, None, 0.0).seq == 3  # never restarts
    assert s.heads() == {"a": 1, "b": 3}


def test_topics_past_the_live_bound_are_refused_but_deletions_and_known_ones_pass():
    s = Sequencer("e", bounds=Limits(live_topics=2, client_topics=1, known_topics=3))
    s.publish("a", "k", {"n": 1}, None, 0.0)
    s.publish("b", "k", {"n": 1}, None, 0.0)
    with pytest.raises(TooLarge, match="live topics"):
        s.publish("c", "k", {"n": 1}, None, 0.0)
    assert s.publish("a", "k2", {"n": 1}, None, 0.0) is not None  # a live one grows
    s.publish("b", "k", None, None, 0.0)  # b is dead: room for one more
    assert s.publish("c", "k", {"n": 1}, None, 0.0).seq == 1
    s.publish("c", "k", None, None, 0.0)
    with pytest.raises(TooLarge, match="topics already"):  # a fourth name, past known
        s.publish("d", "k", {"n": 1}, None, 0.0)
    assert s.statistics().refused == 2


def test_clients_cannot_crowd_out_the_nodes_own_topics():
    s = Sequencer("e", bounds=Limits(live_topics=3, client_topics=1, known_topics=10))
    s.publish("ext/a", "k", {"n": 1}, None, 0.0)
    with pytest.raises(TooLarge, match="clients"):
        s.publish("ext/b", "k", {"n": 1}, None, 0.0)
    with pytest.raises(TooLarge, match="clients"):
        s.publish("presence/stage/x", "w", {"n": 1}, None, 0.0)
    s.publish("stage/x", "state", {"n": 1}, None, 0.0)
    s.publish("actor/x", "state", {"n": 1}, None, 0.0)


def test_long_topics_and_keys_are_refused():
    s = Sequencer("e", bounds=Limits(topic_chars=8, key_chars=4))
    with pytest.raises(TooLarge):
        s.publish("t" * 9, "k", {"n": 1}, None, 0.0)
    with pytest.raises(TooLarge):
        s.publish("t", "k" * 5, {"n": 1}, None, 0.0)
    assert s.heads() == {}


def test_history_gives_way_to_the_retained_bound_before_any_value_is_refused():
    big = {"blob": "x" * 1000}
    s = Sequencer("e", bounds=Limits(retained_bytes=10_000))
    for i in range(30):
        s.publish("t", "k", {**big, "i": i}, None, float(i))
    stats = s.statistics()
    assert stats.retained_bytes <= 10_000
    assert s.replay("t", 30, 30.0) == []  # at the head: exact
    assert len(s.replay("t", 29, 30.0)) == 1  # the newest are kept
    with pytest.raises(HistoryGone):  # the oldest went for room
        s.replay("t", 1, 30.0)
    refused = []
    for i in range(20):  # live values alone past the bound: refused, nothing changed
        try:
            s.publish("t", f"k{i}", big, None, 31.0)
        except TooLarge as exc:
            refused.append((i, str(exc)))
    assert refused
    assert refused[0][0] == 8  # k and k0..k7: nine values of ~1 KB fit in 10,000 bytes; k8 not
    assert "more than 10000 bytes" in refused[0][1]
    assert s.statistics().retained_bytes <= 10_000


def test_expire_trims_the_largest_histories_to_the_retained_bound():
    s = Sequencer("e", bounds=Limits(retained_bytes=1_000_000))
    for i in range(200):
        s.publish("big", "k", {"blob": "x" * 2000, "i": i}, None, 0.0)
        s.publish("small", "k", {"i": i}, None, 0.0)
    assert s.statistics().retained_bytes <= 1_000_000
    s.bounds = Limits(retained_bytes=50_000)  # as if the node were configured smaller
    s.expire(1.0)
    assert s.statistics().retained_bytes <= 50_000
    assert s.replay("small", 190, 1.0)  # the small topic's recent history is still there
