"""pipecast.actors: the actors of a node and what only they use.

The bridge sequences every state update and carries it to watchers
(`start_bridge`); the supervisor restarts failed actors; stages do the work
from a durable queue; the control server answers the control socket; `Node`
puts them together.
"""

from ._bridge import (
    Bridge,
    BridgeConfig,
    BridgeHandle,
    BridgeStatistics,
    LocalSink,
    Publish,
    StatisticsRequest,
    start_bridge,
)
from ._clips import make_clip
from ._control_server import ControlServer, UnknownStage
from ._inbox import PollingInbox
from ._invocation_log import InvocationLog
from ._job_states import JobEvent, JobState, MediaFailure, job_transition
from ._leases import PresenceChange, PresenceTable
from ._library import Job, Library
from ._media_config import EncodeSettings, MediaPolicy
from ._models import Model, ModelError, model, resolve_model
from ._network_ops import UnknownNetwork
from ._network_runner import NetworkRunner, RunRequest
from ._node import DEMO_NETWORK, MEDIA_STAGES, STAGE_KINDS, Node, NodeConfig, StageConfig
from ._presence import PresenceCounts, PresenceTracker
from ._restarts import Decision, RestartPolicy, RestartTracker
from ._run_rules import (
    DEFAULT_PACE,
    Invocation,
    LockedOut,
    Pace,
    RunMachine,
    RunRules,
    RunStatus,
)
from ._stage import ChecksumStage, Enqueue, Stage, StageCommand
from ._stage_status import StageEvent, StageStatus, Velocity, transition
from ._store import Store, StoreError, WorkItem
from ._supervisor import ChildFailed, ChildSpec, Registry, Supervised, Supervisor
from ._watch_hub import WatchHub, WatchHubHandle
from ._watcher_actor import WatcherActor

__all__ = [
    "DEFAULT_PACE",
    "DEMO_NETWORK",
    "MEDIA_STAGES",
    "STAGE_KINDS",
    "Bridge",
    "BridgeConfig",
    "BridgeHandle",
    "BridgeStatistics",
    "ChecksumStage",
    "ChildFailed",
    "ChildSpec",
    "ControlServer",
    "Decision",
    "EncodeSettings",
    "Enqueue",
    "Invocation",
    "InvocationLog",
    "Job",
    "JobEvent",
    "JobState",
    "Library",
    "LocalSink",
    "LockedOut",
    "MediaFailure",
    "MediaPolicy",
    "Model",
    "ModelError",
    "NetworkRunner",
    "Node",
    "NodeConfig",
    "Pace",
    "PollingInbox",
    "PresenceChange",
    "PresenceCounts",
    "PresenceTable",
    "PresenceTracker",
    "Publish",
    "Registry",
    "RestartPolicy",
    "RestartTracker",
    "RunMachine",
    "RunRequest",
    "RunRules",
    "RunStatus",
    "Stage",
    "StageCommand",
    "StageConfig",
    "StageEvent",
    "StageStatus",
    "StatisticsRequest",
    "Store",
    "StoreError",
    "Supervised",
    "Supervisor",
    "UnknownNetwork",
    "UnknownStage",
    "Velocity",
    "WatchHub",
    "WatchHubHandle",
    "WatcherActor",
    "WorkItem",
    "job_transition",
    "make_clip",
    "model",
    "resolve_model",
    "start_bridge",
    "transition",
]
