"""The wire format: round trips, and decoders that only ever raise their own errors."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.transport import (
    BadRequest,
    ErrorReply,
    Heartbeat,
    MalformedFrame,
    ProtocolError,
    ReplayReply,
    ReplayRequest,
    SnapshotReply,
    SnapshotRequest,
    TooLarge,
    UnknownOp,
    UnsupportedVersion,
    Update,
    decode_control_request,
    decode_status,
    decode_sync_reply,
    decode_sync_request,
    encode_error_reply,
    encode_heartbeat,
    encode_replay_reply,
    encode_snapshot_reply,
    encode_sync_request,
    encode_update,
    pack_data,
)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
maps = st.dictionaries(st.text(max_size=8), values, max_size=5)


@given(
    key=st.text(),
    data=st.none() | maps,
    seq=st.integers(1, 2**63),
    ts=st.floats(allow_nan=False),
    cid=st.none() | st.text(),
)
def test_update_round_trips_through_the_hand_built_encoder(key, data, seq, ts, cid):
    body = encode_update(key, data, seq, "e1", ts, cid)
    assert msgpack.unpackb(body) == {
        "v": 2,
        "epoch": "e1",
        "seq": seq,
        "ts": ts,
        "key": key,
        "data": data,
        "cid": cid,
    }
    assert decode_status([b"stage/x", body]) == Update("stage/x", key, data, seq, "e1", ts, cid)


def test_heartbeat_round_trips_with_and_without_final():
    hb = decode_status([b"_hb", encode_heartbeat("e", 2.5, {"a": 3})])
    assert hb == Heartbeat("e", 2.5, {"a": 3}, final=False)
    hb = decode_status([b"_hb", encode_heartbeat("e", 2.5, {}, final=True)])
    assert isinstance(hb, Heartbeat)
    assert hb.final


def test_snapshot_and_replay_replies_round_trip_from_preencoded_parts():
    snap = encode_snapshot_reply("e", {"t": 2}, [("t", "k", 2, pack_data({"x": 1}))])
    assert decode_sync_reply(snap) == SnapshotReply("e", {"t": 2}, (("t", "k", 2, {"x": 1}),))
    bodies = [encode_update("k", {"n": i}, i, "e", 1.0, None) for i in (3, 4)]
    rep = decode_sync_reply(encode_replay_reply("e", "t", bodies))
    assert isinstance(rep, ReplayReply)
    assert [u.seq for u in rep.items] == [3, 4]
    assert decode_sync_reply(encode_error_reply("history_gone", "x")) == ErrorReply(
        "history_gone", "x"
    )


def test_sync_requests_round_trip():
    for req in (SnapshotRequest(("a/", "b")), SnapshotRequest(()), ReplayRequest("t", 7)):
        assert decode_sync_request(encode_sync_request(req)) == req


@pytest.mark.parametrize(
    ("frames", "fragment"),
    [
        ([b"t"], "2 frames"),
        ([b"t", b"\xc1"], "msgpack"),
        ([b"t", msgpack.packb([1, 2])], "not a map"),
        (
            [
                b"t",
                msgpack.packb({"v": 1, "epoch": "e", "seq": 1, "ts": 1, "key": "k", "data": None}),
            ],
            "version",
        ),
        (
            [
                b"t",
                msgpack.packb({"v": 2, "epoch": "e", "seq": 0, "ts": 1, "key": "k", "data": None}),
            ],
            "seq",
        ),
        (
            [
                b"t",
                msgpack.packb(
                    {"v": 2, "epoch": "e", "seq": True, "ts": 1, "key": "k", "data": None}
                ),
            ],
            "seq",
        ),
        (
            [
                b"t",
                msgpack.packb({"v": 2, "epoch": "e", "seq": 1, "ts": 1, "key": "k", "data": [1]}),
            ],
            "data",
        ),
        ([b"t", msgpack.packb({"v": 2, "epoch": "e", "seq": 1, "ts": 1, "key": "k"})], "data"),
        ([b"\xff", encode_update("k", None, 1, "e", 1.0, None)], "UTF-8"),
        (
            [
                b"_hb",
                msgpack.packb({"v": 2, "epoch": "e", "ts": 1, "interval": 1.0, "heads": {"a": -1}}),
            ],
            "heads",
        ),
        ([b"_hb", msgpack.packb({"v": 2, "epoch": "e", "ts": 1, "heads": {}})], "interval"),
        (
            [b"_hb", msgpack.packb({"v": 2.0, "epoch": "e", "ts": 1, "interval": 1, "heads": {}})],
            "version 2",
        ),
    ],
)
def test_malformed_status_frames_raise_malformed_frame_saying_why(frames, fragment):
    with pytest.raises(MalformedFrame, match=fragment):
        decode_status(frames)


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\x93", BadRequest),
        (msgpack.packb("snapshot"), BadRequest),
        (msgpack.packb({"v": 2, "op": "drop_tables"}), UnknownOp),
        (msgpack.packb({"op": "snapshot"}), UnsupportedVersion),
        (msgpack.packb({"v": 1, "op": "snapshot"}), UnsupportedVersion),
        (msgpack.packb({"v": 2.0, "op": "snapshot"}), UnsupportedVersion),
        (msgpack.packb({"v": True, "op": "snapshot"}), UnsupportedVersion),
        (msgpack.packb({"v": 2, "op": "snapshot", "topics": ["a"] * 257}), TooLarge),
        (msgpack.packb({"v": 2, "op": "snapshot", "topics": ["a" * 257]}), TooLarge),
        (msgpack.packb({"v": 2, "op": "replay", "topic": "t", "after": 2**63}), BadRequest),
        (msgpack.packb({"v": 2, "op": "snapshot", "x": _nested(20)}), TooLarge),
        (b"\x00" * (1024 * 1024 + 1), TooLarge),
        (msgpack.packb({"v": 2, "op": "snapshot", "topics": "a"}), BadRequest),
        (msgpack.packb({"v": 2, "op": "replay", "topic": "t", "after": -1}), BadRequest),
        (msgpack.packb({"v": 2, "op": "replay", "topic": "", "after": 1}), BadRequest),
    ],
)
def test_bad_sync_requests_raise_typed_errors(body, error):
    with pytest.raises(error):
        decode_sync_request(body)


@given(st.lists(st.binary(max_size=64), max_size=4))
def test_decode_status_on_arbitrary_bytes_raises_only_malformed_frame(frames):
    with contextlib.suppress(MalformedFrame):
        decode_status(frames)


@given(topic=st.binary(max_size=8), body=values)
def test_decode_status_on_arbitrary_msgpack_raises_only_malformed_frame(topic, body):
    with contextlib.suppress(MalformedFrame):
        decode_status([topic, msgpack.packb(body)])


@given(
    body=st.binary(max_size=64)
    | values.map(msgpack.packb)
    | maps.map(lambda m: msgpack.packb({"v": 2, "op": "replay", **m}))
)
def test_decode_sync_request_on_arbitrary_input_raises_only_protocol_errors(body):
    with contextlib.suppress(ProtocolError):  # its subclasses: the typed errors
        decode_sync_request(body)


@given(
    body=st.binary(max_size=64)
    | values.map(msgpack.packb)
    | maps.map(lambda m: msgpack.packb({"v": 2, "op": "ping", **m}))
)
def test_decode_control_request_on_arbitrary_input_raises_only_protocol_errors(body):
    with contextlib.suppress(ProtocolError):
        request = decode_control_request(body)
        assert type(request.op) is str
        assert type(request.cid) is str


@given(
    body=st.binary(max_size=64)
    | values.map(msgpack.packb)
    | maps.map(lambda m: msgpack.packb({"v": 2, "op": "snapshot", "epoch": "e", **m}))
)
def test_decode_sync_reply_on_arbitrary_input_raises_only_malformed_frame(body):
    with contextlib.suppress(MalformedFrame):
        decode_sync_reply(body)


def test_pack_data_refuses_unencodable_values_with_bad_request():
    with pytest.raises(BadRequest):
        pack_data({"x": object()})
