"""Status batches: several consecutive updates of one topic in one message. Pure.

Protocol version 2 lets a status message's body be an array of 1 to
`MAX_BATCH` update maps, all of the message's topic and epoch, with
consecutive seqs in increasing order, at most `MAX_BATCH_BYTES` packed. A
batch is all or nothing: it arrives whole or not at all, and the subscriber
applies its updates in order as if each had come alone, so the replica's
rules (duplicate, gap, epoch) see exactly the stream they would have seen.

A publisher batches only what it already holds (`batch_bodies` packs bodies
it was given; it never waits for more). Each update map is encoded once; a
batch is an array header followed by those encodings, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

from ._errors import MalformedFrame
from ._wire import MAX_BODY_BYTES, Update, unpack_status, update_from_body

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "batch_bodies",
    "decode_updates",
    "updates_from_body",
]

MAX_BATCH = 256
MAX_BATCH_BYTES = 256 * 1024


def _array_header(n: int) -> bytes:
    # msgpack: fixarray up to 15 elements, else array 16 (n <= 256 here)
    return bytes((0x90 | n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big")


def batch_bodies(bodies: Sequence[bytes]) -> list[bytes]:
    """Consecutive update bodies of one topic, as few message bodies as the bounds allow.

    A lone body stays a plain update map (what every version 2 subscriber reads);
    runs become arrays of at most `MAX_BATCH` bodies and `MAX_BATCH_BYTES` bytes.
    A single body over the byte bound travels alone, as it would unbatched.
    """
    out: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for body in bodies:
        if run and (len(run) == MAX_BATCH or size + len(body) + 3 > MAX_BATCH_BYTES):
            out.append(_pack(run))
            run, size = [], 0
        run.append(body)
        size += len(body)
    if run:
        out.append(_pack(run))
    return out


def _pack(run: list[bytes]) -> bytes:
    return run[0] if len(run) == 1 else _array_header(len(run)) + b"".join(run)


def updates_from_body(topic: str, body: Any, size: int) -> list[Update]:
    """The updates of one decoded status body (`size`: its packed length).

    A map is one update; an array is a batch, checked against every rule of
    the protocol. `MalformedFrame` says which one a bad body breaks; nothing
    of a bad batch is applied.
    """
    if type(body) is not list:
        return [update_from_body(topic, body)]
    if not 0 < len(body) <= MAX_BATCH:
        raise MalformedFrame(f"a batch holds 1 to {MAX_BATCH} updates, not {len(body)}")
    if size > MAX_BATCH_BYTES:
        raise MalformedFrame(f"a batch is at most {MAX_BATCH_BYTES} bytes, not {size}")
    updates = [update_from_body(topic, item) for item in body]
    first = updates[0]
    epoch, seq = first.epoch, first.seq
    for u in updates:
        if u.seq != seq:
            raise MalformedFrame("a batch's seqs are consecutive and increasing")
        if u.epoch != epoch:
            raise MalformedFrame("a batch's updates are of one epoch")
        seq += 1
    return updates


# -- the subscriber's decoding of a status body ------------------------------------


class _WireUpdate(msgspec.Struct, gc=False):
    """An update map exactly as the valid case reads (field names are the wire's)."""

    v: Literal[2]
    epoch: Annotated[str, msgspec.Meta(min_length=1)]
    seq: Annotated[int, msgspec.Meta(ge=1)]
    ts: float
    key: str
    data: dict[str, Any] | None
    cid: str | None = None


_decode_valid = msgspec.msgpack.Decoder(_WireUpdate | list[_WireUpdate]).decode
_new_update = tuple.__new__  # a NamedTuple's own __new__ is Python code


def decode_updates(topic: str, body_b: bytes) -> list[Update]:
    """The updates of one status body, still packed: one, or a whole batch.

    Every subscriber's path for every update. Decodes and checks the valid case
    in one C pass (msgspec, typed); a body that does not read as that case is
    decoded again the general way, which accepts what the protocol allows beyond
    it (such as an integer `ts`) or raises `MalformedFrame` saying what is wrong.
    The rules of `updates_from_body`, with one difference: a map nested inside a
    value is taken with whatever keys it has, where msgpack's decoder refuses
    keys that are not strings (the node checked every value as plain data when
    it was published, and a subscriber only reads a node whose key it pinned).
    """
    if len(body_b) > MAX_BODY_BYTES:
        raise MalformedFrame(f"body of {len(body_b)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        got = _decode_valid(body_b)
    except (msgspec.DecodeError, RecursionError):
        return updates_from_body(topic, unpack_status(body_b), len(body_b))
    if not isinstance(got, list):
        w = got
        return [_new_update(Update, (topic, w.key, w.data, w.seq, w.epoch, w.ts, w.cid))]
    if not 0 < len(got) <= MAX_BATCH or len(body_b) > MAX_BATCH_BYTES:
        return updates_from_body(topic, unpack_status(body_b), len(body_b))  # says which
    epoch, seq = got[0].epoch, got[0].seq
    updates = []
    for w in got:
        if w.seq != seq or w.epoch != epoch:
            return updates_from_body(topic, unpack_status(body_b), len(body_b))
        updates.append(_new_update(Update, (topic, w.key, w.data, seq, epoch, w.ts, w.cid)))
        seq += 1
    return updates
