"""What a subscriber's events look like on the CLI: one JSON-able record each.

`watch`, `watch --display` and `demo` print the same records, so a script
reading any of them parses one shape: every line has an ``event`` key
(update, reset, recovered, stale, ended), updates carry topic, key, seq and
data. Pure: no I/O here.
"""

from __future__ import annotations

from typing import Any

from pipecast.transport import Ended, Recovered, Reset, Stale, Update

__all__ = ["event_record", "note_text"]


def event_record(ev: object) -> dict[str, Any] | None:
    """The record of one subscriber event; None for anything else.

    Runs on whatever thread delivers the event; never blocks, never raises.
    """
    if isinstance(ev, Update):
        return {
            "event": "update",
            "topic": ev.topic,
            "key": ev.key,
            "seq": ev.seq,
            "data": ev.data,
            "cid": ev.cid,
        }
    if isinstance(ev, Reset):
        return {
            "event": "reset",
            "epoch": ev.epoch,
            "reason": ev.reason.value if ev.reason else None,
            "state": {t: dict(kv) for t, kv in ev.state.items()},
        }
    if isinstance(ev, Recovered):
        return {
            "event": "recovered",
            "reason": ev.reason.value,
            "topic": ev.topic,
            "replayed": ev.replayed,
            "snapshot": ev.snapshot,
            "skipped": ev.skipped,
        }
    if isinstance(ev, Stale):
        return {"event": "stale", "silent_for": round(ev.silent_for, 3)}
    if isinstance(ev, Ended):
        return {"event": "ended", "epoch": ev.epoch}
    return None


def note_text(record: dict[str, Any]) -> str:
    """A recovery, staleness or end record as one human line, e.g.
    ``-- reason=gap topic=stage/encode replayed=3 snapshot=False skipped=0 (recovered)``."""
    fields = " ".join(f"{k}={v}" for k, v in record.items() if k != "event")
    return f"-- {fields} ({record['event']})"
