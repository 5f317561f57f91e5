"""Wire format of docs/PROTOCOL.md version 2: message values, encoders, decoders.

Pure: no sockets, no threads, no clock. Every decoder validates what it reads
and raises `MalformedFrame` (for frames off the status socket), or for sync
requests `BadRequest`, `TooLarge` (over a `Limits` bound) or
`UnsupportedVersion`, with a message saying what was wrong; nothing else
escapes, whatever bytes come in. `v` must be exactly the integer 2.

`Update` is a NamedTuple rather than a frozen dataclass on purpose: it is built
once per received message on the hot path, and tuple construction is several
times cheaper than a frozen dataclass's __init__. It is just as immutable.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack

from ._errors import BadRequest, MalformedFrame, TooLarge, UnknownOp, UnsupportedVersion
from ._limits import INT_MAX, Limits, check_value

__all__ = [
    "HEARTBEAT_TOPIC",
    "NODE_TOPIC",
    "PROTOCOL_VERSION",
    "ErrorReply",
    "Heartbeat",
    "ReplayReply",
    "ReplayRequest",
    "SnapshotReply",
    "SnapshotRequest",
    "Update",
    "UpdateEncoder",
    "decode_heartbeat",
    "decode_status",
    "decode_sync_reply",
    "decode_sync_request",
    "encode_error_reply",
    "encode_heartbeat",
    "encode_replay_reply",
    "encode_snapshot_reply",
    "encode_sync_request",
    "encode_update",
    "is_version",
    "pack_data",
    "packb",
    "unpack_status",
    "update_from_body",
]

PROTOCOL_VERSION = 2
HEARTBEAT_TOPIC = "_hb"
# a node's own facts; key `endpoints`: {status, sync, control} where it listens
NODE_TOPIC = "node"
_DEFAULT_LIMITS = Limits()
_HB_FRAME = HEARTBEAT_TOPIC.encode()

# Bounds on what a decoder will even try to unpack: a hostile peer must not be
# able to make us allocate without limit.
MAX_BODY_BYTES = 16 * 1024 * 1024


class Update(NamedTuple):
    """One change of one key of one topic, as published and as applied."""

    topic: str
    key: str
    data: Any  # a map, or None for a deletion
    seq: int
    epoch: str
    ts: float
    cid: str | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The `_hb` message: the node is alive, and these are the heads of its live topics.

    `interval` is the node's heartbeat interval in seconds: three of them
    without a word and the node is stale.
    """

    epoch: str
    ts: float
    heads: Mapping[str, int]
    interval: float = 1.0
    final: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """Ask for every live key of the topics matching any prefix ([] = all)."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """Ask for every update of `topic` with seq > `after`."""

    topic: str
    after: int


@dataclass(frozen=True, slots=True)
class SnapshotReply:
    """Every live key of the matching topics as of `heads`."""

    epoch: str
    heads: Mapping[str, int]
    items: tuple[tuple[str, str, int, Any], ...]


@dataclass(frozen=True, slots=True)
class ReplayReply:
    """The updates of one topic after the requested seq, in order."""

    epoch: str
    topic: str
    items: tuple[Update, ...]


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A sync or control error: `type` is one of PROTOCOL.md's error types."""

    type: str
    message: str


# -- encoding ---------------------------------------------------------------

_packer = msgpack.Packer(use_bin_type=True)


# the C packer's bound method: one call layer less on every publication
packb: Callable[[Any], bytes] = _packer.pack


def _packb(value: Any) -> bytes:
    out: bytes = _packer.pack(value)
    return out


