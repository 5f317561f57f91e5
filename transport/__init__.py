"""pipecast.transport: the wire format, the bus's pure core, and its socket clients.

The pure core (`Sequencer`, `Replica`, the encoders and decoders) has no
sockets, threads or clock; the clients (`Subscriber`, `SyncClient`) are thin
shells that move bytes between ZeroMQ sockets and that core.
"""

from ._display import DisplayMode, Grid, InvocationView, Single, parse_display
from ._errors import (
    BadRequest,
    BindError,
    BridgeClosed,
    HistoryGone,
    MalformedFrame,
    NodeUnreachable,
    PipecastError,
    ProtocolError,
    RemoteError,
    UnknownOp,
)
from ._feed import ViewFeeder
from ._replica import Checkpoint, Ended, Reason, Recovered, Replica, ReplicaStatistics, Reset, Stale
from ._sequencer import HistoryLimits, Published, Sequencer, SequencerStatistics, topic_matches
from ._subscriber import Subscriber, SubscriberStatistics
from ._throttle import Throttle
from ._views import InvocationWatch, StageView, View
from ._wire import (
    HEARTBEAT_TOPIC,
    PROTOCOL_VERSION,
    ErrorReply,
    Heartbeat,
    ReplayReply,
    ReplayRequest,
    SnapshotReply,
    SnapshotRequest,
    Update,
    UpdateEncoder,
    decode_status,
    decode_sync_reply,
    decode_sync_request,
    encode_error_reply,
    encode_heartbeat,
    encode_replay_reply,
    encode_snapshot_reply,
    encode_sync_request,
    encode_update,
    pack_data,
)

__all__ = [
    "HEARTBEAT_TOPIC",
    "PROTOCOL_VERSION",
    "BadRequest",
    "BindError",
    "BridgeClosed",
    "Checkpoint",
    "DisplayMode",
    "Ended",
    "ErrorReply",
    "Grid",
    "Heartbeat",
    "HistoryGone",
    "HistoryLimits",
    "InvocationView",
    "InvocationWatch",
    "MalformedFrame",
    "NodeUnreachable",
    "PipecastError",
    "ProtocolError",
    "Published",
    "Reason",
    "Recovered",
    "RemoteError",
    "ReplayReply",
    "ReplayRequest",
    "Replica",
    "ReplicaStatistics",
    "Reset",
    "Sequencer",
    "SequencerStatistics",
    "Single",
    "SnapshotReply",
    "SnapshotRequest",
    "StageView",
    "Stale",
    "Subscriber",
    "SubscriberStatistics",
    "Throttle",
    "UnknownOp",
    "Update",
    "UpdateEncoder",
    "View",
    "ViewFeeder",
    "decode_status",
    "decode_sync_reply",
    "decode_sync_request",
    "encode_error_reply",
    "encode_heartbeat",
    "encode_replay_reply",
    "encode_snapshot_reply",
    "encode_sync_request",
    "encode_update",
    "pack_data",
    "parse_display",
    "topic_matches",
]
