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
from typing import Any

from ._errors import MalformedFrame
from ._wire import Update, update_from_body

__all__ = ["MAX_BATCH", "MAX_BATCH_BYTES", "batch_bodies", "updates_from_body"]

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


def updates_from_body(topic: str, body: Any, size: int) -> tuple[Update, ...]:
    """The updates of one decoded status body (`size`: its packed length).

    A map is one update; an array is a batch, checked against every rule of
    the protocol. `MalformedFrame` says which one a bad body breaks; nothing
    of a bad batch is applied.
    """
    if type(body) is not list:
        return (update_from_body(topic, body),)
    if not 0 < len(body) <= MAX_BATCH:
        raise MalformedFrame(f"a batch holds 1 to {MAX_BATCH} updates, not {len(body)}")
    if size > MAX_BATCH_BYTES:
        raise MalformedFrame(f"a batch is at most {MAX_BATCH_BYTES} bytes, not {size}")
    updates = tuple(update_from_body(topic, item) for item in body)
    first = updates[0]
    for i, u in enumerate(updates[1:], 1):
        if u.epoch != first.epoch:
            raise MalformedFrame("a batch's updates are of one epoch")
        if u.seq != first.seq + i:
            raise MalformedFrame("a batch's seqs are consecutive and increasing")
    return updates
