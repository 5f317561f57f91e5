"""Subscriber side of the bus: a replica that is always right or says it is not.

Theory of operation. A `Replica` holds the subscriber's copy of every topic
matching its prefixes and decides, message by message, what to do:

* JOIN. `start()` asks for a snapshot. Updates that arrive before it are
  buffered, then applied on top of it (older ones drop as duplicates), so a
  joiner never misses what was published while the snapshot was being made.
* LIVE. An update is applied only if its seq is the topic's last + 1. A seq at
  or below the last is a duplicate and is dropped. A seq beyond it is a gap:
  the update is held, a replay from the last applied seq is requested, and the
  held updates are applied once the hole is filled. A heartbeat whose head for
  a topic is beyond the last applied reveals a lost tail the same way; so does
  a topic we hold live keys of that is missing from the heartbeat's heads
  (which list only topics with a live key): its deletions were lost.
* HISTORY GONE. If the node's history no longer reaches back, the topic is
  re-read from a snapshot instead (never a partial replay).
* EPOCH. An update, heartbeat or reply from a new epoch means the node
  restarted: everything is re-read from a snapshot, and nothing of the old
  epoch is applied after that.
* STALE. No message from the node for three of its heartbeat intervals (as
  its heartbeats say; `stale_after` until one is heard): the replica says so,
  and says so again when the node is heard from.

Every recovery ends in a `Recovered` event with its reason; every wholesale
replacement of a topic's state is a `Reset` event carrying the new state. The
user is never left with a silently wrong view.

Pure: no sockets, threads or clock (`now` is passed in). The I/O shell sends
the requests `take_requests()` returns and feeds back what it receives. Not
thread-safe: one thread owns a replica.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import ErrorType
from ._replica_events import (
    Checkpoint,
    Ended,
    Event,
    Reason,
    Recovered,
    ReplicaStatistics,
    Reset,
    Stale,
    apply_to_state,
)
from ._sequencer import topic_matches
from ._wire import (
    ErrorReply,
    Heartbeat,
    ReplayReply,
    ReplayRequest,
    SnapshotReply,
    SnapshotRequest,
    Update,
)

__all__ = [  # the events are defined in _replica_events and named here too
    "Checkpoint",
    "Ended",
    "Event",
    "Reason",
    "Recovered",
    "Replica",
    "ReplicaStatistics",
    "Request",
    "Reset",
    "Stale",
    "apply_to_state",
]


Request = SnapshotRequest | ReplayRequest


class _Kind(enum.Enum):
    REPLAY = "replay"
    SNAPSHOT = "snapshot"


@dataclass(slots=True)
class _Recovery:
    kind: _Kind
    reason: Reason
    held: dict[int, Update] = field(default_factory=dict)
    attempts: int = 1
    replayed: int = 0
    skipped: int = 0


class Replica:
    """The subscriber state machine (see module docstring)."""

    def __init__(
        self,
        prefixes: Iterable[str] = (),
        *,
        stale_after: float = 3.0,
        max_held: int = 100_000,
    ) -> None:
        self.prefixes = tuple(prefixes)
        self.stale_after = stale_after
        self._configured_stale_after = stale_after
        self.max_held = max_held
        self.epoch: str | None = None
        # Epochs we have moved on from: anything still arriving from them is
        # old news (queued before a restart) and must never be applied.
        self._retired: deque[str] = deque(maxlen=16)
        self._state: dict[str, dict[str, Any]] = {}
        self._last: dict[str, int] = {}
        self._syncing = False
        self._sync_reason: Reason | None = None
        self._buffer: list[Update] = []
        self._recovering: dict[str, _Recovery] = {}
        self._events: deque[Event] = deque()
        self._requests: list[Request] = []
        self._last_heard: float | None = None
        self._stale = False
        self._ended = False
        self._applied = 0
        self._duplicates = 0
        self._gaps = 0
        self._replays = 0
        self._snapshots = 0
        self._recoveries: dict[str, int] = {r.value: 0 for r in Reason}
        self._old_epoch_dropped = 0

    # -- reading ------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once a snapshot was applied and no full resync is under way."""
        return self.epoch is not None and not self._syncing

    @property
    def stale(self) -> bool:
        return self._stale

    @property
    def recovering(self) -> bool:
        """True while any recovery (resync, replay, topic snapshot) is under way."""
        return self._syncing or bool(self._recovering)

    def topics(self) -> list[str]:
        return list(self._state)

    def get(self, topic: str) -> dict[str, Any]:
        """A copy of one topic's key-value map."""
        return dict(self._state.get(topic, {}))

    def state(self) -> dict[str, dict[str, Any]]:
        """A copy of every topic's key-value map."""
        return {t: dict(kv) for t, kv in self._state.items()}

    def last_seq(self, topic: str) -> int:
        return self._last.get(topic, 0)

    def take_events(self) -> list[Event]:
        events = list(self._events)
        self._events.clear()
        return events

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def take_requests(self) -> list[Request]:
        requests, self._requests = self._requests, []
        return requests

    def statistics(self) -> ReplicaStatistics:
        return ReplicaStatistics(
            applied=self._applied,
            duplicates=self._duplicates,
            old_epoch_dropped=self._old_epoch_dropped,
            gaps=self._gaps,
            replays=self._replays,
            snapshots=self._snapshots,
            recoveries=dict(self._recoveries),
            topics=len(self._state),
            keys=sum(len(kv) for kv in self._state.values()),
            held=len(self._buffer) + sum(len(r.held) for r in self._recovering.values()),
        )

    # -- feeding ------------------------------------------------------------

    def checkpoint(self) -> Checkpoint | None:
        """The replica's position and state, to resume from later (None before sync)."""
        if self.epoch is None or self._syncing:
            return None
        return Checkpoint(self.epoch, self.state(), dict(self._last))

    def start(self, now: float, resume: Checkpoint | None = None) -> None:
        """Begin: request the first snapshot, or resume from a checkpoint.

        Resuming asks for a replay of each topic after its saved seq: only the
        updates missed while away travel. A topic whose history is gone, or a
        checkpoint of another epoch, falls back to a snapshot as usual.
        """
        self._last_heard = now
        if resume is None:
            self._begin_sync(None)
            return
        self.epoch = resume.epoch
        self._state = {t: dict(kv) for t, kv in resume.state.items()}
        self._last = {t: s for t, s in resume.last.items() if s > 0}
        for topic in self._last:
            self._request_replay(topic, _Recovery(_Kind.REPLAY, Reason.GAP))

    def feed_update(self, update: Update, now: float) -> None:
        """Feed one decoded update from the status socket, in arrival order."""
        self._last_heard = now
        if self._stale or self._ended:
            self._heard(now)
        # The common case, inline: live, same epoch, the next seq, no recovery.
        topic = update.topic
        if (
            not self._syncing
            and update.epoch == self.epoch
            and update.seq == self._last.get(topic, 0) + 1
            and topic not in self._recovering
        ):
            self._apply(update)
            return
        self._on_update(update)

    def feed_batch(self, updates: Sequence[Update], now: float) -> None:
        """Feed the updates of one status message, in order, as `feed_update` each.

        `updates` is what `updates_from_body` gives: one topic, one epoch,
        consecutive seqs. A batch that continues the topic where the replica is
        applies in one step; any other goes through `feed_update` update by update.
        """
        first = updates[0]
        topic = first.topic
        self._last_heard = now
        if self._stale or self._ended:
            self._heard(now)
        if (
            not self._syncing
            and first.epoch == self.epoch
            and first.seq == self._last.get(topic, 0) + 1
            and updates[-1].seq == first.seq + len(updates) - 1
            and topic not in self._recovering
        ):
            kv = self._state.get(topic)
            if kv is None:
                kv = self._state[topic] = {}
            for u in updates:
                if u.data is None:
                    kv.pop(u.key, None)
                else:
                    kv[u.key] = u.data
            self._last[topic] = updates[-1].seq
            self._applied += len(updates)
            self._events.extend(updates)
            return
        for u in updates:
            self.feed_update(u, now)

    def feed_heartbeat(self, hb: Heartbeat, now: float) -> None:
        """Feed one heartbeat from the status socket, in arrival order."""
        self._heard(now)
        # the node says how often it speaks: silent for three of those is stale
        self.stale_after = max(self._configured_stale_after, 3.0 * hb.interval)
        if hb.epoch != self.epoch and hb.epoch in self._retired:
            self._old_epoch_dropped += 1
            return
        if not self._syncing:
            if hb.epoch != self.epoch:
                self._begin_sync(Reason.EPOCH)
            else:
                self._check_heads(hb.heads)
        if hb.final:
            self._ended = True
            self._events.append(Ended(hb.epoch))

    def _check_heads(self, heads: Mapping[str, int]) -> None:
        last = self._last
        for topic, head in heads.items():
            if (
                head > last.get(topic, 0)
                and topic not in self._recovering
                and topic_matches(topic, self.prefixes)
            ):
                self._gaps += 1
                self._request_replay(topic, _Recovery(_Kind.REPLAY, Reason.GAP))
        # heads list only topics with a live key: one we hold live keys of and
        # that is missing lost its deletions (at any seq: the replay says)
        for topic, kv in self._state.items():
            if kv and topic not in heads and topic not in self._recovering:
                self._gaps += 1
                self._request_replay(topic, _Recovery(_Kind.REPLAY, Reason.GAP))

    def feed_reply(
        self,
        request: Request,
        reply: SnapshotReply | ReplayReply | ErrorReply,
        now: float,
    ) -> None:
        """Feed the sync socket's reply to `request` (one of `take_requests()`)."""
        if isinstance(reply, ErrorReply):
            self._on_error(request, reply)
        elif isinstance(reply, SnapshotReply):
            self._on_snapshot(request, reply)
        else:
            self._on_replay(reply)

    def stale_at(self) -> float | None:
        """When `tick` would report the node stale if nothing is heard before (None:
        not while it is stale, ended, or not started)."""
        if self._last_heard is None or self._stale or self._ended:
            return None
        return self._last_heard + self.stale_after

    def tick(self, now: float) -> None:
        """Let time pass: reports the node stale after `stale_after` of silence."""
        if self._last_heard is None or self._stale or self._ended:
            return
        silent = now - self._last_heard
        if silent >= self.stale_after:
            self._stale = True
            self._events.append(Stale(silent))

    # -- internals ----------------------------------------------------------

    def _heard(self, now: float) -> None:
        self._last_heard = now
        self._ended = False
        if self._stale:
            self._stale = False
            self._recoveries[Reason.STALE.value] += 1
            self._events.append(Recovered(Reason.STALE, None, 0, snapshot=False))

    def _begin_sync(self, reason: Reason | None) -> None:
        self._syncing = True
        self._sync_reason = reason
        for rec in self._recovering.values():
            self._buffer.extend(rec.held.values())
        self._recovering.clear()
        self._requests.append(SnapshotRequest(self.prefixes))

    def _on_update(self, u: Update) -> None:
        if self._syncing:
            if len(self._buffer) < self.max_held:
                self._buffer.append(u)
            # else: dropped on purpose; the gap shows after the snapshot and is replayed
            return
        if u.epoch != self.epoch:
            if u.epoch in self._retired:
                self._old_epoch_dropped += 1
                return
            self._begin_sync(Reason.EPOCH)
            self._buffer.append(u)
            return
        topic = u.topic
        last = self._last.get(topic, 0)
        seq = u.seq
        if seq <= last:
            self._duplicates += 1
            return
        rec = self._recovering.get(topic)
        if rec is None:
            if seq == last + 1:
                self._apply(u)
                return
            self._gaps += 1
            rec = _Recovery(_Kind.REPLAY, Reason.GAP)
            rec.held[seq] = u
            self._request_replay(topic, rec)
            return
        if rec.kind is _Kind.REPLAY and seq == last + 1:
            self._apply(u)
            self._drain(topic, rec)
            return
        if len(rec.held) >= self.max_held:
            # Too much to hold while the hole is filled: re-read the topic whole.
            rec.held.clear()
            if rec.kind is _Kind.REPLAY:
                self._request_topic_snapshot(topic, rec)
            return
        rec.held[seq] = u

    def _apply(self, u: Update) -> None:
        kv = self._state.get(u.topic)
        if kv is None:
            kv = self._state[u.topic] = {}
        if u.data is None:
            kv.pop(u.key, None)
        else:
            kv[u.key] = u.data
        self._last[u.topic] = u.seq
        self._applied += 1
        self._events.append(u)

    def _drain(self, topic: str, rec: _Recovery) -> int:
        """Apply held updates that are now contiguous; forget the stale ones."""
        held = rec.held
        n = 0
        nxt = self._last.get(topic, 0) + 1
        while nxt in held:
            self._apply(held.pop(nxt))
            n += 1
            nxt += 1
        for seq in [s for s in held if s < nxt]:
            del held[seq]
        return n

    def _request_replay(self, topic: str, rec: _Recovery) -> None:
        rec.kind = _Kind.REPLAY
        self._recovering[topic] = rec
        self._replays += 1
        self._requests.append(ReplayRequest(topic, self._last.get(topic, 0)))

    def _request_topic_snapshot(self, topic: str, rec: _Recovery) -> None:
        rec.kind = _Kind.SNAPSHOT
        self._recovering[topic] = rec
        self._requests.append(SnapshotRequest((topic,)))

    def _finish(self, topic: str, rec: _Recovery, *, snapshot: bool) -> None:
        del self._recovering[topic]
        self._recoveries[rec.reason.value] += 1
        self._events.append(
            Recovered(rec.reason, topic, rec.replayed, snapshot=snapshot, skipped=rec.skipped)
        )

    def _on_replay(self, reply: ReplayReply) -> None:
        if self._syncing:
            return  # a full snapshot is coming; it supersedes this
        if reply.epoch != self.epoch:
            if reply.epoch not in self._retired:
                self._begin_sync(Reason.EPOCH)
            return
        topic = reply.topic
        rec = self._recovering.get(topic)
        if rec is None or rec.kind is not _Kind.REPLAY:
            return  # a late answer to a recovery that already ended
        for u in reply.items:
            last = self._last.get(topic, 0)
            if u.seq <= last:
                continue
            if u.seq != last + 1:
                break  # a hole inside a replay: handled below as a remaining gap
            self._apply(u)
            rec.replayed += 1
        rec.replayed += self._drain(topic, rec)
        if not rec.held:
            self._finish(topic, rec, snapshot=False)
        elif rec.attempts >= 3:
            rec.held.clear()
            self._request_topic_snapshot(topic, rec)
        else:
            rec.attempts += 1
            self._request_replay(topic, rec)

    def _on_error(self, request: Request, reply: ErrorReply) -> None:
        if self._syncing and isinstance(request, ReplayRequest):
            return
        if isinstance(request, ReplayRequest):
            rec = self._recovering.get(request.topic)
            if rec is None or rec.kind is not _Kind.REPLAY:
                return
            if reply.type == ErrorType.HISTORY_GONE:
                rec.reason = Reason.HISTORY_GONE
            self._request_topic_snapshot(request.topic, rec)
            return
        # A snapshot request failed: the node is confused or changed; ask again.
        self._requests.append(request)

    def _on_snapshot(self, request: Request, reply: SnapshotReply) -> None:
        if self._syncing:
            self._apply_full_snapshot(reply)
            return
        if reply.epoch != self.epoch:
            if reply.epoch not in self._retired:
                self._begin_sync(Reason.EPOCH)
            return
        for topic in [t for t, r in self._recovering.items() if r.kind is _Kind.SNAPSHOT]:
            # Only the answer to this topic's own request counts: the shell
            # pairs each reply with its request, so an answer to anything else
            # is not evidence about where this topic stands.
            if request != SnapshotRequest((topic,)):
                continue
            rec = self._recovering[topic]
            head = reply.heads.get(topic, 0)
            rec.skipped = max(0, head - self._last.get(topic, 0))
            self._last[topic] = head
            kv = {key: data for t, key, _, data in reply.items if t == topic}
            self._state[topic] = kv
            self._snapshots += 1
            self._events.append(Reset(reply.epoch, rec.reason, {topic: dict(kv)}))
            self._drain(topic, rec)
            if rec.held:
                rec.attempts = 1
                self._request_replay(topic, rec)
            else:
                self._finish(topic, rec, snapshot=True)

    def _apply_full_snapshot(self, reply: SnapshotReply) -> None:
        if reply.epoch in self._retired:
            self._requests.append(SnapshotRequest(self.prefixes))  # a late answer; ask anew
            return
        reason = self._sync_reason
        if self.epoch is not None and self.epoch != reply.epoch:
            self._retired.append(self.epoch)
        # Buffered updates of another epoch that arrived before any of the
        # snapshot's epoch were published before it: the node restarted since.
        buffered, self._buffer = self._buffer, []
        for u in buffered:
            if u.epoch == reply.epoch:
                break
            if u.epoch not in self._retired:
                self._retired.append(u.epoch)
        replaced: dict[str, dict[str, Any]] = {t: {} for t in self._state}
        for topic, key, _, data in reply.items:
            kv = replaced.get(topic)
            if kv is None:
                kv = replaced[topic] = {}
            kv[key] = data
        for topic in reply.heads:
            replaced.setdefault(topic, {})
        self.epoch = reply.epoch
        self._state = {t: dict(kv) for t, kv in replaced.items()}
        self._last = {t: s for t, s in reply.heads.items() if s > 0}
        self._syncing = False
        self._sync_reason = None
        self._snapshots += 1
        self._events.append(Reset(reply.epoch, reason, replaced))
        if reason is not None:
            self._recoveries[reason.value] += 1
            self._events.append(Recovered(reason, None, 0, snapshot=True))
        for i, u in enumerate(buffered):
            self._on_update(u)
            if self._syncing:  # the buffer itself showed yet another epoch
                self._buffer.extend(buffered[i + 1 :])
                break
