"""The bridge: the one actor that sequences every state update and ships it.

Every actor publishes by telling the bridge a `Publish` (through the
`BridgeHandle`). The bridge stamps the topic's next seq (through the pure
`Sequencer`), sends `[topic, body]` on its PUB socket, hands the same ordered
update to in-process subscribers, and answers snapshot and replay requests on
its sync ROUTER socket. It sends a heartbeat with the heads of the live
topics each interval, and a final one when it stops, so watchers tell a
stopped node from a silent one.

Both sockets are created in `on_begin` and closed in `on_end`, in the
bridge's own thread (one owner per socket); the `PollingInbox` lets that
thread wait on its mailbox and its ROUTER at once. The bridge is supervised:
a restarted incarnation takes the epoch, the sequencer, the bound endpoints
and the local subscriptions from the handle, so subscribers see one epoch
with gapless seqs across the restart.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import pykka
import zmq

from pipecast.transport import (
    HEARTBEAT_TOPIC,
    BindError,
    ErrorType,
    PipecastError,
    Reset,
    ServerSecurity,
    Update,
    batch_bodies,
    encode_error_reply,
    encode_heartbeat,
    serve_sync_request,
    topic_matches,
)

from ._bridge_handle import (
    BridgeConfig,
    BridgeHandle,
    BridgeStatistics,
    GetStatistics,
    LocalSink,
    Publish,
    Subscribe,
    Unsubscribe,
)
from ._inbox import SocketReadable, TimerDue
from ._messages import StatisticsRequest
from ._socket_actor import SocketActor
from ._supervised import Supervised

__all__ = ["BRIDGE", "Bridge", "start_bridge"]

log = logging.getLogger("pipecast.bridge")

BRIDGE = "bridge"  # the bridge's name among a node's actors
_HB_FRAME = HEARTBEAT_TOPIC.encode()
_SNDMORE = int(zmq.SNDMORE)
_BURST = 256  # bounded, so heartbeats and sync requests still get their turn
_REBIND_TRIES, _REBIND_PAUSE = 200, 0.005  # at most ~1 s for the old listener to close
_REVOKED = encode_error_reply(ErrorType.UNAUTHORIZED, "this key is not allowed (any more)")


@dataclass(slots=True)
class _Local:
    prefixes: tuple[str, ...]
    sink: LocalSink


class Bridge(SocketActor, Supervised):
    """The bridge actor (see module docstring). Start it with `start_bridge`, or as
    the supervised child `BRIDGE` of a node's supervisor."""

    def __init__(
        self, *, name: str, supervisor: pykka.ActorRef[Any] | None, bridge: BridgeHandle
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.bridge_config = bridge.config
        self.bridge_epoch = bridge.epoch
        self._seq = bridge.sequencer
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
        self._removals = 0  # the allow-list's removals, as of the last look
        self._revocations = 0
        self._messages = 0
        self._batched = 0
        bridge._attach(self)  # publications come to this incarnation from now on

    # -- lifecycle (bridge thread) -------------------------------------------

    def on_begin(self) -> None:
        """Bind both sockets (a restart binds the endpoints first bound), then hand
        every local subscriber the state. A first start that cannot bind resolves
        the handle with the error and stops; a restart that cannot bind fails."""
        cfg, limits, handle = self.bridge_config, self.bridge_config.limits, self.bridge
        first = not handle.status_endpoint
        self.use_context(handle.context)
        try:
            # what peers send is read into memory: a larger frame cuts the peer off
            self._pub = self.bind(
                zmq.PUB,
                handle.status_endpoint or cfg.status_endpoint,
                handle.security,
                sndhwm=cfg.sndhwm,
                linger=cfg.linger_ms,
                maxmsgsize=limits.frame_bytes,
            )
            self._router = self.bind(
                zmq.ROUTER,
                handle.sync_endpoint or cfg.sync_endpoint,
                handle.security,
                maxmsgsize=limits.frame_bytes,
                sndhwm=limits.queued_replies,
                rcvhwm=limits.queued_replies * 64,
                router_mandatory=1,  # a reply that cannot be queued is an error we count
            )
        except BindError as exc:
            self.close_sockets()
            self._pub = self._router = None
            if not first:
                raise
            handle._bind_failed(BindError(f"cannot bind the bus sockets: {exc}"))
            self.stop()
            return
        status = str(self._pub.get_string(zmq.LAST_ENDPOINT))
        sync = str(self._router.get_string(zmq.LAST_ENDPOINT))
        if handle.security is not None:
            self._removals = handle.security.allowed.check()
        self.serve(self._router, cfg.heartbeat_interval)
        log.info("bridge epoch %s on %s and %s", self.bridge_epoch, status, sync)
        for subscription in handle._subscriptions_now():
            self._subscribe(subscription)
        handle._bound(status, sync)

    def on_end(self, error: str | None) -> None:
        """On a stop: the final heartbeat, then the sockets close (bounded by linger).
        On a failure the sockets are already closed: no final word, the epoch goes on."""
        if error is None:
            self._send_heartbeat(final=True)
        self.close_sockets()
        self._pub = self._router = None
        if error is not None and self.supervisor is None:
            self.bridge._close()  # nobody will restart it

    # -- messages (bridge thread) ----------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if type(message) is Publish:
            # a burst of publications: finish it without a loop turn each
            more = self.inbox.take_run(Publish, _BURST)
            now = time.time()  # one clock read for a burst taken in one go
            if more and self.bridge_config.batch:
                self._publish_batched([message, *more], now)
            else:
                self._send(message.topic, self._publish(message, now))
                for m in more:
                    self._send(m.topic, self._publish(m, now))
        elif type(message) is SocketReadable:
            self._serve_sync()
        elif type(message) is TimerDue:
            self._send_heartbeat(final=False)
            self.check_handshakes()
            self._drop_revoked()
            self._seq.expire(time.time())
        elif type(message) is Subscribe:
            self._subscribe(message)
        elif type(message) is Unsubscribe:
            self._locals.pop(message.token, None)
            self._routes.clear()
        elif type(message) is GetStatistics:
            return self.statistics()
        elif type(message) is StatisticsRequest:
            message.reply(self.statistics())
        else:
            return super().on_receive(message)
        return None

    def _publish_batched(self, run: list[Publish], now: float) -> None:
        """Sequence a run of waiting publications, then send each topic's updates in as
        few messages as the batch bounds allow (what was waiting, never more)."""
        bodies: dict[str, list[bytes]] = {}
        publish = self._publish
        for msg in run:
            body = publish(msg, now)
            if body is not None:
                held = bodies.get(msg.topic)
                if held is None:
                    bodies[msg.topic] = [body]
                else:
                    held.append(body)
        for topic, held in bodies.items():
            if len(held) == 1:
                self._send(topic, held[0])
                continue
            self._batched += len(held)
            for body in batch_bodies(held):
                self._send(topic, body)

    def _send(self, topic: str, body: bytes | None) -> None:
        if body is None or self._pub is None:
            return
        topic_b = self._topic_frames.get(topic)
        if topic_b is None:
            topic_b = self._topic_frames[topic] = topic.encode()
        # send() with int flags, not send_multipart(): its enum flag arithmetic
        # costs more than the send itself for a 200-byte message.
        send = self._pub.send
        send(topic_b, _SNDMORE)
        send(body, 0)
        self._messages += 1

    def _publish(self, msg: Publish, now: float) -> bytes | None:
        """Sequence one publication, answer it, hand it to local subscribers; its body
        to send, or None when nothing changed or it was refused."""
        try:
            out = self._seq.publish(msg.topic, msg.key, msg.data, msg.cid, now)
        except PipecastError as exc:
            self._rejected += 1
            log.warning("rejected publication to %r [cid=%s]: %s", msg.topic, msg.cid, exc)
            if msg.reply is not None:
                msg.reply(exc)
            return None
        if msg.reply is not None:
            msg.reply(None if out is None else out.seq)
        if out is None:
            return None
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
        return out.body

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
                self.bridge._forget(token)
        self._routes.clear()

    def _subscribe(self, msg: Subscribe) -> None:
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
        security = self.bridge.security
        for routing, body, user in self.requests(router):
            self._sync_requests += 1
            error: str | None
            if security is not None and security.role_of(user) is None:
                # the handshake let it in, but its key is not allowed any more
                reply, error = _REVOKED, ErrorType.UNAUTHORIZED
            else:
                reply, error = serve_sync_request(self._seq, body, time.time())
            if error is not None:
                self._sync_errors += 1
            if not self.answer(router, routing, reply):
                self._sync_errors += 1  # the client went away or is flooded; it retries

    def _drop_revoked(self) -> None:
        """A key left the allow-list: end every status connection (a PUB cannot check
        who reads, and ZeroMQ cannot drop one peer), by binding the status endpoint
        anew. Allowed subscribers reconnect by themselves, handshake again and mend the
        gap through sync; the revoked key's handshake is refused. Bridge thread."""
        security = self.bridge.security
        if security is None or self._pub is None:
            return
        removals, seen = security.allowed.check(), self._removals
        self._removals = removals
        if removals == seen:
            return
        endpoint = self.bridge.status_endpoint
        self._revocations += 1
        log.warning("a key was revoked: dropping every connection to %s", endpoint)
        self._pub.unbind(endpoint)
        # the listener closes in libzmq's I/O thread, soon after unbind returns
        for _ in range(_REBIND_TRIES - 1):
            try:
                self._pub.bind(endpoint)
            except zmq.ZMQError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                time.sleep(_REBIND_PAUSE)
            else:
                return
        self._pub.bind(endpoint)  # a failure fails the bridge: its supervisor binds again

    def _send_heartbeat(self, *, final: bool) -> None:
        if self._pub is None:
            return
        body = encode_heartbeat(
            self.bridge_epoch,
            time.time(),
            self._seq.heads(),
            self.bridge_config.heartbeat_interval,
            final=final,
        )
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
            incarnation=self.bridge.incarnations,
            sequencer=self._seq.statistics(),
            limits=self.bridge_config.limits.as_dict(),
            handshakes=self.handshake_statistics(),
            revocations=self._revocations,
            messages=self._messages,
            batched=self._batched,
        )


def start_bridge(
    config: BridgeConfig | None = None,
    timeout: float = 10.0,
    context: zmq.Context[zmq.Socket[bytes]] | None = None,
    security: ServerSecurity | None = None,
) -> BridgeHandle:
    """Start a bridge on its own (no supervisor) and wait until its sockets are bound;
    with `security`, CURVE on both (then `context` must carry a ZAP handler).

    Blocks up to `timeout` (an edge call: tests, benchmarks). Raises
    `BindError` if an endpoint cannot be bound (in use, malformed); then no
    actor is left running. A node starts its bridge as a supervised child
    instead (`Node.start`).
    """
    handle = BridgeHandle(config or BridgeConfig(), context, security)
    Bridge.start(name=BRIDGE, supervisor=None, bridge=handle)
    try:
        handle.wait_ready(timeout)
    except BindError:
        handle.stop(timeout)
        raise
    return handle
