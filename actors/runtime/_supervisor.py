"""Supervision for pykka actors, which have none of their own.

A `Supervisor` starts each child from a `ChildSpec` and restarts it when it
fails, also when it fails in `on_start`, within the child's restart intensity
(`RestartPolicy`); past it the child stays down and its state says why. Every
death is published at once on the topic `actor/<name>` (key `state`), so no
actor dies silently. The `Registry` maps each name to the child's current ref
across restarts; hold names, not refs.

Children subclass `Supervised`, whose hooks report failures to the supervisor
by `tell` (never a blocking ask between actors).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pykka

from ._bridge import BridgeHandle, StatisticsRequest
from ._restarts import Decision, RestartPolicy, RestartTracker

__all__ = ["ChildFailed", "ChildSpec", "Registry", "Supervised", "Supervisor"]

log = logging.getLogger("pipecast.supervisor")


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to (re)start one child: its class and constructor keywords."""

    name: str
    actor_class: type[Supervised]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    policy: RestartPolicy = field(default_factory=RestartPolicy)


@dataclass(frozen=True, slots=True)
class ChildFailed:
    """Told to the supervisor by a child that died (or could not start)."""

    name: str
    urn: str
    error: str


@dataclass(frozen=True, slots=True)
class _StartChild:
    spec: ChildSpec


class _Shutdown:
    __slots__ = ()


class Registry:
    """Name -> current actor ref; safe from any thread."""

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def get(self, name: str) -> pykka.ActorRef[Any] | None:
        with self._lock:
            return self._refs.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._refs)

    def set(self, name: str, ref: pykka.ActorRef[Any] | None) -> None:
        with self._lock:
            if ref is None:
                self._refs.pop(name, None)
            else:
                self._refs[name] = ref
            self._changed.notify_all()

    def tell(self, name: str, message: object) -> bool:
        """Tell the current `name` actor, if it is up; False if it is not (never raises)."""
        ref = self.get(name)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def wait_for(self, names: list[str], timeout: float) -> bool:
        """Block until every name has a ref (an edge call: node start-up, tests)."""
        with self._changed:
            return self._changed.wait_for(lambda: all(n in self._refs for n in names), timeout)


class Supervised(pykka.ThreadingActor):
    """Base of every supervised actor.

    Subclasses put their start-up in `on_begin` and clean-up in `on_end`
    (both run in the actor's thread). An exception in `on_begin`, or in any
    told message, is reported to the supervisor, which decides on a restart.
    """

    def __init__(self, *, name: str, supervisor: pykka.ActorRef[Any], bridge: BridgeHandle) -> None:
        super().__init__()
        self.actor_name = name
        self.supervisor = supervisor
        self.bridge = bridge

    def on_begin(self) -> None:
        """Start-up hook (actor thread). Raise to fail; you will be restarted."""

    def on_end(self, error: str | None) -> None:
        """Clean-up hook (actor thread): `error` is None on a stop, else why it died."""

    def statistics(self) -> object:
        """Counters and timings of this actor (telemetry; see the `stats` op):
        a frozen dataclass or a map of plain values."""
        return {}

    def on_start(self) -> None:
        try:
            self.on_begin()
        except Exception as exc:
            log.exception("%s failed to start", self.actor_name)
            self._report(exc)
            self.stop()

    def on_stop(self) -> None:
        self.on_end(None)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StatisticsRequest):
            message.reply(self.statistics())
            return None
        return super().on_receive(message)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del exception_type, traceback
        try:
            # our last word (e.g. a stage's `failed` state) goes out before the
            # supervisor hears of the death, so the next incarnation's first
            # state can never be published before it
            self.on_end(f"{type(exception_value).__name__}: {exception_value}")
        finally:
            self._report(exception_value)

    def _report(self, exc: BaseException | None) -> None:
        try:
            self.supervisor.tell(
                ChildFailed(self.actor_name, self.actor_urn, f"{type(exc).__name__}: {exc}")
            )
        except pykka.ActorDeadError:
            log.error("%s died after its supervisor: %r", self.actor_name, exc)


class Supervisor(pykka.ThreadingActor):
    """Starts and restarts children (see module docstring)."""

    def __init__(self, bridge: BridgeHandle, registry: Registry) -> None:
        super().__init__()
        self.bridge = bridge
        self.registry = registry
        self._specs: dict[str, ChildSpec] = {}
        self._trackers: dict[str, RestartTracker] = {}
        self._shutting_down = False
        self._deaths = 0
        self._gave_up = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildFailed):
            self._child_failed(message)
        elif isinstance(message, _StartChild):
            self._start(message.spec, restarts=0)
        elif isinstance(message, _Shutdown):
            self._shutting_down = True
        elif isinstance(message, StatisticsRequest):
            message.reply(self.statistics())
        else:
            return super().on_receive(message)
        return None

    def statistics(self) -> dict[str, int]:
        return {"children": len(self._specs), "deaths": self._deaths, "gave_up": self._gave_up}

    def _start(self, spec: ChildSpec, restarts: int, error: str | None = None) -> None:
        self._specs[spec.name] = spec
        self._trackers.setdefault(spec.name, RestartTracker(spec.policy))
        try:
            ref = spec.actor_class.start(
                name=spec.name, supervisor=self.actor_ref, bridge=self.bridge, **spec.kwargs
            )
        except Exception as exc:  # the constructor itself failed: it cannot be restarted
            self._gave_up += 1
            log.exception("%s could not be constructed", spec.name)
            self.registry.set(spec.name, None)
            self._publish(spec.name, "failed", restarts, f"{type(exc).__name__}: {exc}")
            return
        self.registry.set(spec.name, ref)
        self._publish(spec.name, "running", restarts, error)

    def _child_failed(self, msg: ChildFailed) -> None:
        current = self.registry.get(msg.name)
        if current is not None and current.actor_urn != msg.urn:
            return  # a report from an incarnation already replaced
        self._deaths += 1
        spec = self._specs.get(msg.name)
        if spec is None or self._shutting_down:
            self._publish(msg.name, "stopped", 0, msg.error)
            return
        tracker = self._trackers[msg.name]
        decision = tracker.failed(time.monotonic())
        if decision is Decision.RESTART:
            log.warning("%s died (%s); restart %d", msg.name, msg.error, tracker.restarts)
            self._publish(msg.name, "restarting", tracker.restarts, msg.error)
            self._start(spec, tracker.restarts, msg.error)
        else:
            self._gave_up += 1
            log.error("%s died (%s) past its restart intensity; left failed", msg.name, msg.error)
            self.registry.set(msg.name, None)
            self._publish(msg.name, "failed", tracker.restarts, msg.error)

    def _publish(self, name: str, status: str, restarts: int, error: str | None) -> None:
        self.bridge.publish(
            f"actor/{name}",
            "state",
            {"status": status, "restarts": restarts, "error": error, "ts": time.time()},
        )


def start_child(supervisor: pykka.ActorRef[Supervisor], spec: ChildSpec) -> None:
    """Ask the supervisor to start a child (tell; the registry has it shortly)."""
    supervisor.tell(_StartChild(spec))


def begin_shutdown(supervisor: pykka.ActorRef[Supervisor]) -> None:
    """Tell the supervisor to stop restarting: the node is going down."""
    supervisor.tell(_Shutdown())
