"""The subscriber core's recovery truth table, case by case (no sockets)."""

from __future__ import annotations

import msgpack

from pipecast.transport import (
    Ended,
    ErrorReply,
    Heartbeat,
    Reason,
    Recovered,
    ReplayRequest,
    Replica,
    Reset,
    Sequencer,
    SnapshotRequest,
    Stale,
    Update,
    decode_sync_reply,
    encode_sync_request,
    serve_sync_request,
    update_from_body,
)


def upd(seq, data=None, epoch="e", topic="t", key="k"):
    return Update(topic, key, data if data is not None else {"n": seq}, seq, epoch, 0.0, None)


def serve(replica, seq):
    for req in replica.take_requests():
        body, _ = serve_sync_request(seq, encode_sync_request(req), 0.0)
        replica.feed_reply(req, decode_sync_reply(body), 0.0)


def joined(seq):
    r = Replica()
    r.start(0.0)
    serve(r, seq)
    r.take_events()
    return r


def publish(seq, n, topic="t"):
    return [seq.publish(topic, "k", {"n": i}, None, 0.0) for i in range(n)]


def test_a_late_joiner_gets_the_current_state_as_a_reset_then_live_updates():
    seq = Sequencer("e")
    publish(seq, 3)
    r = Replica()
    r.start(0.0)
    assert r.take_requests() == [SnapshotRequest(())]
    r.feed_reply(
        SnapshotRequest(()),
        decode_sync_reply(
            serve_sync_request(seq, encode_sync_request(SnapshotRequest(())), 0.0)[0]
        ),
        0.0,
    )
    (ev,) = r.take_events()
    assert isinstance(ev, Reset)
    assert ev.reason is None
    assert ev.state == {"t": {"k": {"n": 2}}}
    r.feed_update(upd(4), 0.0)
    assert r.take_events() == [upd(4)]


def test_updates_that_arrive_before_the_snapshot_are_applied_after_it_without_duplicates():
    seq = Sequencer("e")
    publish(seq, 2)
    r = Replica()
    r.start(0.0)
    r.feed_update(upd(2, {"n": 1}), 0.0)  # already in the snapshot
    r.feed_update(upd(3), 0.0)
    seq.publish("t", "k", {"n": 3}, None, 0.0)  # seq 3, in the snapshot too
    serve(r, seq)
    evs = r.take_events()
    assert isinstance(evs[0], Reset)
    assert evs[1:] == []
    assert r.statistics().duplicates == 2
    assert r.last_seq("t") == 3


def test_a_duplicate_is_dropped_silently():
    seq = Sequencer("e")
    publish(seq, 1)
    r = joined(seq)
    r.feed_update(upd(1), 0.0)
    assert r.take_events() == []
    assert r.take_requests() == []
    assert r.statistics().duplicates == 1


def test_a_gap_is_detected_on_the_next_message_and_replayed_exactly():
    seq = Sequencer("e")
    r = joined(seq)
    publish(seq, 3)
    r.feed_update(upd(1, {"n": 0}), 0.0)
    r.feed_update(upd(3, {"n": 2}), 0.0)  # 2 lost
    assert r.take_requests() == [ReplayRequest("t", 1)]
    r._requests.append(ReplayRequest("t", 1))
    serve(r, seq)
    evs = r.take_events()
    assert [e.seq for e in evs if isinstance(e, Update)] == [1, 2, 3]
    assert evs[-1] == Recovered(Reason.GAP, "t", 2, snapshot=False)


def test_a_reordered_message_is_held_then_applied_in_order():
    seq = Sequencer("e")
    r = joined(seq)
    publish(seq, 2)
    r.feed_update(upd(2, {"n": 1}), 0.0)
    r.feed_update(upd(1, {"n": 0}), 0.0)
    evs = r.take_events()
    assert [e.seq for e in evs if isinstance(e, Update)] == [1, 2]
    serve(r, seq)  # the replay asked on the gap arrives late and changes nothing
    assert [e for e in r.take_events() if isinstance(e, Update)] == []


def test_a_heartbeat_head_beyond_the_last_applied_reveals_a_lost_tail():
    seq = Sequencer("e")
    r = joined(seq)
    publish(seq, 2)
    r.feed_heartbeat(Heartbeat("e", 0.0, seq.heads()), 0.0)
    assert r.take_requests() == [ReplayRequest("t", 0)]


def test_history_gone_falls_back_to_a_snapshot_and_never_replays_partially():
    seq = Sequencer("e")
    r = joined(seq)
    r.feed_update(upd(5), 0.0)
    (req,) = r.take_requests()
    r.feed_reply(req, ErrorReply("history_gone", "gone"), 0.0)
    assert r.take_requests() == [SnapshotRequest(("t",))]
    publish(seq, 5)
    r._requests.append(SnapshotRequest(("t",)))
    serve(r, seq)
    evs = r.take_events()
    assert not any(isinstance(e, Update) for e in evs)
    assert evs[-1] == Recovered(Reason.HISTORY_GONE, "t", 0, snapshot=True, skipped=5)
    assert r.get("t") == {"k": {"n": 4}}


