"""Property: under any drop/duplicate/reorder/restart schedule, the replica converges.

A `Sequencer` publishes through a simulated lossy status channel (messages are
really encoded and decoded); the sync channel is a reliable request/reply
served by the same pure function the bridge uses, at arbitrary moments. Once
the channel is quiet and a heartbeat gets through, the replica must equal the
publisher's state and say it is synced.
"""

from __future__ import annotations

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipecast.transport import (
    HistoryLimits,
    Replica,
    Reset,
    Sequencer,
    Update,
    decode_status,
    decode_sync_reply,
    encode_heartbeat,
    encode_sync_request,
    serve_sync_request,
)

TOPICS = ["stage/a", "stage/b", "other/x"]
KEYS = ["k1", "k2", "k3"]

publish_op = st.tuples(
    st.just("pub"),
    st.sampled_from(TOPICS),
    st.sampled_from(KEYS),
    st.one_of(st.none(), st.integers(0, 3).map(lambda n: {"n": n})),
)
fate = st.sampled_from(["deliver", "deliver", "deliver", "drop", "dup", "delay"])
step = st.one_of(
    st.tuples(publish_op, fate),
    st.just(("serve",)),
    st.just(("flush",)),
    st.just(("heartbeat",)),
    st.just(("restart",)),
    st.just(("tick",)),
)


class Harness:
    def __init__(self, prefixes: tuple[str, ...], history: int) -> None:
        self.history = history
        self.generation = 0
        self.now = 1000.0
        self.seq = self._new_sequencer()
        self.replica = Replica(prefixes, stale_after=3.0)
        self.delayed: list[list[bytes]] = []
        self.replica.start(self.now)
        self.pending = self.replica.take_requests()
        self.last_applied: dict[str, int] = {}

    def _new_sequencer(self) -> Sequencer:
        self.generation += 1
        return Sequencer(f"epoch{self.generation}", HistoryLimits(max_updates=self.history))

    def deliver(self, frames: list[bytes]) -> None:
        msg = decode_status(frames)
        if isinstance(msg, Update):
            self.replica.feed_update(msg, self.now)
        else:
            self.replica.feed_heartbeat(msg, self.now)
        self._collect()

    def _collect(self) -> None:
        for ev in self.replica.take_events():
            if isinstance(ev, Reset):
                for t in ev.state:
                    self.last_applied.pop(t, None)
            elif isinstance(ev, Update):
                prev = self.last_applied.get(ev.topic)
                # within one view, a topic's applied seqs are strictly consecutive
                assert prev is None or ev.seq == prev + 1, (ev, prev)
                self.last_applied[ev.topic] = ev.seq
        self.pending.extend(self.replica.take_requests())

    def serve(self) -> None:
        while self.pending:
            req = self.pending.pop(0)
            reply, _ = serve_sync_request(self.seq, encode_sync_request(req), self.now)
            self.replica.feed_reply(req, decode_sync_reply(reply), self.now)
            self._collect()

    def heartbeat_frames(self) -> list[bytes]:
        return [b"_hb", encode_heartbeat(self.seq.epoch, self.now, self.seq.heads())]

    def expected(self) -> dict[str, dict[str, object]]:
        out = {}
        for t in TOPICS:
            if not any(t.startswith(p) for p in self.replica.prefixes) and self.replica.prefixes:
                continue
            kv = {k: msgpack.unpackb(v) for k, (_, v) in self.seq.current(t).items()}
            if kv:
                out[t] = kv
        return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step, max_size=60),
    prefixes=st.sampled_from([(), ("stage/",), ("stage/a", "other/")]),
    history=st.integers(1, 8),
)
def test_replica_converges_to_publisher_state_under_any_schedule(steps, prefixes, history):
    h = Harness(prefixes, history)
    for s in steps:
        h.now += 0.01
        kind = s[0]
        if kind == "serve":
            h.serve()
        elif kind == "flush":
            for frames in h.delayed:
                h.deliver(frames)
            h.delayed.clear()
        elif kind == "heartbeat":
            h.deliver(h.heartbeat_frames())
        elif kind == "restart":
            h.seq = h._new_sequencer()
        elif kind == "tick":
            h.replica.tick(h.now)
        else:
            (_, topic, key, data), what = s
            out = h.seq.publish(topic, key, data, None, h.now)
            if out is None:
                continue
            if prefixes and not topic.startswith(prefixes):
                continue  # the SUB filter never lets it through
            frames = [topic.encode(), out.body]
            if what == "deliver":
                h.deliver(frames)
            elif what == "dup":
                h.deliver(frames)
                h.deliver(frames)
            elif what == "delay":
                h.delayed.append(frames)
    # quiet channel: late messages arrive, then heartbeats get through
    for frames in h.delayed:
        h.deliver(frames)
    for _ in range(4):
        h.serve()
        h.deliver(h.heartbeat_frames())
    h.serve()
    assert h.replica.synced
    assert not h.replica.recovering
    got = {t: kv for t, kv in h.replica.state().items() if kv}
    assert got == h.expected()
    for t in got:
        assert h.replica.last_seq(t) == h.seq.heads()[t]