def pack_data(data: Any) -> bytes:
    """Encode a value on its own; raises `BadRequest` if msgpack cannot encode it."""
    try:
        return _packb(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(f"data cannot be encoded: {exc}") from None


_KEY_CACHE = 4096


class UpdateEncoder:
    """Encodes update bodies for one epoch around an already-encoded value.

    The body is assembled from pieces: a prefix fixed for the epoch, seq and ts
    as fixed-width msgpack (uint 64, float 64) in one struct call, then key, cid
    and the value's own bytes. Keeping the value's bytes apart lets the
    sequencer compare, store and re-serve values without re-encoding, and makes
    what it keeps immune to the caller mutating its dict afterwards.
    """

    __slots__ = ("_keys", "_prefix")
    _mid = struct.Struct(">BQ3sBd4s").pack

    def __init__(self, epoch: str) -> None:
        self._prefix = b"\x87\xa1v\x02\xa5epoch" + _packb(epoch) + b"\xa3seq"
        # a node publishes under few keys, over and over: each encoded once
        self._keys: dict[str, bytes] = {}

    def encode(self, key: str, data_b: bytes, seq: int, ts: float, cid: str | None) -> bytes:
        key_b = self._keys.get(key)
        if key_b is None:
            key_b = _packb(key)
            if len(self._keys) < _KEY_CACHE:
                self._keys[key] = key_b
        return b"".join(
            (
                self._prefix,
                self._mid(0xCF, seq, b"\xa2ts", 0xCB, ts, b"\xa3key"),
                key_b,
                b"\xa3cid\xc0\xa4data" if cid is None else b"\xa3cid" + _packb(cid) + b"\xa4data",
                data_b,
            )
        )


def encode_update(key: str, data: Any, seq: int, epoch: str, ts: float, cid: str | None) -> bytes:
    """Encode one update body (the topic travels in frame 0, not in the body)."""
    return UpdateEncoder(epoch).encode(key, pack_data(data), seq, ts, cid)


def encode_heartbeat(
    epoch: str, ts: float, heads: Mapping[str, int], interval: float = 1.0, *, final: bool = False
) -> bytes:
    """Encode a heartbeat; `final` marks the last one of an epoch (node stopping)."""
    body: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "epoch": epoch,
        "ts": ts,
        "interval": float(interval),
        "heads": dict(heads),
    }
    if final:
        body["final"] = True
    return _packb(body)


def encode_sync_request(request: SnapshotRequest | ReplayRequest) -> bytes:
    if isinstance(request, SnapshotRequest):
        return _packb({"v": PROTOCOL_VERSION, "op": "snapshot", "topics": list(request.topics)})
    return _packb(
        {"v": PROTOCOL_VERSION, "op": "replay", "topic": request.topic, "after": request.after}
    )


def encode_snapshot_reply(
    epoch: str, heads: Mapping[str, int], rows: list[tuple[str, str, int, bytes]]
) -> bytes:
    """Build a snapshot reply from rows whose values are already encoded."""
    packer = msgpack.Packer(use_bin_type=True)
    pack = packer.pack
    parts = [
        packer.pack_map_header(5),
        pack("v"),
        pack(PROTOCOL_VERSION),
        pack("op"),
        pack("snapshot"),
        pack("epoch"),
        pack(epoch),
        pack("heads"),
        pack(dict(heads)),
        pack("items"),
        packer.pack_array_header(len(rows)),
    ]
    for topic, key, seq, data_b in rows:
        parts.append(b"\x94" + pack(topic) + pack(key) + pack(seq) + data_b)
    return b"".join(parts)


def encode_replay_reply(epoch: str, topic: str, bodies: list[bytes]) -> bytes:
    """Build the replay reply around update bodies that are already encoded.

    The history keeps each update's encoded body, so a replay of thousands of
    updates is a concatenation, not a re-encode: a msgpack array header followed
    by n encoded maps is exactly the encoding of the list of those maps.
    """
    packer = msgpack.Packer(use_bin_type=True)
    head = (
        packer.pack_map_header(5)
        + packer.pack("v")
        + packer.pack(PROTOCOL_VERSION)
        + packer.pack("op")
        + packer.pack("replay")
        + packer.pack("epoch")
        + packer.pack(epoch)
        + packer.pack("topic")
        + packer.pack(topic)
        + packer.pack("items")
        + packer.pack_array_header(len(bodies))
    )
    return bytes(head) + b"".join(bodies)


def encode_error_reply(wire_type: str, message: str) -> bytes:
    return _packb(
        {"v": PROTOCOL_VERSION, "op": "error", "error": {"type": wire_type, "message": message}}
    )


# -- decoding ---------------------------------------------------------------


def _unpack(body: bytes, error: type[Exception], max_bytes: int = MAX_BODY_BYTES) -> Any:
    if len(body) > max_bytes:
        too_large = TooLarge if error is BadRequest else error
        raise too_large(f"body of {len(body)} bytes exceeds {max_bytes}")
    try:
        # raw=False and strict_map_key=True are msgpack's defaults (>= 1.0)
        return msgpack.unpackb(body)
    except Exception as exc:  # msgpack raises many unrelated types on bad input
        raise error(f"body is not valid msgpack: {type(exc).__name__}: {exc}") from None


