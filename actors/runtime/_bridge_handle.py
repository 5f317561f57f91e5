"""What the rest of a node holds of the bridge: a handle that outlives its incarnations.

The bridge actor may die and be restarted by the supervisor; everything else
keeps one `BridgeHandle`. The handle owns what must survive a restart: the
epoch and its `Sequencer` (so subscribers see the same epoch and gapless
seqs), the endpoints once bound (a restart binds the very same ports), and
the in-process subscriptions (a restarted bridge hands each its state again).
Each incarnation attaches itself when it is made (`_attach`) and uses the
sequencer only from its own thread; one incarnation runs at a time.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import pykka
import zmq

from pipecast.transport import (
    HEARTBEAT_TOPIC,
    BadRequest,
    BindError,
    BridgeClosed,
    HandshakeStatistics,
    HistoryLimits,
    Limits,
    PipecastError,
    Reset,
    Sequencer,
    SequencerStatistics,
    ServerSecurity,
    Update,
    is_local_endpoint,
)

if TYPE_CHECKING:
    from ._bridge import Bridge

__all__ = [
    "BridgeConfig",
    "BridgeHandle",
    "BridgeStatistics",
    "LocalSink",
    "Publish",
]

LocalSink = Callable[[Update | Reset], None]


_new_tuple = tuple.__new__


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """Where the bridge binds and how it behaves. Defaults bind loopback only."""

    status_endpoint: str = "tcp://127.0.0.1:7701"
    sync_endpoint: str = "tcp://127.0.0.1:7702"
    heartbeat_interval: float = 1.0
    history: HistoryLimits = field(default_factory=HistoryLimits)
    sndhwm: int = 100_000
    linger_ms: int = 500
    limits: Limits = field(default_factory=Limits)
    # several waiting updates of a topic in one message (docs/PROTOCOL.md); off: one
    # message per update, for measuring what batching gains
    batch: bool = True

    def __post_init__(self) -> None:
        if type(self.batch) is not bool:
            raise BadRequest("batch must be true or false")
        if not self.heartbeat_interval > 0:
            raise BadRequest("heartbeat_interval must be > 0 seconds")
        if type(self.sndhwm) is not int or self.sndhwm < 0:
            raise BadRequest("sndhwm must be an int >= 0")


class Publish(NamedTuple):
    """Set `key` of `topic` to `data` (None deletes it). Told to the bridge.

    A NamedTuple, not a frozen dataclass: one is built per publication, and
    a frozen dataclass's __init__ costs about a microsecond more.
    """

    topic: str
    key: str
    data: dict[str, Any] | None
    cid: str | None = None
    # called in the bridge thread with the seq given (None: unchanged, nothing
    # published) or the error that refused it; for requests that must answer
    reply: Callable[[int | PipecastError | None], None] | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    token: int
    prefixes: tuple[str, ...]
    sink: LocalSink


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    token: int


class GetStatistics:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class BridgeStatistics:
    epoch: str
    mailbox_depth: int
    mailbox_wakeups: int
    published: int
    rejected: int
    sync_requests: int
    sync_errors: int
    heartbeats: int
    local_subscribers: int
    local_sink_failures: int
    incarnation: int  # 1, then one more per restart
    sequencer: SequencerStatistics
    limits: dict[str, int]
    handshakes: HandshakeStatistics | None = None  # the status and sync sockets (CURVE)
    revocations: int = 0  # times a revoked key made it drop every status connection
    messages: int = 0  # status messages sent (a batch is one)
    batched: int = 0  # updates that travelled in a batch of more than one


def _not_started(message: object) -> None:
    del message
    raise BridgeClosed("the bridge has not started")


class BridgeHandle:
    """The bridge as the node sees it (see module docstring).

    `publish`, `subscribe` and `unsubscribe` tell (never block) and may be
    called from any thread; `wait_ready`, `statistics` and `stop` block and
    belong at the edges (CLI, tests, node start-up and shutdown).
    """

    def __init__(
        self,
        config: BridgeConfig,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        security: ServerSecurity | None = None,
    ) -> None:
        """`context`: the node's (its ZAP handler's); `security`: CURVE, which a bridge
        without may only go without on loopback or ipc endpoints (`BadRequest`)."""
        if security is None and not all(
            is_local_endpoint(e) for e in (config.status_endpoint, config.sync_endpoint)
        ):
            raise BadRequest(
                "without CURVE keys a bridge binds only loopback or ipc endpoints, not "
                f"{config.status_endpoint} and {config.sync_endpoint}"
            )
        self.config = config
        self.context = context
        self.security = security
        self.epoch = secrets.token_hex(8)
        # used only by the running incarnation, from its thread
        self.sequencer = Sequencer(self.epoch, config.history, config.limits)
        self.status_endpoint = ""  # as bound (a port of 0 resolved), once ready
        self.sync_endpoint = ""
        self.incarnations = 0
        self._lock = threading.Lock()
        self._subscriptions: dict[int, Subscribe] = {}
        self._next_token = 0
        self._ready = threading.Event()
        self._bind_error: BindError | None = None
        self._closed = threading.Event()
        self._ref: pykka.ActorRef[Bridge] | None = None
        self._put_message: Callable[[object], None] = _not_started

    # -- from the bridge's incarnations --------------------------------------------

    def _attach(self, bridge: Bridge) -> None:
        """Called in each incarnation's constructor: publications go to it from now on."""
        inbox = bridge.actor_inbox
        with self._lock:
            self.incarnations += 1
            self._ref = bridge.actor_ref
            self._put_message = inbox.tell  # type: ignore[attr-defined]  # a PollingInbox

    def _bound(self, status: str, sync: str) -> None:
        self.status_endpoint, self.sync_endpoint = status, sync
        self._ready.set()

    def _bind_failed(self, error: BindError) -> None:
        self._bind_error = error
        self._ready.set()

    def _subscriptions_now(self) -> list[Subscribe]:
        with self._lock:
            return list(self._subscriptions.values())

    def _forget(self, token: int) -> None:
        with self._lock:
            self._subscriptions.pop(token, None)

    def _close(self) -> None:
        """No incarnation will come: publications raise `BridgeClosed` from now on."""
        self._closed.set()

    # -- for everyone -----------------------------------------------------------------

    @property
    def ref(self) -> pykka.ActorRef[Bridge]:
        """The current incarnation's ref (it changes on a restart)."""
        ref = self._ref
        if ref is None:
            raise BridgeClosed("the bridge has not started")
        return ref

    def wait_ready(self, timeout: float) -> None:
        """Block until the first incarnation has bound its sockets; `BindError` if it
        could not (or did not within `timeout`)."""
        if not self._ready.wait(timeout):
            raise BindError(f"the bridge did not start within {timeout} s")
        if self._bind_error is not None:
            raise self._bind_error

    def publish(
        self,
        topic: str,
        key: str,
        data: dict[str, Any] | None,
        cid: str | None = None,
        reply: Callable[[int | PipecastError | None], None] | None = None,
    ) -> None:
        """Publish one key's complete new value (None deletes the key).

        Checks the argument types here, raising `BadRequest`, so a caller's
        mistake surfaces in the caller; the bridge checks again and counts.
        Raises `BridgeClosed` once the bridge was stopped. While a dead
        incarnation is being replaced, a publication may be lost: it got no
        seq, so no subscriber sees a gap, and the next one carries the state.
        """
        if type(topic) is not str or not topic or topic == HEARTBEAT_TOPIC:
            raise BadRequest(f"invalid topic {topic!r}")
        if type(key) is not str:
            raise BadRequest("key must be a string")
        if data is not None and type(data) is not dict:
            raise BadRequest("data must be a dict or None")
        if self._closed.is_set():
            raise BridgeClosed("the bridge has stopped")
        # ActorRef.tell() minus a call layer and the Envelope, and the tuple built
        # by C (a NamedTuple's own __new__ is Python): every publication's path.
        self._put_message(_new_tuple(Publish, (topic, key, data, cid, reply)))

    def subscribe(self, prefixes: Iterable[str], sink: LocalSink) -> int:
        """Deliver a `Reset` with the current state, then every matching update.

        `sink` is called in the bridge's thread, in seq order, and must not
        block; hand the event to your own mailbox. A sink that raises is
        removed. After a restart of the bridge the sink gets a `Reset` again.
        Returns a token for `unsubscribe`.
        """
        with self._lock:
            self._next_token += 1
            message = Subscribe(self._next_token, tuple(prefixes), sink)
            self._subscriptions[message.token] = message
        self._tell(message)
        return message.token

    def unsubscribe(self, token: int) -> None:
        self._forget(token)
        self._tell(Unsubscribe(token))

    def statistics(self, timeout: float = 5.0) -> BridgeStatistics:
        """Ask the bridge for its counters. Blocks up to `timeout`."""
        try:
            result = self.ref.ask(GetStatistics(), timeout=timeout)
        except pykka.ActorDeadError:
            raise BridgeClosed("the bridge has stopped") from None
        assert isinstance(result, BridgeStatistics)
        return result

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the bridge for good: final heartbeat, sockets closed. Idempotent."""
        self._close()
        ref = self._ref
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=True, timeout=timeout)

    def _tell(self, message: object) -> None:
        if self._closed.is_set():
            raise BridgeClosed("the bridge has stopped")
        with contextlib.suppress(pykka.ActorDeadError):  # a restart is under way
            self.ref.tell(message)
