"""Supervision for pykka actors, which have none of their own.

A `Supervisor` starts each child from a `ChildSpec` and restarts it when it
fails, also when it fails in `on_start`, within the child's restart intensity
(`RestartPolicy`); past it the child stays down and its state says why. Every
death is published at once on the topic `actor/<name>` (key `state`), so no
actor dies silently. The `Registry` maps each name to the child's current ref
across restarts; hold names, not refs.

Children subclass `Supervised`, whose hooks report failures to the supervisor
by `tell` (never a blocking ask between actors). The bridge is a child too:
its deaths are published once its next incarnation runs (the bridge is how
anything is published); if it stays down, the handle is closed and the death
is only logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka

from ._bridge import BRIDGE
from ._bridge_handle import BridgeHandle
from ._messages import ChildFailed, StatisticsRequest
from ._restarts import Decision, RestartPolicy, RestartTracker
from ._supervised import Supervised

__all__ = ["ChildSpec", "Registry", "Supervisor", "begin_shutdown", "start_child"]

log = logging.getLogger("pipecast.supervisor")


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to (re)start one child: its class and constructor keywords."""

    name: str
    actor_class: type[Supervised]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    policy: RestartPolicy = field(default_factory=RestartPolicy)


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


class Supervisor(pykka.ThreadingActor):
    """Starts and restarts children (see module docstring)."""

    def __init__(
        self, bridge: BridgeHandle, registry: Registry, topic_prefix: str = "actor/"
    ) -> None:
        """`topic_prefix`: where each child's state goes (`<prefix><name>`); a relay's
        own actors go under `relay/actor/`, apart from the nodes' it mirrors."""
        super().__init__()
        self.bridge = bridge
        self.registry = registry
        self.topic_prefix = topic_prefix
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
        if spec.name == BRIDGE and restarts:
            self._publish(spec.name, "restarting", restarts, error)
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
            if msg.name != BRIDGE:  # a dead bridge publishes nothing: said once it is back
                self._publish(msg.name, "restarting", tracker.restarts, msg.error)
            self._start(spec, tracker.restarts, msg.error)
        else:
            self._gave_up += 1
            log.error("%s died (%s) past its restart intensity; left failed", msg.name, msg.error)
            self.registry.set(msg.name, None)
            if msg.name == BRIDGE:
                self.bridge._close()  # nothing can be published any more
                return
            self._publish(msg.name, "failed", tracker.restarts, msg.error)

    def _publish(self, name: str, status: str, restarts: int, error: str | None) -> None:
        self.bridge.publish(
            f"{self.topic_prefix}{name}",
            "state",
            {"status": status, "restarts": restarts, "error": error, "ts": time.time()},
        )


def start_child(supervisor: pykka.ActorRef[Supervisor], spec: ChildSpec) -> None:
    """Ask the supervisor to start a child (tell; the registry has it shortly)."""
    supervisor.tell(_StartChild(spec))


def begin_shutdown(supervisor: pykka.ActorRef[Supervisor]) -> None:
    """Tell the supervisor to stop restarting: the node is going down."""
    supervisor.tell(_Shutdown())
