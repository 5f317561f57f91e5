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

What it keeps is bounded (`Limits`): the topics with a live key
(`live_topics`), the topics ever published in the epoch (`known_topics`: a
topic's seq never restarts, so a topic whose keys are all deleted is
remembered, but only by its head, and it drops out of `heads()`), and the
bytes of live values and history together (`retained_bytes`). A publication
that would pass a bound is refused with `TooLarge` (deletions never are); the
history gives way first: a topic's own oldest updates when it publishes, the
largest histories at `expire()`. A replay that needs them is `HistoryGone`,
which subscribers answer with a snapshot.

Pure: no sockets, threads or clock. The caller passes `now` in. Called from
the bridge actor's thread only; not thread-safe.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._errors import BadRequest, HistoryGone, TooLarge
from ._limits import Limits
from ._wire import UpdateEncoder
from ._wire import packb as _packb

__all__ = [
    "CLIENT_PREFIXES",
    "HistoryLimits",
    "Published",
    "Sequencer",
    "SequencerStatistics",
    "topic_matches",
]

# topics that clients make (by publishing, and by watching a topic): they share a
# part of the live topics (`client_topics`), so they can never crowd out the node's own
CLIENT_PREFIXES = ("ext/", "presence/")


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
    topics: int  # known in this epoch
    live_topics: int
    live_keys: int
    retained_bytes: int  # live values and history
    history_updates: int
    refused: int  # publications over a bound
    published: int
    unchanged_skipped: int
    replays_served: int
    replays_gone: int
    snapshots_served: int


def topic_matches(topic: str, prefixes: Iterable[str]) -> bool:
    """True if `topic` starts with any prefix; an empty prefix list matches all."""
    prefixes = tuple(prefixes)
    return not prefixes or topic.startswith(prefixes)


# a NamedTuple's own __new__ is Python code; this is the C constructor
_new_published = tuple.__new__


class _Topic:
    __slots__ = ("head", "history", "history_bytes", "values")

    def __init__(self) -> None:
        self.head = 0
        self.values: dict[str, tuple[int, bytes]] = {}
        # (seq, ts, body), oldest first
        self.history: deque[tuple[int, float, bytes]] = deque()
        self.history_bytes = 0


