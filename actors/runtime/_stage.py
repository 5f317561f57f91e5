"""The stage base: a supervised actor with a durable queue and one true state.

A stage takes work items from the store one at a time and advances the
current one in short steps, each a message to itself, so pause, resume and
stop requests interleave with the work instead of waiting behind it. After
every change it publishes its whole state (status, current item, progress,
counters, velocity) as one update on `stage/<name>`, stamped with the cid of
the request that caused it. Status changes go through the pure `transition`.

Requests arrive as `StageCommand` / `Enqueue` messages carrying a `reply`
callable; the stage calls it in its own thread with the result (a tell back
to whoever asked, never a blocking ask between actors).

A store that cannot be written (a full disk, a read-only file) never kills a
stage: an item's outcome that cannot be recorded is kept, in order, and
recorded again every second until it is (`last_error` says why meanwhile);
taking new work waits for the same.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from pipecast.transport import BadRequest, PipecastError

from ._bridge_handle import BridgeHandle
from ._inbox import TimerDue
from ._polling_actor import PollingActor
from ._stage_status import StageEvent, StageStatistics, StageStatus, Velocity, transition
from ._store import Store, StoreError, WorkItem
from ._supervised import Supervised

__all__ = [
    "POKE",
    "CancelItem",
    "Cancelled",
    "Enqueue",
    "Poke",
    "Reply",
    "Stage",
    "StageCommand",
    "StageStatistics",
]

log = logging.getLogger("pipecast.stage")

Reply = Callable[[dict[str, Any] | PipecastError], None]


@dataclass(frozen=True, slots=True)
class StageCommand:
    """pause, suspend, resume or toggle; `reply` gets the stage's new state."""

    op: str
    cid: str | None
    reply: Reply


@dataclass(frozen=True, slots=True)
class Enqueue:
    payloads: tuple[dict[str, Any], ...]
    cid: str | None
    reply: Reply


@dataclass(frozen=True, slots=True)
class CancelItem:
    """Cancel work item `item_id` if it is this stage's current one; `reply` says if it was."""

    item_id: int
    cid: str | None
    reply: Reply


class Cancelled(PipecastError):
    """An item was cancelled by request."""


class _Step:
    __slots__ = ()


class Poke:
    """Told to a stage when its queue may have changed elsewhere: look again, republish."""

    __slots__ = ()


POKE = Poke()


_STEP = _Step()
_EVENTS = {
    "pause": StageEvent.PAUSE,
    "suspend": StageEvent.SUSPEND,
    "resume": StageEvent.RESUME,
    "toggle": StageEvent.TOGGLE,
}


_RETRY_EVERY = 1.0  # seconds between attempts to record what the store refused