def _is_int(value: object) -> bool:
    return type(value) is int


def is_version(v: object) -> bool:
    """True only for this protocol's version: the integer 2 (not 2.0, not true)."""
    return type(v) is int and v == PROTOCOL_VERSION


# a NamedTuple's own __new__ is Python code; this is the C constructor
_new_update = tuple.__new__


def update_from_body(topic: str, body: Any) -> Update:
    """Validate a decoded update map and build its `Update`.

    The common, valid case is checked in one expression; anything that fails
    it goes through `_explain_update`, which raises saying exactly what is wrong.
    """
    try:
        v = body["v"]
        epoch = body["epoch"]
        seq = body["seq"]
        ts = body["ts"]
        key = body["key"]
        data = body["data"]
        cid = body.get("cid")
        if (
            type(v) is int
            and v == PROTOCOL_VERSION
            and type(epoch) is str
            and epoch
            and type(seq) is int
            and seq > 0
            and type(ts) is float
            and type(key) is str
            and (data is None or type(data) is dict)
            and (cid is None or type(cid) is str)
        ):
            return _new_update(Update, (topic, key, data, seq, epoch, ts, cid))
    except (KeyError, TypeError, AttributeError):
        pass
    return _explain_update(topic, body)


def _explain_update(topic: str, body: Any) -> Update:
    if type(body) is not dict:
        raise MalformedFrame(f"update body is {type(body).__name__}, not a map")
    try:
        v = body["v"]
        epoch = body["epoch"]
        seq = body["seq"]
        ts = body["ts"]
        key = body["key"]
        data = body["data"]
    except KeyError as exc:
        raise MalformedFrame(f"update lacks field {exc.args[0]!r}") from None
    cid = body.get("cid")
    if not is_version(v):
        raise MalformedFrame(f"unsupported protocol version {v!r}")
    if type(epoch) is not str or not epoch:
        raise MalformedFrame("epoch must be a non-empty string")
    if type(seq) is not int or seq < 1:
        raise MalformedFrame(f"seq must be an int >= 1, not {seq!r}")
    if type(ts) is not float and type(ts) is not int:
        raise MalformedFrame("ts must be a number")
    if type(key) is not str:
        raise MalformedFrame("key must be a string")
    if data is not None and type(data) is not dict:
        raise MalformedFrame("data must be a map or nil")
    if cid is not None and type(cid) is not str:
        raise MalformedFrame("cid must be a string or nil")
    return Update(topic, key, data, seq, epoch, float(ts), cid)


def _heartbeat_from_body(body: Any) -> Heartbeat:
    if type(body) is not dict or not is_version(body.get("v")):
        raise MalformedFrame("heartbeat body is not a version 2 map")
    epoch, ts, heads = body.get("epoch"), body.get("ts"), body.get("heads")
    interval = body.get("interval")
    if not isinstance(interval, float | int) or type(interval) is bool or not 0 < interval <= 3600:
        raise MalformedFrame("heartbeat interval must be a number of seconds in (0, 3600]")
    if type(epoch) is not str or not epoch:
        raise MalformedFrame("heartbeat epoch must be a non-empty string")
    if type(ts) is not float and type(ts) is not int:
        raise MalformedFrame("heartbeat ts must be a number")
    if type(heads) is not dict or not all(
        type(t) is str and _is_int(s) and s >= 0 for t, s in heads.items()
    ):
        raise MalformedFrame("heartbeat heads must map topic strings to seqs")
    return Heartbeat(epoch, float(ts), heads, float(interval), body.get("final") is True)


def unpack_status(body: bytes) -> Any:
    """Unpack a status body (bounded size); `MalformedFrame` if it is not msgpack."""
    return _unpack(body, MalformedFrame)


def decode_heartbeat(body: bytes) -> Heartbeat:
    """Decode a `_hb` body; `MalformedFrame` if invalid."""
    return _heartbeat_from_body(_unpack(body, MalformedFrame))