class Sequencer:
    """Sequences the updates of every topic of one epoch (see module docstring)."""

    def __init__(
        self, epoch: str, limits: HistoryLimits | None = None, bounds: Limits | None = None
    ) -> None:
        if not epoch:
            raise BadRequest("epoch must be a non-empty string")
        self.epoch = epoch
        self.limits = limits or HistoryLimits()
        self.bounds = bounds or Limits()
        self._max_age = self.limits.max_age
        self._max_updates = self.limits.max_updates
        self._encode = UpdateEncoder(epoch).encode
        self._topics: dict[str, _Topic] = {}
        self._heads: dict[str, int] = {}  # topics with a live key
        self._client_live = 0  # of which clients made
        self._live_bytes = 0
        self._history_bytes = 0
        self._refused = 0
        self._published = 0
        self._skipped = 0
        self._replays = 0
        self._replays_gone = 0
        self._snapshots = 0

    def publish(  # noqa: PLR0915 - every publication's path, kept in one frame
        self, topic: str, key: str, data: Any, cid: str | None, now: float
    ) -> Published | None:
        """Sequence one change; None if it changes nothing (skip-unchanged).

        Raises `BadRequest` for an invalid topic, key, value or cid, and
        `TooLarge` for one over a bound (`Limits`); then nothing is changed and
        no seq is used.
        """
        bounds = self.bounds
        # every publication's path: the valid case in one expression, the
        # explanation of an invalid one apart
        if not (
            type(topic) is str
            and type(key) is str
            and (data is None or type(data) is dict)
            and (cid is None or type(cid) is str)
            and 0 < len(topic) <= bounds.topic_chars
            and len(key) <= bounds.key_chars
            and topic != "_hb"
        ):
            self._check_publication(topic, key, data, cid)
        state = self._topics.get(topic)
        if data is None:
            if state is None or key not in state.values:
                self._skipped += 1
                return None
            data_b = b"\xc0"
            grows = -len(state.values[key][1])
        else:
            try:
                data_b = _packb(data)
            except (TypeError, ValueError, OverflowError) as exc:
                raise BadRequest(f"data cannot be encoded: {exc}") from None
            current = state.values.get(key) if state is not None else None
            if current is None:
                grows = len(data_b)
            elif current[1] == data_b:
                self._skipped += 1
                return None
            else:
                grows = len(data_b) - len(current[1])
            if (
                state is None
                or not state.values
                or self._live_bytes + grows > bounds.retained_bytes
            ):
                self._check_room(topic, state, grows)
        if state is None:
            state = self._topics[topic] = _Topic()
        seq = state.head + 1
        body = self._encode(key, data_b, seq, now, cid)
        state.head = seq
        values = state.values
        heads = self._heads
        if data is None:
            del values[key]
        else:
            values[key] = (seq, data_b)
        self._live_bytes += grows
        if values:
            if topic not in heads and topic.startswith(CLIENT_PREFIXES):
                self._client_live += 1  # it just became live
            heads[topic] = seq
        elif heads.pop(topic, None) is not None and topic.startswith(CLIENT_PREFIXES):
            self._client_live -= 1
        history = state.history
        history.append((seq, now, body))
        size = len(body)
        horizon, most = now - self._max_age, self._max_updates
        while history[0][1] < horizon or len(history) > most:
            size -= len(history.popleft()[2])  # _evict_oldest, inline: once a publication
        state.history_bytes += size
        self._history_bytes += size
        if self._live_bytes + self._history_bytes > bounds.retained_bytes:
            while self._retained() > bounds.retained_bytes and state.history:
                self._evict_oldest(state)  # the publisher's own history gives way first
        self._published += 1
        return _new_published(Published, (seq, body))

    def _check_publication(self, topic: str, key: str, data: Any, cid: str | None) -> None:
        if type(topic) is not str or not topic or topic == "_hb":
            raise BadRequest(f"invalid topic {topic!r}")
        if type(key) is not str:
            raise BadRequest(f"key must be a string, not {type(key).__name__}")
        if len(topic) > self.bounds.topic_chars or len(key) > self.bounds.key_chars:
            self._refused += 1
            raise TooLarge(
                f"a topic is at most {self.bounds.topic_chars} characters, "
                f"a key {self.bounds.key_chars}"
            )
        if data is not None and type(data) is not dict:
            raise BadRequest("data must be a map (dict) or None")
        if cid is not None and type(cid) is not str:
            raise BadRequest("cid must be a string or None")

    def _check_room(self, topic: str, state: _Topic | None, grows: int) -> None:
        """`TooLarge` if this publication would pass a bound (nothing changed yet)."""
        bounds = self.bounds
        if state is None and len(self._topics) >= bounds.known_topics:
            self._refused += 1
            raise TooLarge(f"the node holds {bounds.known_topics} topics already")
        if state is None or not state.values:  # it would become live
            if len(self._heads) >= bounds.live_topics:
                self._refused += 1
                raise TooLarge(f"the node holds {bounds.live_topics} live topics already")
            if self._client_live >= bounds.client_topics and topic.startswith(CLIENT_PREFIXES):
                self._refused += 1
                raise TooLarge(f"clients hold {bounds.client_topics} live topics already")
        if self._live_bytes + grows > bounds.retained_bytes:
            self._refused += 1
            raise TooLarge(
                f"publishing to {topic!r} would keep more than {bounds.retained_bytes} bytes"
            )

    def _evict_oldest(self, state: _Topic) -> None:
        _, _, body = state.history.popleft()
        state.history_bytes -= len(body)
        self._history_bytes -= len(body)

    def _retained(self) -> int:
        return self._live_bytes + self._history_bytes

    def heads(self) -> dict[str, int]:
        """Every topic with a live key, and its last seq (a copy)."""
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
        """Drop history older than the age bound from every topic, then, while the
        node keeps more than `retained_bytes`, the oldest of the largest histories."""
        for state in self._topics.values():
            self._expire_topic(state, now)
        if self._retained() <= self.bounds.retained_bytes:
            return
        for state in sorted(self._topics.values(), key=lambda t: -t.history_bytes):
            while state.history and self._retained() > self.bounds.retained_bytes:
                self._evict_oldest(state)
            if self._retained() <= self.bounds.retained_bytes:
                return

    def _expire_topic(self, state: _Topic, now: float) -> None:
        history, horizon = state.history, now - self.limits.max_age
        while history and history[0][1] < horizon:
            self._evict_oldest(state)

    def current(self, topic: str) -> dict[str, tuple[int, bytes]]:
        """The live keys of one topic with their seq and encoded value (a copy)."""
        state = self._topics.get(topic)
        return dict(state.values) if state is not None else {}

    def statistics(self) -> SequencerStatistics:
        return SequencerStatistics(
            topics=len(self._topics),
            live_topics=len(self._heads),
            live_keys=sum(len(t.values) for t in self._topics.values()),
            retained_bytes=self._retained(),
            history_updates=sum(len(t.history) for t in self._topics.values()),
            refused=self._refused,
            published=self._published,
            unchanged_skipped=self._skipped,
            replays_served=self._replays,
            replays_gone=self._replays_gone,
            snapshots_served=self._snapshots,
        )
