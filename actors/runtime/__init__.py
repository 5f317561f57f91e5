"""pipecast.actors.runtime: what every actor of a node stands on.

The bridge sequences state updates and carries them to watchers
(`start_bridge`, `BridgeHandle`); `PollingInbox` lets an actor wait on its
mailbox, a timer and a socket together (`PollingActor`, `SocketActor`); the
supervisor restarts failed actors within an intensity (`RestartTracker`);
`Stage` is the base of pipeline stages, with a pure status machine
(`transition`) and a durable queue in the SQLite `Store`. Nothing here knows
about presence, media or networks.
"""

from ._bridge import BRIDGE, Bridge, start_bridge
from ._bridge_handle import BridgeConfig, BridgeHandle, BridgeStatistics, LocalSink, Publish
from ._control_socket import ControlSocket, WireError
from ._inbox import PollingInbox, SocketReadable, TimerDue
from ._messages import ChildFailed, StatisticsRequest
from ._polling_actor import PollingActor
from ._restarts import Decision, RestartPolicy, RestartTracker
from ._socket_actor import SocketActor
from ._stage import (
    POKE,
    CancelItem,
    Cancelled,
    Enqueue,
    Poke,
    Reply,
    Stage,
    StageCommand,
    StageStatistics,
)
from ._stage_status import StageEvent, StageStatus, Velocity, transition
from ._store import Store, StoreError, WorkItem
from ._supervised import Supervised
from ._supervisor import ChildSpec, Registry, Supervisor, begin_shutdown, start_child

__all__ = [
    "BRIDGE",
    "POKE",
    "Bridge",
    "BridgeConfig",
    "BridgeHandle",
    "BridgeStatistics",
    "CancelItem",
    "Cancelled",
    "ChildFailed",
    "ChildSpec",
    "ControlSocket",
    "Decision",
    "Enqueue",
    "LocalSink",
    "Poke",
    "PollingActor",
    "PollingInbox",
    "Publish",
    "Registry",
    "Reply",
    "RestartPolicy",
    "RestartTracker",
    "SocketActor",
    "SocketReadable",
    "Stage",
    "StageCommand",
    "StageEvent",
    "StageStatistics",
    "StageStatus",
    "StatisticsRequest",
    "Store",
    "StoreError",
    "Supervised",
    "Supervisor",
    "TimerDue",
    "Velocity",
    "WireError",
    "WorkItem",
    "begin_shutdown",
    "start_bridge",
    "start_child",
    "transition",
]