def decode_status(frames: list[bytes]) -> Update | Heartbeat:
    """Decode one message from the status socket.

    Raises `MalformedFrame` for anything that is not a valid update or
    heartbeat: wrong frame count, non-UTF-8 topic, bad msgpack, bad fields.
    """
    if len(frames) != 2:
        raise MalformedFrame(f"expected 2 frames, got {len(frames)}")
    topic_b, body_b = frames
    body = _unpack(body_b, MalformedFrame)
    if topic_b == _HB_FRAME:
        return _heartbeat_from_body(body)
    try:
        topic = topic_b.decode()
    except UnicodeDecodeError:
        raise MalformedFrame("topic frame is not UTF-8") from None
    return update_from_body(topic, body)


def decode_sync_request(
    body_b: bytes, limits: Limits = _DEFAULT_LIMITS
) -> SnapshotRequest | ReplayRequest:
    """Decode a request to the sync socket within `limits`.

    Raises `TooLarge`, `BadRequest`, `UnsupportedVersion` or `UnknownOp`.
    """
    body = _unpack(body_b, BadRequest, limits.request_bytes)
    if type(body) is not dict:
        raise BadRequest("request must be a msgpack map")
    check_value(body, limits, "the request")
    if not is_version(body.get("v")):
        raise UnsupportedVersion(f"protocol version {body.get('v')!r}: this node speaks 2")
    op = body.get("op")
    if op == "snapshot":
        topics = body.get("topics", [])
        if type(topics) is not list or not all(type(t) is str for t in topics):
            raise BadRequest("snapshot topics must be a list of prefix strings")
        if len(topics) > limits.prefixes:
            raise TooLarge(f"at most {limits.prefixes} prefixes per snapshot")
        if any(len(t) > limits.topic_chars for t in topics):
            raise TooLarge(f"a prefix is over {limits.topic_chars} characters")
        return SnapshotRequest(tuple(dict.fromkeys(topics)))
    if op == "replay":
        topic, after = body.get("topic"), body.get("after")
        if type(topic) is not str or not topic:
            raise BadRequest("replay topic must be a non-empty string")
        if len(topic) > limits.topic_chars:
            raise TooLarge(f"the topic is over {limits.topic_chars} characters")
        if type(after) is not int or not 0 <= after <= INT_MAX:
            raise BadRequest("replay after must be an int from 0 to 2**63 - 1")
        return ReplayRequest(topic, after)
    raise UnknownOp(f"unknown sync op {op!r}")


def decode_sync_reply(body_b: bytes) -> SnapshotReply | ReplayReply | ErrorReply:
    """Decode a reply from the sync socket; raises `MalformedFrame` if invalid."""
    body = _unpack(body_b, MalformedFrame)
    if type(body) is not dict or not is_version(body.get("v")):
        raise MalformedFrame("reply is not a version 2 map")
    op = body.get("op")
    if op == "error":
        err = body.get("error")
        if type(err) is not dict:
            raise MalformedFrame("error reply lacks its error map")
        return ErrorReply(str(err.get("type", "internal")), str(err.get("message", "")))
    epoch = body.get("epoch")
    if type(epoch) is not str or not epoch:
        raise MalformedFrame("reply epoch must be a non-empty string")
    items = body.get("items")
    if type(items) is not list:
        raise MalformedFrame("reply items must be a list")
    if op == "snapshot":
        heads = body.get("heads")
        if type(heads) is not dict or not all(
            type(t) is str and _is_int(s) for t, s in heads.items()
        ):
            raise MalformedFrame("snapshot heads must map topics to seqs")
        rows: list[tuple[str, str, int, Any]] = []
        for row in items:
            if (
                type(row) is not list
                or len(row) != 4
                or type(row[0]) is not str
                or type(row[1]) is not str
                or not _is_int(row[2])
                or type(row[3]) is not dict
            ):
                raise MalformedFrame("snapshot item must be [topic, key, seq, map]")
            rows.append((row[0], row[1], row[2], row[3]))
        return SnapshotReply(epoch, heads, tuple(rows))
    if op == "replay":
        topic = body.get("topic")
        if type(topic) is not str:
            raise MalformedFrame("replay reply topic must be a string")
        return ReplayReply(epoch, topic, tuple(update_from_body(topic, b) for b in items))
    raise MalformedFrame(f"unknown reply op {op!r}")
