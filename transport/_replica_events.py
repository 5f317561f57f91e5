"""What a `Replica` tells its user: events, its statistics, and a plain state copy.

Immutable values (frozen, slotted dataclasses) a replica emits in order:
`Update` (from the wire), `Reset` (a topic's state replaced wholesale, on a
join or a recovery), `Recovered` (a recovery finished, with its reason),
`Stale` (nothing heard for a while) and `Ended` (the node said it stops).
`apply_to_state` keeps a plain {topic: {key: value}} copy in step with them.
Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._wire import Update

__all__ = [
    "Checkpoint",
    "Ended",
    "Event",
    "Reason",
    "Recovered",
    "ReplicaStatistics",
    "Reset",
    "Stale",
    "apply_to_state",
]


class Reason(enum.Enum):
    """Why a replica had to recover."""

    GAP = "gap"
    HISTORY_GONE = "history_gone"
    EPOCH = "epoch"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Reset:
    """The state of these topics was replaced wholesale (join or recovery).

    `state` maps each replaced topic to its complete new key-value map (empty
    if the topic no longer has keys). `reason` is None for the initial join.
    """

    epoch: str
    reason: Reason | None
    state: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Recovered:
    """A recovery finished; the replica is exact again for `topic` (None: all)."""

    reason: Reason
    topic: str | None
    replayed: int
    snapshot: bool
    skipped: int = 0  # with a snapshot: how many updates it stood in for


@dataclass(frozen=True, slots=True)
class Stale:
    """Nothing heard from the node for `silent_for` seconds."""

    silent_for: float


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a replica stood: enough to resume without a snapshot."""

    epoch: str
    state: Mapping[str, Mapping[str, Any]]
    last: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Ended:
    """The node said it is stopping (its final heartbeat): the epoch is over."""

    epoch: str


Event = Update | Reset | Recovered | Stale | Ended


@dataclass(frozen=True, slots=True)
class ReplicaStatistics:
    applied: int
    duplicates: int
    old_epoch_dropped: int
    gaps: int
    replays: int
    snapshots: int
    recoveries: Mapping[str, int]
    topics: int
    keys: int
    held: int


def apply_to_state(state: dict[str, dict[str, Any]], ev: Update | Reset) -> None:
    """Keep a plain {topic: {key: value}} copy of the bus in step with one event.

    For in-process consumers of the bridge's ordered stream, which has no gaps
    to recover from; a `Reset` replaces the topics it carries.
    """
    if isinstance(ev, Reset):
        for topic, values in ev.state.items():
            state[topic] = dict(values)
        return
    kv = state.get(ev.topic)
    if kv is None:
        kv = state[ev.topic] = {}
    if ev.data is None:
        kv.pop(ev.key, None)
    else:
        kv[ev.key] = ev.data
