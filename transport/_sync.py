"""Serving the sync socket: request bytes in, reply bytes out.

Pure: the bridge's socket loop hands each request body here and sends back
what it returns. Bad requests become error replies; nothing raises.
"""

from __future__ import annotations

from ._errors import PipecastError, TooLarge
from ._sequencer import Sequencer
from ._wire import (
    SnapshotRequest,
    decode_sync_request,
    encode_error_reply,
    encode_replay_reply,
    encode_snapshot_reply,
)

__all__ = ["serve_sync_request"]


def serve_sync_request(sequencer: Sequencer, body: bytes, now: float) -> tuple[bytes, str | None]:
    """Answer one sync request (snapshot or replay) from `sequencer`'s state.

    Returns the reply body and, for an error reply, its error type. Runs in
    the thread that owns `sequencer`. Never raises for bad input: a malformed
    or unknown request gets an error reply of the matching type.
    """
    try:
        request = decode_sync_request(body, sequencer.bounds)
        if isinstance(request, SnapshotRequest):
            heads, rows = sequencer.snapshot_rows(request.topics)
            size = sum(len(row[3]) for row in rows)
            if size > sequencer.bounds.reply_bytes:
                raise TooLarge(
                    f"a snapshot of {size} bytes is over {sequencer.bounds.reply_bytes}: "
                    "ask for narrower prefixes"
                )
            return encode_snapshot_reply(sequencer.epoch, heads, rows), None
        bodies = sequencer.replay(request.topic, request.after, now)
        return encode_replay_reply(sequencer.epoch, request.topic, bodies), None
    except PipecastError as exc:
        return encode_error_reply(exc.wire_type, str(exc)), exc.wire_type
