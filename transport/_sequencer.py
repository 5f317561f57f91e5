"""Publisher side of the bus: sequencing, latest values, bounded history.

Theory of operation. A node has one `Sequencer` per epoch. Every topic is a
key-value map; `publish()` gives each change of a topic the next seq (1, 2, 3,
... with no gaps), keeps the key's latest encoded value for snapshots and the
encoded update in a bounded history for replays. A change that leaves a key's
value as it was is not published at all (skip-unchanged): watchers only ever
see real changes, and the seq stream stays dense.

The history of a topic is contiguous by construction (appended in order,
evicted from the old end only), so a replay from `after` is either exactly the
updates `after+1 .. head`, or `HistoryGone`: never a partial answer.

Pure: no sockets, threads or clock. The caller passes `now` in. Called from
the bridge actor's thread only; not thread-safe.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._errors import BadRequest, HistoryGone
from ._wire import UpdateEncoder, pack_data

__all__ = ["HistoryLimits", "Published", "Sequencer", "SequencerStatistics", "topic_matches"]


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """How far back a topic's history reaches: both bounds apply."""

    max_updates: int = 10_000
    max_age: float = 60.0

    def __post_init__(self) -> None:
        if type(self.max_updates) is not int or self.max_updates < 1:
            raise BadRequest("history max_updates must be an int >= 1")
        if not self.max_age > 0:
            raise BadRequest("history max_age must be > 0 seconds")


class Published(NamedTuple):
    """What `publish()` produced: the seq given and the encoded body to send."""

    seq: int
    body: bytes


@dataclass(frozen=True, slots=True)
class SequencerStatistics:
    topics: int
    live_keys: int
    history_updates: int
    published: int
    unchanged_skipped: int
    replays_served: int
    replays_gone: int
    snapshots_served: int


def topic_matches(topic: str, prefixes: Iterable[str]) -> bool:
    """True if `topic` starts with any prefix; an empty prefix list matches all."""
    prefixes = tuple(prefixes)
    return not prefixes or topic.startswith(prefixes)


class _Topic:
    __slots__ = ("head", "history", "values")

    def __init__(self, max_updates: int) -> None:
        self.head = 0
        self.values: dict[str, tuple[int, bytes]] = {}
        # (seq, ts, body); maxlen enforces the count bound on append
        self.history: deque[tuple[int, float, bytes]] = deque(maxlen=max_updates)


class Sequencer:
    """Sequences the updates of every topic of one epoch (see module docstring)."""

    def __init__(self, epoch: str, limits: HistoryLimits | None = None) -> None:
        if not epoch:
            raise BadRequest("epoch must be a non-empty string")
        self.epoch = epoch
        self.limits = limits or HistoryLimits()
        self._max_age = self.limits.max_age
        self._encoder = UpdateEncoder(epoch)
        self._topics: dict[str, _Topic] = {}
        self._heads: dict[str, int] = {}
        self._published = 0
        self._skipped = 0
        self._replays = 0
        self._replays_gone = 0
        self._snapshots = 0

    def publish(
        self, topic: str, key: str, data: Any, cid: str | None, now: float
    ) -> Published | None:
        """Sequence one change; None if it changes nothing (skip-unchanged).

        Raises `BadRequest` for an invalid topic, key, value or cid; then
        nothing is changed and no seq is used.
        """
        if type(topic) is not str or not topic or topic == "_hb":
            raise BadRequest(f"invalid topic {topic!r}")
        if type(key) is not str:
            raise BadRequest(f"key must be a string, not {type(key).__name__}")
        if data is not None and type(data) is not dict:
            raise BadRequest("data must be a map (dict) or None")
        if cid is not None and type(cid) is not str:
            raise BadRequest("cid must be a string or None")
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic(self.limits.max_updates)
        if data is None:
            if key not in state.values:
                self._skipped += 1
                return None
            data_b = b"\xc0"
        else:
            data_b = pack_data(data)
            current = state.values.get(key)
            if current is not None and current[1] == data_b:
                self._skipped += 1
                return None
        seq = state.head + 1
        body = self._encoder.encode(key, data_b, seq, now, cid)
        state.head = seq
        self._heads[topic] = seq
        if data is None:
            del state.values[key]
        else:
            state.values[key] = (seq, data_b)
        history = state.history
        history.append((seq, now, body))
        horizon = now - self._max_age
        while history[0][1] < horizon:
            history.popleft()
        self._published += 1
        return Published(seq, body)

    def heads(self) -> dict[str, int]:
        """Every topic with at least one update, and its last seq (a copy)."""
        return dict(self._heads)

    def snapshot_rows(
        self, prefixes: Iterable[str]
    ) -> tuple[dict[str, int], list[tuple[str, str, int, bytes]]]:
        """The heads and live keys of the matching topics, values still encoded."""
        prefixes = tuple(prefixes)
        heads: dict[str, int] = {}
        rows: list[tuple[str, str, int, bytes]] = []
        for name, state in self._topics.items():
            if not topic_matches(name, prefixes):
                continue
            heads[name] = state.head
            rows.extend((name, key, seq, data_b) for key, (seq, data_b) in state.values.items())
        self._snapshots += 1
        return heads, rows

    def replay(self, topic: str, after: int, now: float) -> list[bytes]:
        """The encoded updates of `topic` with seq > `after`, oldest first.

        Raises `HistoryGone` if the history no longer reaches back to
        `after + 1` (then the client must snapshot), and `BadRequest` for a
        position beyond the head (a bogus or foreign position).
        """
        state = self._topics.get(topic)
        head = state.head if state is not None else 0
        if after > head:
            raise BadRequest(f"position {after} is beyond the head {head} of {topic!r}")
        if state is None or after == head:
            self._replays += 1
            return []
        self._expire_topic(state, now)
        history = state.history
        oldest = history[0][0] if history else head + 1
        if after < oldest - 1:
            self._replays_gone += 1
            raise HistoryGone(
                f"history of {topic!r} starts at seq {oldest}; updates after {after} are gone"
            )
        self._replays += 1
        return [body for _, _, body in itertools.islice(history, after - oldest + 1, None)]

    def expire(self, now: float) -> None:
        """Drop history older than the age bound from every topic."""
        for state in self._topics.values():
            self._expire_topic(state, now)

    def _expire_topic(self, state: _Topic, now: float) -> None:
        history, horizon = state.history, now - self.limits.max_age
        while history and history[0][1] < horizon:
            history.popleft()

    def current(self, topic: str) -> dict[str, tuple[int, bytes]]:
        """The live keys of one topic with their seq and encoded value (a copy)."""
        state = self._topics.get(topic)
        return dict(state.values) if state is not None else {}

    def statistics(self) -> SequencerStatistics:
        return SequencerStatistics(
            topics=len(self._topics),
            live_keys=sum(len(t.values) for t in self._topics.values()),
            history_updates=sum(len(t.history) for t in self._topics.values()),
            published=self._published,
            unchanged_skipped=self._skipped,
            replays_served=self._replays,
            replays_gone=self._replays_gone,
            snapshots_served=self._snapshots,
        )
