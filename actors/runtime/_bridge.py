"""The bridge: the one actor that sequences every state update and ships it.

Every actor publishes by telling the bridge a `Publish`. The bridge stamps the
topic's next seq (through the pure `Sequencer`), sends `[topic, body]` on its
PUB socket, hands the same ordered update to in-process subscribers, and
answers snapshot and replay requests on its sync ROUTER socket. It sends a
heartbeat with every topic's head each interval, and a final one when it
stops, so watchers tell a stopped node from a silent one.

Both sockets are created in `on_start` and closed in `on_stop`/`on_failure`,
all in the bridge's own thread (one owner per socket); the `PollingInbox`
lets that thread wait on its mailbox and its ROUTER at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgpack
import pykka
import zmq

from pipecast.transport import (
    HEARTBEAT_TOPIC,
    BadRequest,
    BindError,
    BridgeClosed,
    ErrorType,
    HistoryLimits,
    PipecastError,
    Reset,
    Sequencer,
    SequencerStatistics,
    Update,
    encode_error_reply,
    encode_heartbeat,
    serve_sync_request,
    topic_matches,
)

from ._inbox import PollingInbox, SocketReadable, TimerDue
from ._socket_actor import SocketActor

__all__ = [
    "Bridge",
    "BridgeConfig",
    "BridgeHandle",
    "BridgeStatistics",
    "LocalSink",
    "Publish",
    "StatisticsRequest",
    "start_bridge",
]

log = logging.getLogger("pipecast.bridge")

LocalSink = Callable[[Update | Reset], None]
_HB_FRAME = HEARTBEAT_TOPIC.encode()
_SNDMORE = int(zmq.SNDMORE)
_BURST = 256  # bounded, so heartbeats and sync requests still get their turn
MAX_REQUEST_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """Where the bridge binds and how it behaves. Defaults bind loopback only."""

    status_endpoint: str = "tcp://127.0.0.1:7701"
    sync_endpoint: str = "tcp://127.0.0.1:7702"
    heartbeat_interval: float = 1.0
    history: HistoryLimits = field(default_factory=HistoryLimits)
    sndhwm: int = 100_000
    linger_ms: int = 500

    def __post_init__(self) -> None:
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
class _Subscribe:
    token: int
    prefixes: tuple[str, ...]
    sink: LocalSink


@dataclass(frozen=True, slots=True)
class _Unsubscribe:
    token: int


class _GetStatistics:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class StatisticsRequest:
    """Told to a component: it calls `reply` (in its own thread) with its statistics."""

    reply: Callable[[Any], None]


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
    sequencer: SequencerStatistics


@dataclass(slots=True)
class _Local:
    prefixes: tuple[str, ...]
    sink: LocalSink


class Bridge(SocketActor):
    """The bridge actor (see module docstring). Start it with `start_bridge`."""

    def __init__(
        self, config: BridgeConfig, ready: concurrent.futures.Future[tuple[str, str, str]]
    ) -> None:
        super().__init__()
        self.bridge_config = config
        self.bridge_epoch = secrets.token_hex(8)
        self._ready = ready
        self._seq = Sequencer(self.bridge_epoch, config.history)
        self._pub: zmq.Socket[bytes] | None = None
        self._router: zmq.Socket[bytes] | None = None
        self._locals: dict[int, _Local] = {}
        self._routes: dict[str, list[_Local]] = {}
        self._topic_frames: dict[str, bytes] = {}
        self._rejected = 0
        self._sync_requests = 0
        self._sync_errors = 0
        self._heartbeats = 0
        self._sink_failures = 0

    # -- lifecycle (bridge thread) -------------------------------------------

    def on_start(self) -> None:
        """Bind both sockets; on failure resolve `ready` with the error and stop."""
        cfg = self.bridge_config
        try:
            self._pub = self.bind(
                zmq.PUB, cfg.status_endpoint, sndhwm=cfg.sndhwm, linger=cfg.linger_ms
            )
            self._router = self.bind(zmq.ROUTER, cfg.sync_endpoint)
        except BindError as exc:
            self.close_sockets()
            self._pub = self._router = None
            self._ready.set_exception(BindError(f"cannot bind the bus sockets: {exc}"))
            self.stop()
            return
        status = str(self._pub.get_string(zmq.LAST_ENDPOINT))
        sync = str(self._router.get_string(zmq.LAST_ENDPOINT))
        self.serve(self._router, cfg.heartbeat_interval)
        log.info("bridge epoch %s on %s and %s", self.bridge_epoch, status, sync)
        self._ready.set_result((status, sync, self.bridge_epoch))

    def on_stop(self) -> None:
        """Send the final heartbeat, then close the sockets (bounded by linger)."""
        self._send_heartbeat(final=True)
        self.close_sockets()
        self._pub = self._router = None

    # -- messages (bridge thread) ----------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if type(message) is Publish:
            self._publish(message)
            # a burst of publications: finish it without a loop turn each
            for more in self.inbox.take_run(Publish, _BURST):
                self._publish(more)
        elif type(message) is SocketReadable:
            self._serve_sync()
        elif type(message) is TimerDue:
            self._send_heartbeat(final=False)
            self._seq.expire(time.time())
        elif type(message) is _Subscribe:
            self._subscribe(message)
        elif type(message) is _Unsubscribe:
            self._locals.pop(message.token, None)
            self._routes.clear()
        elif type(message) is _GetStatistics:
            return self.statistics()
        elif type(message) is StatisticsRequest:
            message.reply(self.statistics())
        else:
            return super().on_receive(message)
        return None

    def _publish(self, msg: Publish) -> None:
        now = time.time()
        try:
            out = self._seq.publish(msg.topic, msg.key, msg.data, msg.cid, now)
        except PipecastError as exc:
            self._rejected += 1
            log.warning("rejected publication to %r [cid=%s]: %s", msg.topic, msg.cid, exc)
            if msg.reply is not None:
                msg.reply(exc)
            return
        if msg.reply is not None:
            msg.reply(None if out is None else out.seq)
        if out is None or self._pub is None:
            return
        topic_b = self._topic_frames.get(msg.topic)
        if topic_b is None:
            topic_b = self._topic_frames[msg.topic] = msg.topic.encode()
        # send() with int flags, not send_multipart(): its enum flag arithmetic
        # costs more than the send itself for a 200-byte message.
        send = self._pub.send
        send(topic_b, _SNDMORE)
        send(out.body, 0)
        if self._locals:
            routes = self._routes.get(msg.topic)
            if routes is None:
                routes = self._routes[msg.topic] = [
                    loc for loc in self._locals.values() if topic_matches(msg.topic, loc.prefixes)
                ]
            if routes:
                update = Update(
                    msg.topic, msg.key, msg.data, out.seq, self.bridge_epoch, now, msg.cid
                )
                for loc in routes:
                    self._deliver(loc, update)

    def _deliver(self, loc: _Local, event: Update | Reset) -> None:
        try:
            loc.sink(event)
        except pykka.ActorDeadError:
            # an actor that stopped before its unsubscribe landed: not a failure
            log.debug("local subscriber's actor is gone; removed")
            self._drop(loc)
        except Exception:
            # A broken sink must not take the bridge down: drop it and count.
            self._sink_failures += 1
            log.exception("local subscriber failed; removed")
            self._drop(loc)

    def _drop(self, loc: _Local) -> None:
        for token, other in list(self._locals.items()):
            if other is loc:
                del self._locals[token]
        self._routes.clear()

    def _subscribe(self, msg: _Subscribe) -> None:
        heads, rows = self._seq.snapshot_rows(msg.prefixes)
        state: dict[str, dict[str, Any]] = {t: {} for t in heads}
        for topic, key, _, data_b in rows:
            state[topic][key] = msgpack.unpackb(data_b)
        loc = _Local(msg.prefixes, msg.sink)
        self._locals[msg.token] = loc
        self._routes.clear()
        self._deliver(loc, Reset(self.bridge_epoch, None, state))

    def _serve_sync(self) -> None:
        router = self._router
        if router is None:
            return
        for routing, body in self.requests(router):
            self._sync_requests += 1
            error: str | None
            if len(body) > MAX_REQUEST_BYTES:
                reply, error = (
                    encode_error_reply(ErrorType.BAD_REQUEST, "request exceeds 1 MiB"),
                    "x",
                )
            else:
                reply, error = serve_sync_request(self._seq, body, time.time())
            if error is not None:
                self._sync_errors += 1
            if not self.answer(router, routing, reply):
                self._sync_errors += 1  # the client went away or is flooded; it retries

    def _send_heartbeat(self, *, final: bool) -> None:
        if self._pub is None:
            return
        body = encode_heartbeat(self.bridge_epoch, time.time(), self._seq.heads(), final=final)
        self._pub.send_multipart((_HB_FRAME, body))
        self._heartbeats += 1

    def statistics(self) -> BridgeStatistics:
        return BridgeStatistics(
            epoch=self.bridge_epoch,
            mailbox_depth=self.mailbox_depth(),
            mailbox_wakeups=self.inbox.wakeups,
            published=self._seq.statistics().published,
            rejected=self._rejected,
            sync_requests=self._sync_requests,
            sync_errors=self._sync_errors,
            heartbeats=self._heartbeats,
            local_subscribers=len(self._locals),
            local_sink_failures=self._sink_failures,
            sequencer=self._seq.statistics(),
        )


class BridgeHandle:
    """What the rest of the node holds: the bridge's ref, epoch and endpoints.

    `publish`, `subscribe` and `unsubscribe` tell (never block) and may be
    called from any thread; `statistics` and `stop` block and belong at the
    edges (CLI, tests, node shutdown).
    """

    def __init__(
        self, ref: pykka.ActorRef[Bridge], epoch: str, status_endpoint: str, sync_endpoint: str
    ) -> None:
        self.ref = ref
        self.epoch = epoch
        self.status_endpoint = status_endpoint
        self.sync_endpoint = sync_endpoint
        self._next_token = 0
        self._stopped = ref.actor_stopped
        inbox = ref.actor_inbox
        assert isinstance(inbox, PollingInbox)  # a SocketActor's inbox
        self._put_message = inbox.tell

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
        Raises `BridgeClosed` if the bridge has stopped.
        """
        if type(topic) is not str or not topic or topic == HEARTBEAT_TOPIC:
            raise BadRequest(f"invalid topic {topic!r}")
        if type(key) is not str:
            raise BadRequest("key must be a string")
        if data is not None and type(data) is not dict:
            raise BadRequest("data must be a dict or None")
        # ActorRef.tell() minus a call layer and the Envelope: this is every
        # publication's path.
        if self._stopped.is_set():
            raise BridgeClosed("the bridge has stopped")
        self._put_message(Publish(topic, key, data, cid, reply))

    def subscribe(self, prefixes: Iterable[str], sink: LocalSink) -> int:
        """Deliver a `Reset` with the current state, then every matching update.

        `sink` is called in the bridge's thread, in seq order, and must not
        block; hand the event to your own mailbox. A sink that raises is
        removed. Returns a token for `unsubscribe`.
        """
        self._next_token += 1
        self._tell(_Subscribe(self._next_token, tuple(prefixes), sink))
        return self._next_token

    def unsubscribe(self, token: int) -> None:
        self._tell(_Unsubscribe(token))

    def statistics(self, timeout: float = 5.0) -> BridgeStatistics:
        """Ask the bridge for its counters. Blocks up to `timeout`."""
        try:
            result = self.ref.ask(_GetStatistics(), timeout=timeout)
        except pykka.ActorDeadError:
            raise BridgeClosed("the bridge has stopped") from None
        assert isinstance(result, BridgeStatistics)
        return result

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the bridge: final heartbeat, sockets closed. Idempotent."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.ref.stop(block=True, timeout=timeout)

    def _tell(self, message: object) -> None:
        try:
            self.ref.tell(message)
        except pykka.ActorDeadError:
            raise BridgeClosed("the bridge has stopped") from None


def start_bridge(config: BridgeConfig | None = None, timeout: float = 10.0) -> BridgeHandle:
    """Start the bridge and wait until its sockets are bound.

    Blocks up to `timeout` (an edge call: node start-up, tests). Raises
    `BindError` if an endpoint cannot be bound (in use, malformed); then no
    actor is left running.
    """
    config = config or BridgeConfig()
    ready: concurrent.futures.Future[tuple[str, str, str]] = concurrent.futures.Future()
    ref = Bridge.start(config, ready)
    try:
        status, sync, epoch = ready.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        ref.stop(block=False)
        raise BindError(f"the bridge did not start within {timeout} s") from None
    except BindError:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.stop(block=True, timeout=timeout)
        raise
    return BridgeHandle(ref, epoch, status, sync)
