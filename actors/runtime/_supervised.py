"""The base of every supervised actor: start-up and clean-up hooks, failures reported.

pykka calls no hook when `on_start` raises and prints a failed `tell`'s
exception nowhere but the log; `Supervised` wraps both so that every failure
reaches the supervisor (by tell) after the actor's last word went out.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pykka

from ._messages import ChildFailed, StatisticsRequest

if TYPE_CHECKING:
    from ._bridge_handle import BridgeHandle

__all__ = ["Supervised"]

log = logging.getLogger("pipecast.supervisor")


class Supervised(pykka.ThreadingActor):
    """Base of every supervised actor.

    Subclasses put their start-up in `on_begin` and clean-up in `on_end`
    (both run in the actor's thread). An exception in `on_begin`, or in any
    told message, is reported to the supervisor, which decides on a restart.
    With no supervisor (an actor started on its own, in a test or a
    benchmark) a failure is only logged.
    """

    def __init__(
        self, *, name: str, supervisor: pykka.ActorRef[Any] | None, bridge: BridgeHandle
    ) -> None:
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
        if self.supervisor is None:
            log.error("%s died unsupervised: %r", self.actor_name, exc)
            return
        try:
            self.supervisor.tell(
                ChildFailed(self.actor_name, self.actor_urn, f"{type(exc).__name__}: {exc}")
            )
        except pykka.ActorDeadError:
            log.error("%s died after its supervisor: %r", self.actor_name, exc)
