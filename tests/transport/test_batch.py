"""Status batches: consecutive updates of a topic in one message, all or nothing."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipecast.transport import (
    MAX_BATCH,
    MAX_BATCH_BYTES,
    HistoryLimits,
    MalformedFrame,
    Replica,
    Sequencer,
    Update,
    batch_bodies,
    decode_heartbeat,
    decode_sync_reply,
    decode_updates,
    encode_heartbeat,
    encode_sync_request,
    encode_update,
    serve_sync_request,
    unpack_status,
    update_from_body,
    updates_from_body,
)


def body(seq: int, epoch: str = "e1", size: int = 0) -> bytes:
    return encode_update("k", {"pad": "x" * size, "n": seq}, seq, epoch, 1.0, None)


def decode(topic: str, raw: bytes) -> tuple[Update, ...]:
    return updates_from_body(topic, unpack_status(raw), len(raw))


def test_a_lone_update_stays_a_plain_map_and_a_run_becomes_one_array() -> None:
    (single,) = batch_bodies([body(1)])
    assert single == body(1)
    (batch,) = batch_bodies([body(i) for i in range(1, 21)])
    assert msgpack.unpackb(batch) == [msgpack.unpackb(body(i)) for i in range(1, 21)]
    assert [u.seq for u in decode("t", batch)] == list(range(1, 21))


def test_batches_keep_to_the_count_and_byte_bounds() -> None:
    many = batch_bodies([body(i) for i in range(1, 2 * MAX_BATCH + 2)])
    assert [len(msgpack.unpackb(b)) if b[0] != body(1)[0] else 1 for b in many] == [
        MAX_BATCH,
        MAX_BATCH,
        1,
    ]
    big = batch_bodies([body(i, size=40_000) for i in range(1, 30)])
    assert all(len(b) <= MAX_BATCH_BYTES for b in big)
    assert [u.seq for b in big for u in decode("t", b)] == list(range(1, 30))
    huge = body(1, size=MAX_BATCH_BYTES)
    assert batch_bodies([huge]) == [huge]  # too big for a batch: it travels alone


def _array(items: list[bytes]) -> bytes:
    return b"\xdc" + len(items).to_bytes(2, "big") + b"".join(items)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (msgpack.packb([]), "1 to 256"),
        (_array([body(i) for i in range(1, MAX_BATCH + 2)]), "1 to 256"),
        (_array([body(1), body(2, epoch="e2")]), "one epoch"),
        (_array([body(1), body(3)]), "consecutive"),
        (_array([body(2), body(1)]), "consecutive"),
        (_array([body(1), msgpack.packb("x")]), "not a map"),
        (_array([body(i, size=3000) for i in range(1, 100)]), "at most"),
    ],
)
def test_a_bad_batch_is_malformed_and_none_of_it_applies(raw: bytes, says: str) -> None:
    with pytest.raises(MalformedFrame, match=says):
        decode("t", raw)
    with pytest.raises(MalformedFrame, match=says):
        decode_updates("t", raw)


# -- the subscriber's typed decoding says what the general one says ---------------------

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.binary(max_size=3),
)
field_value = st.one_of(
    scalar, st.lists(scalar, max_size=2), st.dictionaries(st.text(max_size=2), scalar, max_size=2)
)
update_map = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(2), st.just(2.0), st.just(True), scalar),
        "epoch": st.one_of(st.just("e1"), st.just(""), scalar),
        "seq": st.one_of(st.integers(-1, 5), scalar),
        "ts": st.one_of(st.floats(allow_nan=False), st.integers(0, 10), scalar),
        "key": st.one_of(st.just("k"), scalar),
        "data": st.one_of(
            st.none(), st.dictionaries(st.text(max_size=2), field_value, max_size=3), scalar
        ),
        "cid": st.one_of(st.none(), st.just("c"), scalar),
        "other": scalar,
    },
)


def _outcome(fn: object, topic: str, raw: bytes) -> object:
    try:
        return fn(topic, raw)  # type: ignore[operator]
    except MalformedFrame as exc:
        return ("malformed", str(exc))


@settings(max_examples=500, deadline=None)
@given(st.one_of(update_map, st.lists(update_map, max_size=4), scalar))
def test_the_subscribers_decoding_agrees_with_the_general_one_on_any_body(body: object) -> None:
    raw = msgpack.packb(body)
    assert _outcome(decode_updates, "t", raw) == _outcome(
        lambda topic, r: list(decode(topic, r)), "t", raw
    )


def test_a_valid_batch_decodes_to_its_updates_in_order() -> None:
    raw = batch_bodies([encode_update("k", {"n": i}, i, "e1", 2.5, "c") for i in range(3, 9)])[0]
    got = decode_updates("t", raw)
    assert [(u.topic, u.key, u.data, u.seq, u.epoch, u.ts, u.cid) for u in got] == [
        ("t", "k", {"n": i}, i, "e1", 2.5, "c") for i in range(3, 9)
    ]


# -- property: batched and unbatched streams give the same replica ---------------------

TOPICS = ["a", "b"]
pub = st.tuples(
    st.just("pub"), st.sampled_from(TOPICS), st.sampled_from(["k1", "k2"]), st.integers(0, 3)
)
send = st.tuples(st.just("send"), st.sampled_from(["deliver", "deliver", "drop", "dup", "delay"]))
step = st.one_of(pub, send, st.just(("flush",)), st.just(("serve",)), st.just(("restart",)))


class Side:
    """One subscriber: its replica and what the lossy channel holds back for it."""

    def __init__(self, now: float, *, subscriber_path: bool) -> None:
        # the subscriber's own path (typed decoding, whole batches fed at once), or
        # the general decoding fed update by update
        self.subscriber_path = subscriber_path
        self.replica = Replica((), stale_after=3.0)
        self.replica.start(now)
        self.delayed: list[tuple[str, bytes]] = []
        self.applied: list[tuple[str, int]] = []

    def deliver(self, topic: str, raw: bytes, now: float) -> None:
        if topic == "_hb":
            self.replica.feed_heartbeat(decode_heartbeat(raw), now)
        elif self.subscriber_path:
            self.replica.feed_batch(decode_updates(topic, raw), now)
        else:
            message = unpack_status(raw)
            if isinstance(message, dict):
                self.replica.feed_update(update_from_body(topic, message), now)
            else:
                for u in updates_from_body(topic, message, len(raw)):
                    self.replica.feed_update(u, now)

    def serve(self, seq: Sequencer, now: float) -> None:
        for _ in range(10):
            requests = self.replica.take_requests()
            if not requests:
                return
            for req in requests:
                reply, _ = serve_sync_request(seq, encode_sync_request(req), now)
                self.replica.feed_reply(req, decode_sync_reply(reply), now)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=80), st.integers(1, 10))
def test_batched_and_unbatched_streams_give_the_same_replica_under_any_schedule(
    steps: list[tuple], history: int
) -> None:
    now = 1000.0
    generation = 1
    seq = Sequencer("epoch1", HistoryLimits(max_updates=history))
    one, many = Side(now, subscriber_path=False), Side(now, subscriber_path=True)
    held: list[tuple[str, bytes]] = []  # published, not yet sent
    for s in steps:
        now += 0.01
        if s[0] == "pub":
            out = seq.publish(s[1], s[2], {"n": s[3]}, None, now)
            if out is not None:
                held.append((s[1], out.body))
        elif s[0] == "send":
            unbatched = list(held)
            batched = []
            for topic in dict.fromkeys(t for t, _ in held):  # each topic's run, in order
                bodies = [b for t, b in held if t == topic]
                batched += [(topic, b) for b in batch_bodies(bodies)]
            held.clear()
            for side, messages in ((one, unbatched), (many, batched)):
                for topic, raw in messages:
                    if s[1] == "deliver":
                        side.deliver(topic, raw, now)
                    elif s[1] == "dup":
                        side.deliver(topic, raw, now)
                        side.deliver(topic, raw, now)
                    elif s[1] == "delay":
                        side.delayed.append((topic, raw))
        elif s[0] == "flush":
            for side in (one, many):
                for topic, raw in side.delayed:
                    side.deliver(topic, raw, now)
                side.delayed.clear()
        elif s[0] == "serve":
            one.serve(seq, now)
            many.serve(seq, now)
        elif s[0] == "restart":
            generation += 1
            seq = Sequencer(f"epoch{generation}", HistoryLimits(max_updates=history))
            held.clear()
    heartbeat = encode_heartbeat(seq.epoch, now, seq.heads())
    for side in (one, many):  # a quiet channel: late ones arrive, then heartbeats get through
        for topic, raw in side.delayed:
            side.deliver(topic, raw, now)
        for _ in range(3):
            side.serve(seq, now)
            side.deliver("_hb", heartbeat, now)
        side.serve(seq, now)
        assert side.replica.synced
        assert not side.replica.recovering
    expected = {
        t: {k: msgpack.unpackb(v) for k, (_, v) in seq.current(t).items()}
        for t in TOPICS
        if seq.current(t)
    }
    for side in (one, many):
        got = {t: kv for t, kv in side.replica.state().items() if kv}
        assert got == expected
