"""The gateway's core shell: one replica of a node, turned into a stream for browsers.

A `Gateway` is a remote client of a node like any other: a `Subscriber`
(its own key) keeps the replica exact; every event it delivers is applied to
the gateway's own copy of the state and encoded once into the `StreamLog`,
both under one lock, so a snapshot and the stream position it was taken at
always agree. Browsers read the log from the event loop; the subscriber's
thread wakes them once per batch (`call_soon_threadsafe`), never per event.

Threads: the subscriber's thread runs `_on_event`; the event loop runs
`wait_beyond`; `snapshot` and `since` are safe from either. Nothing here
blocks on the network except `start` (which waits for the first snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from pipecast.transport import (
    ClientSecurity,
    Ended,
    Recovered,
    Reset,
    Stale,
    Subscriber,
    Update,
    apply_to_state,
)

from ._stream import Resume, ResumeKind, StreamLog

__all__ = ["Gateway", "GatewayConfig", "to_json"]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Where the node is, and how much of its stream the gateway keeps."""

    status: str
    sync: str
    control: str
    security: ClientSecurity | None = None
    max_entries: int = 10_000  # events held for replays
    max_bytes: int = 32 << 20
    max_lag: int = 5_000  # events waiting for one client before it is cut
    batch: int = 500  # events per SSE message at most
    timeout: float = 5.0  # control calls and the first snapshot


def _plain(value: Any) -> Any:
    """A msgpack value as JSON can carry it (bytes said, map keys as strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and math.isnan(value):  # JSON has no NaN
        return None
    return value


def to_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(_plain(value), separators=(",", ":"), allow_nan=False)


def _record(ev: object) -> dict[str, Any] | None:
    if isinstance(ev, Update):
        return {"t": "u", "topic": ev.topic, "key": ev.key, "data": ev.data, "seq": ev.seq}
    if isinstance(ev, Reset):
        reason = ev.reason.value if ev.reason else None
        state = {t: dict(kv) for t, kv in ev.state.items()}
        return {"t": "reset", "reason": reason, "epoch": ev.epoch, "state": state}
    if isinstance(ev, Recovered):
        return {"t": "recovered", "reason": ev.reason.value, "topic": ev.topic}
    if isinstance(ev, Stale):
        return {"t": "stale", "silent_for": round(ev.silent_for, 1)}
    if isinstance(ev, Ended):
        return {"t": "ended", "epoch": ev.epoch}
    return None


class Gateway:
    """One node's replica as a resumable stream (see module docstring)."""

    def __init__(self, config: GatewayConfig, epoch: str | None = None) -> None:
        self.config = config
        self.epoch = epoch or secrets.token_hex(6)
        self.log = StreamLog(self.epoch, config.max_entries, config.max_bytes)
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = {}
        self._seqs: dict[str, int] = {}
        self._node_epoch: str | None = None
        self._stale = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new = asyncio.Event()
        self._wake_pending = False
        self.closing = False  # streams end at their next look
        self._events = 0
        self._wakes = 0
        self._cut = 0
        self._started = time.monotonic()
        self.subscriber = Subscriber(
            config.status,
            config.sync,
            (),
            on_event=self._on_event,
            security=config.security,
            name="pipecast-web-subscriber",
        )

    # -- life (the caller's thread) ------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> Gateway:
        """Follow the node; blocks until the first snapshot (`NodeUnreachable` after
        `timeout`, `KeyRefused` if the node refuses the gateway's key)."""
        self._loop = loop
        self._new = asyncio.Event()
        self.subscriber.start()
        try:
            self.subscriber.wait_synced(self.config.timeout)
        except Exception:
            self.subscriber.stop()
            raise
        return self

    def stop(self) -> None:
        self.subscriber.stop()

    def close_streams(self) -> None:
        """Any thread: every open stream ends now (before the server stops), not after
        the server's grace period."""
        self.closing = True
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake)

    # -- the subscriber's thread ---------------------------------------------------------

    def _on_event(self, ev: object) -> None:
        record = _record(ev)
        if record is None:
            return
        with self._lock:
            if isinstance(ev, (Update, Reset)):
                apply_to_state(self._state, ev)
            if isinstance(ev, Update):
                self._seqs[ev.topic] = ev.seq
            elif isinstance(ev, Reset):
                self._node_epoch = ev.epoch
                for topic in ev.state:
                    self._seqs[topic] = self.subscriber.replica.last_seq(topic)
            elif isinstance(ev, Stale):
                self._stale = True
            elif isinstance(ev, Recovered):
                self._stale = False
            self.log.append(to_json(record))
            self._events += 1
            if self._wake_pending or self._loop is None:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop closed: the gateway is stopping
            self._loop.call_soon_threadsafe(self._wake)

    # -- the event loop ------------------------------------------------------------------

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False  # before the readers look: a later event wakes again
        self._wakes += 1
        new, self._new = self._new, asyncio.Event()
        new.set()

    async def wait_beyond(self, n: int, timeout: float) -> None:
        """Return once the log's head is past n, or after `timeout` seconds."""
        waiter = self._new
        if self.log.head > n or self.closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout)

    # -- any thread ----------------------------------------------------------------------

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """(the stream position, the state at it) — one consistent pair."""
        with self._lock:
            doc = {
                "gateway": self.epoch,
                "node_epoch": self._node_epoch,
                "stale": self._stale,
                "seqs": dict(self._seqs),
                "state": {t: dict(kv) for t, kv in self._state.items()},
            }
            return self.log.head, doc

    def since(self, n: int) -> tuple[tuple[int, str], ...] | None:
        with self._lock:
            if self.log.behind(n, self.config.max_lag):
                return None
            return self.log.since(n, self.config.batch)

    def resume(self, last_event_id: str | None) -> Resume:
        """`StreamLog.resume`, and a reload for a client too far behind to replay."""
        with self._lock:
            resume = self.log.resume(last_event_id)
        if resume.kind is ResumeKind.REPLAY and len(resume.entries) > self.config.max_lag:
            return Resume(ResumeKind.RELOAD, why="too far behind")
        return resume

    def count_cut(self) -> None:
        self._cut += 1

    def topic(self, name: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._state.get(name, {}))

    def statistics(self) -> dict[str, Any]:
        # the subscriber's lock first and apart: its thread holds it while it calls
        # _on_event, which takes ours; taking both here in the other order would deadlock
        received = self.subscriber.statistics().received
        with self._lock:
            return {
                "epoch": self.epoch,
                "events": self._events,
                "wakes": self._wakes,
                "head": self.log.head,
                "held": len(self.log),
                "trimmed": self.log.trimmed,
                "clients_cut": self._cut,
                "topics": len(self._state),
                "subscriber": {"received": received},
            }
