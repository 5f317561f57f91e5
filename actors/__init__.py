"""pipecast.actors: the actors of a node and what only they use.

The bridge sequences every state update and carries it to watchers; see
`start_bridge`.
"""

from ._bridge import (
    Bridge,
    BridgeConfig,
    BridgeHandle,
    BridgeStatistics,
    LocalSink,
    Publish,
    start_bridge,
)
from ._inbox import PollingInbox

__all__ = [
    "Bridge",
    "BridgeConfig",
    "BridgeHandle",
    "BridgeStatistics",
    "LocalSink",
    "PollingInbox",
    "Publish",
    "start_bridge",
]