class Stage(PollingActor, Supervised):
    """Base of pipeline stages. Subclasses implement `begin_item` and `advance`."""

    # the keyword options a node's config may pass to this stage
    OPTIONS: frozenset[str] = frozenset()

    def __init__(
        self, *, name: str, supervisor: pykka.ActorRef[Any], bridge: BridgeHandle, store: Store
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.store = store
        self.topic = f"stage/{name}"
        self.status = StageStatus.IDLE
        self.current: WorkItem | None = None
        self.progress = 0.0
        self.detail: dict[str, Any] = {}
        self._velocity = Velocity()
        self._scheduled = False
        self._began = False
        self._last_error: str | None = None
        self._steps = 0
        self._items_ended = 0
        self._busy = 0.0
        self._unrecorded: deque[Callable[[], None]] = deque()  # outcomes the store refused
        self._store_down = False

    # -- subclass hooks (stage thread) ----------------------------------------

    def begin_item(self, item: WorkItem) -> None:
        """Prepare to work on `item`. Raise to fail the item (not the stage)."""

    def advance(self, item: WorkItem) -> dict[str, Any] | None:
        """Do one short step (well under a second) of `item`.

        Set `self.progress` (0..1) and `self.detail`; return the result map
        when the item is done, None while it is not. Raise to fail the item.
        """
        raise NotImplementedError

    def end_item(self, item: WorkItem) -> None:
        """Release what `begin_item` took, whether the item succeeded or not."""

    def suspend_item(self, item: WorkItem) -> None:
        """Stop the current item's work where it is (e.g. SIGSTOP its processes)."""

    def resume_item(self, item: WorkItem) -> None:
        """Continue what `suspend_item` stopped."""

    def cancel_item(self, item: WorkItem) -> None:
        """Abandon the current item (kill its processes); `end_item` follows."""

    # -- the queue (the store's `work` table; media stages keep their own) ------

    def queue_recover(self) -> int:
        """Put back what a dead incarnation was working on; how many."""
        return self.store.requeue_running(self.actor_name)

    def queue_add(self, payloads: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        return {"stage": self.actor_name, "ids": self.store.enqueue(self.actor_name, payloads)}

    def queue_take(self) -> WorkItem | None:
        return self.store.take(self.actor_name)

    def queue_finish(self, item: WorkItem, result: dict[str, Any]) -> None:
        self.store.finish(item.id, result)

    def queue_fail(self, item: WorkItem, exc: Exception) -> None:
        self.store.fail(item.id, f"{type(exc).__name__}: {exc}")

    def queue_counts(self) -> dict[str, int]:
        """At least queued, done and failed."""
        return self.store.counts(self.actor_name)

    # -- lifecycle --------------------------------------------------------------

    def on_begin(self) -> None:
        self.poll_every(_RETRY_EVERY)
        self._write_store(self._recover_queue)
        self.status = (
            StageStatus.PAUSED if self.store.is_paused(self.actor_name) else StageStatus.IDLE
        )
        self._began = True
        self._publish(None)
        self._kick()

    def on_end(self, error: str | None) -> None:
        try:
            if not self._began:
                return  # never started: nothing to release, no state of ours to end
            if self.current is not None:
                self._safe_end_item(self.current)
            if error is None:
                self.status = transition(self.status, StageEvent.STOP)
            else:
                # the last word of a dead stage is that it failed, and why; its
                # next incarnation (if any) publishes anew
                self.status = transition(self.status, StageEvent.FAIL)
                self._last_error = error
            self._publish(None)
        finally:
            self.stop_polling()
            self.store.release()

    def _recover_queue(self) -> None:
        requeued = self.queue_recover()
        if requeued:
            log.info("%s: %d interrupted item(s) back in the queue", self.actor_name, requeued)

    def _write_store(self, write: Callable[[], None]) -> bool:
        """Write to the store, or keep `write` to do again (in order) if the store
        refuses it. True if everything kept so far is written."""
        self._unrecorded.append(write)
        while self._unrecorded:
            try:
                self._unrecorded[0]()
            except StoreError as exc:
                self._store_down = True
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.error("%s: the store refused a write (%s); trying again", self.actor_name, exc)
                return False
            self._unrecorded.popleft()
        if self._store_down:
            self._store_down = False
            log.info("%s: the store takes writes again", self.actor_name)
        return True

    def _retry_store(self) -> None:
        if self._unrecorded and self._write_store(lambda: None):
            self._publish(None)
            self._kick()

    def statistics(self) -> StageStatistics:
        return StageStatistics(
            steps=self._steps,
            items_ended=self._items_ended,
            busy_seconds=round(self._busy, 6),
            mean_step_ms=round(self._busy / self._steps * 1000, 3) if self._steps else None,
        )

    # -- messages ---------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if message is _STEP:
            self._scheduled = False
            self._step()
        elif isinstance(message, TimerDue):
            self._retry_store()
        elif isinstance(message, StageCommand):
            self._command(message)
        elif isinstance(message, Enqueue):
            try:
                result = self.queue_add(message.payloads)
            except PipecastError as exc:
                message.reply(exc)
                return None
            log.info("%s: queued %s [cid=%s]", self.actor_name, result, message.cid)
            message.reply(result)
            self._publish(message.cid)
            self._kick()
        elif isinstance(message, CancelItem):
            self._cancel(message)
        elif isinstance(message, Poke):
            self._publish(None)
            self._kick()
        else:
            return super().on_receive(message)
        return None

    def _command(self, cmd: StageCommand) -> None:
        event = _EVENTS.get(cmd.op)
        if event is None:
            log.info("%s: unknown command %r [cid=%s]", self.actor_name, cmd.op, cmd.cid)
            cmd.reply(BadRequest(f"unknown stage command {cmd.op!r}"))
            return
        before = self.status
        self.status = transition(self.status, event)
        if self.status is StageStatus.PAUSING and self.current is None:
            self.status = transition(self.status, StageEvent.ITEM_ENDED)
        if self.current is not None and self.status is not before:
            if self.status is StageStatus.SUSPENDED:
                self.suspend_item(self.current)
            elif before is StageStatus.SUSPENDED:
                self.resume_item(self.current)
        if self.status.held != before.held:
            held = self.status.held
            self._write_store(lambda: self.store.set_paused(self.actor_name, held))
        log.info(
            "%s: %s, %s -> %s [cid=%s]",
            self.actor_name,
            cmd.op,
            before.value,
            self.status.value,
            cmd.cid,
        )
        state = self._publish(cmd.cid)
        cmd.reply(state)
        self._kick()

    def _kick(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.actor_ref.tell(_STEP)

    def _cancel(self, msg: CancelItem) -> None:
        item = self.current
        if item is None or item.id != msg.item_id:
            msg.reply({"stage": self.actor_name, "cancelled": False})
            return
        log.info("%s: cancelling item %d [cid=%s]", self.actor_name, item.id, msg.cid)
        try:
            self.cancel_item(item)
        finally:
            self._item_failed(item, Cancelled(f"cancelled by request [cid={msg.cid}]"))
        msg.reply({"stage": self.actor_name, "cancelled": True})

    def _step(self) -> None:
        if self.status in (
            StageStatus.PAUSED,
            StageStatus.SUSPENDED,
            StageStatus.STOPPING,
            StageStatus.FAILED,
        ):
            return
        item = self.current
        if item is None:
            if self.status is StageStatus.PAUSING:
                self.status = transition(self.status, StageEvent.ITEM_ENDED)
                self._publish(None)
                return
            if self._unrecorded:
                return  # the store is refusing writes: nothing new until it takes them
            try:
                item = self.queue_take()
            except StoreError as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.error("%s: cannot take work from the store: %s", self.actor_name, exc)
                return  # the timer tries again
            if item is None:
                if self.status is StageStatus.RUNNING:
                    self.status = transition(self.status, StageEvent.QUEUE_EMPTY)
                    self._publish(None)
                return
            self.current, self.progress, self.detail = item, 0.0, {}
            self.status = transition(self.status, StageEvent.ITEM_STARTED)
            self._velocity.started(time.monotonic())
            try:
                self.begin_item(item)
            except Exception as exc:  # a bad item fails alone; the stage goes on
                self._item_failed(item, exc)
                return
        t0 = time.perf_counter()
        try:
            result = self.advance(item)
        except Exception as exc:
            self._item_failed(item, exc)
            return
        finally:
            self._steps += 1
            self._busy += time.perf_counter() - t0
        if result is not None:
            self._write_store(lambda: self.queue_finish(item, result))
            self._velocity.item_done(time.monotonic())
            self._item_over(item)
        self._publish(None)
        self._kick()

    def _item_failed(self, item: WorkItem, exc: Exception) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"
        log.warning("%s: item %d failed: %s", self.actor_name, item.id, self._last_error)
        self._write_store(lambda: self.queue_fail(item, exc))
        self._item_over(item)
        self._publish(None)
        self._kick()

    def _item_over(self, item: WorkItem) -> None:
        self._items_ended += 1
        self._safe_end_item(item)
        self.current, self.progress, self.detail = None, 0.0, {}
        if self.status in (StageStatus.PAUSING, StageStatus.SUSPENDED):
            self.status = transition(self.status, StageEvent.ITEM_ENDED)
        elif self.queue_counts()["queued"] == 0:
            # say "idle" in the same update that says the item is done: never
            # a "running" state with nothing running
            self.status = transition(self.status, StageEvent.QUEUE_EMPTY)

    def _safe_end_item(self, item: WorkItem) -> None:
        try:
            self.end_item(item)
        except Exception:
            log.exception("%s: end_item failed", self.actor_name)

    def state(self) -> dict[str, Any]:
        counts = self.queue_counts()
        item = self.current
        return {
            "status": self.status.value,
            "item": None if item is None else {"id": item.id, **item.payload},
            "progress": self.progress,
            "detail": dict(self.detail),
            "done": counts["done"],
            "failed": counts["failed"],
            "skipped": counts.get("skipped", 0),
            "queue": counts["queued"],
            "velocity": round(self._velocity.per_hour(time.monotonic()), 3),
            "last_error": self._last_error,
        }

    def _publish(self, cid: str | None) -> dict[str, Any]:
        state = self.state()
        self.bridge.publish(self.topic, "state", state, cid)
        return state
