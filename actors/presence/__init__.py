"""pipecast.actors.presence: who watches what, and the watchers a node hosts.

`PresenceTable` is the pure lease table (join, heartbeat, expiry, coalesced
changes); `PresenceTracker` is the actor that owns it, publishes
`presence/<topic>` and keeps `PresenceCounts` for other actors to read.
`WatchHub` hosts thousands of in-process watchers as plain objects in one
actor (`WatchHubHandle` is what callers hold); `WatcherActor` is the
one-actor-per-watcher form the benchmark compares it with.
"""

from ._leases import PresenceChange, PresenceTable
from ._tracker import (
    PresenceBeat,
    PresenceCounts,
    PresenceJoin,
    PresenceLeave,
    PresenceList,
    PresenceTracker,
)
from ._watch_hub import WATCH_HUB, AddWatcher, RemoveWatcher, WatcherBook, WatchHub, WatchHubHandle
from ._watcher_actor import WatcherActor

__all__ = [
    "WATCH_HUB",
    "AddWatcher",
    "PresenceBeat",
    "PresenceChange",
    "PresenceCounts",
    "PresenceJoin",
    "PresenceLeave",
    "PresenceList",
    "PresenceTable",
    "PresenceTracker",
    "RemoveWatcher",
    "WatchHub",
    "WatchHubHandle",
    "WatcherActor",
    "WatcherBook",
]
