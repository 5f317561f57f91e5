"""What a watcher keeps of one topic: the `View` protocol and the stage view. Pure.

A view is fed a topic's whole state (`reset`) and then its ordered updates
(`apply`); both say whether what it shows changed. `lifecycle` says whether a
change must never be delayed by throttling (status changes, a run's genesis,
failures). `InvocationView` (display modes) is the other view.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from ._display import DisplayMode, InvocationView

__all__ = ["InvocationWatch", "StageView", "View"]


class View(Protocol):
    def reset(self, state: Mapping[str, Any]) -> bool: ...

    def apply(self, key: str, value: Any) -> bool: ...

    def shown(self) -> Any: ...

    def lifecycle(self, key: str, value: Any) -> bool: ...


# Views may also define `share_key() -> Hashable | None`: views of one topic with
# equal keys are identical, so a host may keep one and show it to many watchers.


class StageView:
    """The latest state of one stage (`stage/<name>`, key `state`)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self._status: Any = None

    def share_key(self) -> Hashable:
        return "stage"

    def reset(self, state: Mapping[str, Any]) -> bool:
        value = state.get("state")
        return self.apply("state", value)

    def apply(self, key: str, value: Any) -> bool:
        if key != "state" or value == self.state:
            return False
        self.state = None if value is None else dict(value)
        return True

    def shown(self) -> dict[str, Any] | None:
        return self.state

    def lifecycle(self, key: str, value: Any) -> bool:
        status = value.get("status") if isinstance(value, dict) else None
        changed = bool(status != self._status)
        self._status = status
        return changed


class InvocationWatch(InvocationView):
    """An `InvocationView` whose genesis and failures are lifecycle changes."""

    def __init__(self, mode: DisplayMode) -> None:
        super().__init__(mode)

    def share_key(self) -> Hashable:
        return ("invocations", str(self.mode))

    def lifecycle(self, key: str, value: Any) -> bool:
        if not isinstance(value, dict):
            return key == "run"
        return value.get("sequence") == 0 or value.get("state") == "failed"