def test_a_new_epoch_on_an_update_resnapshots_and_never_applies_the_old_epoch_again():
    old = Sequencer("e")
    publish(old, 2)
    r = joined(old)
    new = Sequencer("f")
    publish(new, 1)
    r.feed_update(Update("t", "k", {"n": 0}, 1, "f", 0.0, None), 0.0)
    serve(r, new)
    evs = r.take_events()
    assert isinstance(evs[0], Reset)
    assert evs[0].reason is Reason.EPOCH
    assert evs[1] == Recovered(Reason.EPOCH, None, 0, snapshot=True)
    r.feed_update(upd(3, epoch="e"), 0.0)  # a straggler of the old epoch
    assert r.take_events() == []
    assert r.statistics().old_epoch_dropped == 1
    assert r.epoch == "f"


def test_a_new_epoch_on_a_heartbeat_resnapshots():
    seq = Sequencer("e")
    r = joined(seq)
    r.feed_heartbeat(Heartbeat("other", 0.0, {}), 0.0)
    assert r.take_requests() == [SnapshotRequest(())]


def test_silence_is_reported_stale_once_and_recovered_when_heard_again():
    seq = Sequencer("e")
    r = joined(seq)
    r.tick(2.0)
    assert r.take_events() == []
    r.tick(3.5)
    r.tick(4.0)
    assert r.take_events() == [Stale(3.5)]
    r.feed_heartbeat(Heartbeat("e", 0.0, {}), 5.0)
    assert r.take_events() == [Recovered(Reason.STALE, None, 0, snapshot=False)]


def test_a_final_heartbeat_ends_the_epoch_without_calling_the_node_stale():
    seq = Sequencer("e")
    r = joined(seq)
    r.feed_heartbeat(Heartbeat("e", 0.0, {}, final=True), 0.0)
    r.tick(100.0)
    assert r.take_events() == [Ended("e")]


def test_resume_from_a_checkpoint_replays_only_the_missed_updates():
    seq = Sequencer("e")
    publish(seq, 3)
    r = joined(seq)
    cp = r.checkpoint()
    publish(seq, 2)
    r2 = Replica()
    r2.start(0.0, resume=cp)
    serve(r2, seq)
    evs = r2.take_events()
    assert [e.seq for e in evs if isinstance(e, Update)] == [4, 5]
    assert evs[-1] == Recovered(Reason.GAP, "t", 2, snapshot=False)


def test_resume_at_the_top_recovers_with_zero_updates():
    seq = Sequencer("e")
    publish(seq, 3)
    r = joined(seq)
    r2 = Replica()
    r2.start(0.0, resume=r.checkpoint())
    serve(r2, seq)
    assert r2.take_events() == [Recovered(Reason.GAP, "t", 0, snapshot=False)]


def test_resume_from_a_future_position_resnapshots():
    seq = Sequencer("e")
    publish(seq, 3)
    r = joined(seq)
    cp = r.checkpoint()
    cp = type(cp)(cp.epoch, cp.state, {"t": 99})
    r2 = Replica()
    r2.start(0.0, resume=cp)
    serve(r2, seq)
    serve(r2, seq)
    evs = r2.take_events()
    assert isinstance(evs[-1], Recovered)
    assert evs[-1].snapshot
    assert r2.last_seq("t") == 3
    assert r2.get("t") == {"k": {"n": 2}}


def test_statistics_count_what_happened():
    seq = Sequencer("e")
    r = joined(seq)
    stats = r.statistics()
    assert stats.snapshots == 1
    assert stats.applied == 0
    assert msgpack  # imported for parity with other core tests


def test_a_topic_held_live_but_missing_from_the_heads_lost_its_deletions_and_is_replayed():
    seq = Sequencer("e")
    seq.publish("t", "k", {"n": 1}, None, 0.0)
    r = joined(seq)
    dropped = seq.publish("t", "k", None, None, 0.0)  # the last key deleted; lost on the way
    assert dropped is not None
    r.feed_heartbeat(Heartbeat("e", 0.0, seq.heads()), 0.0)  # t is dead: not in the heads
    (req,) = r.take_requests()
    assert req == ReplayRequest("t", 1)
    body, _ = serve_sync_request(seq, encode_sync_request(req), 0.0)
    r.feed_reply(req, decode_sync_reply(body), 0.0)
    assert r.get("t") == {}
    assert [e.reason for e in r.take_events() if isinstance(e, Recovered)] == [Reason.GAP]


def test_a_dead_topic_missing_from_the_heads_is_no_gap():
    seq = Sequencer("e")
    seq.publish("t", "k", {"n": 1}, None, 0.0)
    r = joined(seq)
    deleted = seq.publish("t", "k", None, None, 0.0)
    assert deleted is not None
    r.feed_update(update_from_body("t", msgpack.unpackb(deleted.body)), 0.0)
    r.feed_heartbeat(Heartbeat("e", 0.0, seq.heads()), 0.0)
    assert r.take_requests() == []


def test_staleness_follows_the_interval_the_heartbeats_announce():
    seq = Sequencer("e")
    r = joined(seq)  # stale_after 3 s until the node says otherwise
    r.feed_heartbeat(Heartbeat("e", 0.0, {}, interval=5.0), 0.0)
    r.tick(10.0)  # two intervals of silence: not stale yet
    assert not any(isinstance(e, Stale) for e in r.take_events())
    r.tick(15.0)
    assert any(isinstance(e, Stale) for e in r.take_events())
