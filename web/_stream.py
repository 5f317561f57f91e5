"""The gateway's event stream: a bounded log of encoded events and the rules for resuming it. Pure.

Every event the gateway sends a browser is encoded once (JSON text) and kept
here under a number `n` (1, 2, ...) of this gateway's `epoch`; the SSE id of a
message is `EPOCH:N`, the number of its last event. A client that reconnects
with a `Last-Event-ID` is resumed by these rules:

* no id: a fresh start (snapshot; nothing to say to the person);
* an id of another epoch (the gateway restarted), an id that does not parse,
  one beyond the head, or one whose successors are no longer held (the log
  is bounded by count and bytes): RELOAD, a fresh snapshot that the page
  announces ("reconnected, state reloaded"), never a partial replay;
* otherwise REPLAY: exactly the events after it, in order.

A client is `behind` when more than `max_lag` events wait for it: it is cut
and resyncs by the same rules, never silently skipped. No sockets, threads or
clock; the gateway serialises access.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Resume", "ResumeKind", "StreamLog", "parse_event_id"]


class ResumeKind(enum.Enum):
    FRESH = "fresh"
    REPLAY = "replay"
    RELOAD = "reload"


@dataclass(frozen=True, slots=True)
class Resume:
    """How to continue a client: its kind, the events to replay, and why a reload."""

    kind: ResumeKind
    entries: tuple[tuple[int, str], ...] = ()
    why: str = ""
    at: int = 0  # REPLAY: the n the client saw last


def parse_event_id(text: str) -> tuple[str, int] | None:
    """`EPOCH:N` -> (epoch, n); None if it is not one (ids come from outside)."""
    epoch, sep, number = text.strip().partition(":")
    if not sep or not epoch or len(text) > 100 or not number.isdigit() or len(number) > 18:
        return None
    return epoch, int(number)


class StreamLog:
    """Encoded events `(n, text)`, the newest `max_entries` within `max_bytes`."""

    __slots__ = ("_base", "_bytes", "_entries", "epoch", "max_bytes", "max_entries", "trimmed")

    def __init__(self, epoch: str, max_entries: int = 10_000, max_bytes: int = 32 << 20) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a stream log holds at least one event")
        self.epoch = epoch
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: list[str] = []
        self._base = 1  # the n of _entries[0]
        self._bytes = 0
        self.trimmed = 0  # events dropped from the front, ever

    @property
    def head(self) -> int:
        """The n of the newest event (0 before the first)."""
        return self._base + len(self._entries) - 1

    @property
    def oldest(self) -> int:
        """The n of the oldest event held (head + 1 when none is)."""
        return self._base

    def __len__(self) -> int:
        return len(self._entries)

    def event_id(self, n: int) -> str:
        return f"{self.epoch}:{n}"

    def append(self, text: str) -> int:
        """Keep one encoded event; returns its n. Drops the oldest past the bounds."""
        self._entries.append(text)
        self._bytes += len(text)
        excess = 0
        while len(self._entries) - excess > self.max_entries or (
            self._bytes > self.max_bytes and len(self._entries) - excess > 1
        ):
            self._bytes -= len(self._entries[excess])
            excess += 1
        if excess:
            del self._entries[:excess]  # amortised: bounds are far above one batch
            self._base += excess
            self.trimmed += excess
        return self.head

    def since(self, n: int, most: int | None = None) -> tuple[tuple[int, str], ...] | None:
        """The events after n (at most `most`), or None if some of them are gone."""
        if n < self._base - 1 or n > self.head:
            return None
        start = n + 1 - self._base
        stop = len(self._entries) if most is None else min(len(self._entries), start + most)
        return tuple((self._base + i, self._entries[i]) for i in range(start, stop))

    def behind(self, n: int, max_lag: int) -> bool:
        """True if a client at n has more than `max_lag` events waiting, or lost some."""
        return self.head - n > max_lag or n < self._base - 1

    def resume(self, last_event_id: str | None) -> Resume:
        """How to continue a client that says it saw `last_event_id` (see module doc)."""
        if not last_event_id:
            return Resume(ResumeKind.FRESH)
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            return Resume(ResumeKind.RELOAD, why="unreadable event id")
        epoch, n = parsed
        if epoch != self.epoch:
            return Resume(ResumeKind.RELOAD, why="the gateway restarted")
        entries = self.since(n)
        if entries is None:
            why = "ahead of the stream" if n > self.head else "history gone"
            return Resume(ResumeKind.RELOAD, why=why)
        return Resume(ResumeKind.REPLAY, entries, at=n)
