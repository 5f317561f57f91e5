"""Media stages: their queue is the library, not the generic work table.

`MediaStage` adapts the stage base to the library: a stage takes jobs from
its queued state into its running state, ends them done, skipped or failed
through the job table, and pokes the next stage when it hands a job on. It
also answers the library's control requests (`LibraryRequest`: jobs, retry,
cancel). The stages themselves live in modules named after their kinds:
`_analyze.py`, `_fixed_crf.py`, `_encode.py` and `crf/_crf_search.py`.

All of it runs in the stage's thread.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecast.actors.cluster import HoldStatistics, LeaseLost
from pipecast.actors.runtime import (
    POKE,
    CancelItem,
    Cancelled,
    Enqueue,
    Poke,
    Registry,
    Reply,
    Stage,
    StageStatistics,
    StoreError,
    TimerDue,
    WorkItem,
)
from pipecast.transport import BadRequest, PipecastError

from ._config import EncodeSettings, MediaPolicy
from ._job_states import RESOURCE_ERRNOS, RUNNING, JobState, MediaFailure, stage_of
from ._library import Library

__all__ = ["LibraryRequest", "MediaStage", "MediaStageStatistics", "as_media_failure"]

log = logging.getLogger("pipecast.media")


@dataclass(frozen=True, slots=True)
class MediaStageStatistics(StageStatistics):
    """A media stage's part of `stats`: the stage's counts, and its holds on jobs."""

    holds: HoldStatistics | None = None


@dataclass(frozen=True, slots=True)
class LibraryRequest:
    """op: jobs (state, limit), retry (ids | code), cancel (id). Validated by the sender."""

    op: str
    args: dict[str, Any]
    cid: str | None
    reply: Reply


def as_media_failure(exc: Exception) -> MediaFailure:
    """What a job's failure is recorded as: a cancel, the stage's own
    `MediaFailure`, a resource that ran out (no space, no file descriptors, a
    read-only disk) as `resource` with its errno's name, or anything else as
    `internal` named by its type."""
    if isinstance(exc, Cancelled):
        return MediaFailure("cancelled", "CANCELLED", str(exc))
    if isinstance(exc, MediaFailure):
        return exc
    if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
        return MediaFailure("resource", errno.errorcode[exc.errno], str(exc))
    return MediaFailure("internal", type(exc).__name__, str(exc))


class MediaStage(Stage):
    """Base of the media stages (see module docstring)."""

    RUNNING_STATE: JobState = JobState.ANALYZING
    OPTIONS = frozenset()

    def __init__(
        self,
        *,
        library: Library,
        policy: MediaPolicy,
        settings: EncodeSettings,
        work_dir: Path,
        registry: Registry,
        stage_names: dict[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.policy = policy
        self.settings = settings
        self.work_dir = work_dir
        self.registry = registry
        # running state value -> the name of the stage that runs it (for pokes and cancels)
        self.stage_names = stage_names
        self.queued_state, self.done_state = RUNNING[self.RUNNING_STATE]
        self.stage = stage_of(self.RUNNING_STATE) or "analysis"
        self._counts: dict[str, int] | None = None  # None: count again
        self._renewed = 0.0  # monotonic time of the current job's last lease renewal
        self._swept = 0.0  # ... of the last look for jobs whose holder's lease lapsed
        self._shown: dict[str, int] | None = None  # the counts last published by a tick

    # -- the queue -----------------------------------------------------------------

    def queue_recover(self) -> int:
        """Jobs this node's last incarnation of the stage held: taken back under a new
        fence and recovered (other nodes' jobs are theirs until their leases lapse)."""
        self._counts = None
        recovered = 0
        for job_id in self.library.mine(self.RUNNING_STATE):
            if self.library.adopt(job_id, own=True) is not None:
                self.recover_job(job_id, own=True)
                recovered += 1
        return recovered

    def recover_job(self, job_id: int, own: bool) -> None:
        """A job this stage holds whose work was cut (its incarnation died: `own`; or
        another node's lease on it lapsed): back to its queue."""
        self.library.interrupt(job_id)

    # -- holds (stage thread, every timer tick) -------------------------------------------

    def _keep_holds(self) -> None:
        """Renew the current job's lease (or drop the job if the hold was lost; cancel
        it if a cancel was asked of whichever node holds it), take over jobs whose
        holder's lease lapsed, and show what other nodes changed in the counts."""
        now = time.monotonic()
        item = self.current
        try:
            if item is not None and now - self._renewed >= self.library.lease / 3:
                try:
                    cancel = self.library.renew(item.id)
                except LeaseLost as exc:
                    self._abandon(item, exc)
                    return
                self._renewed = now
                if cancel:
                    self._cancel(CancelItem(item.id, None, lambda _result: None))
            if now - self._swept >= min(5.0, self.library.lease / 3):
                self._swept = now
                self.library.registry.seen()
                self._take_over_lapsed()
                self._counts = None
                if self.queue_counts() != self._shown:
                    self._publish(None)
                if self.current is None:
                    self._kick()
            elif self.current is None and self.library.db.shared:
                # other nodes queue work too, and say nothing: look every tick when idle
                self._kick()
        except StoreError as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.error("%s: cannot keep the holds: %s", self.actor_name, exc)

    def _take_over_lapsed(self) -> None:
        for job_id in self.library.lapsed(self.RUNNING_STATE):
            job = self.library.adopt(job_id)
            if job is None:
                continue
            log.warning("%s: job %d's lease lapsed; recovering it here", self.actor_name, job_id)
            try:
                self.recover_job(job_id, own=False)
            except LeaseLost:
                self.library.forget(job_id)
            except BaseException:
                self.library.forget(job_id)  # a later sweep takes it over again
                raise
            self._poke_all()

    def _abandon(self, item: WorkItem, why: Exception) -> None:
        """The current job is no longer this node's: stop its work, record nothing."""
        log.warning("%s: dropping job %d: %s", self.actor_name, item.id, why)
        try:
            self.cancel_item(item)
        except Exception:
            log.exception("%s: cancel_item failed", self.actor_name)
        self.library.forget(item.id)
        self._item_over(item)
        self._publish(None)
        self._kick()

    def statistics(self) -> StageStatistics:
        base = super().statistics()
        return MediaStageStatistics(
            base.steps,
            base.items_ended,
            base.busy_seconds,
            base.mean_step_ms,
            self.library.statistics(self.queued_state),
        )

    def on_end(self, error: str | None) -> None:
        try:
            super().on_end(error)
        finally:
            self.library.release()

    def queue_add(self, payloads: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        raise BadRequest(f"{self.actor_name} takes no files: enqueue to the pipeline's first stage")

    def queue_take(self) -> WorkItem | None:
        self._counts = None
        job = self.library.take(self.queued_state)
        if job is None:
            return None
        self._renewed = time.monotonic()
        return WorkItem(job.id, self.actor_name, {"path": job.path}, job.attempts)

    def queue_finish(self, item: WorkItem, result: dict[str, Any]) -> None:
        self._counts = None
        result = dict(result)  # a refused write is done again with the same result
        outcome = result.pop("outcome", "done")
        try:
            self._finish(item, outcome, result)
        except LeaseLost as exc:
            self.library.forget(item.id)
            log.warning("%s: job %d's result not recorded: %s", self.actor_name, item.id, exc)

    def _finish(self, item: WorkItem, outcome: str, result: dict[str, Any]) -> None:
        if outcome == "recorded":  # the stage recorded it itself (the encoder's commit)
            self._poke_next()
        elif outcome == "skipped":
            reason = result.pop("reason")
            self.library.skip(item.id, self.stage, reason, **result)
            log.info("%s: job %d skipped (%s)", self.actor_name, item.id, reason)
        else:
            self.library.done(item.id, **result)
            self._poke_next()

    def queue_fail(self, item: WorkItem, exc: Exception) -> None:
        self._counts = None
        if isinstance(exc, LeaseLost):  # another node holds the job now: it is theirs
            self.library.forget(item.id)
            log.warning("%s: job %d dropped: %s", self.actor_name, item.id, exc)
            return
        if isinstance(exc, StoreError):
            # not the job's fault, and nothing can be recorded now: let the hold lapse,
            # and whichever node sees that first (this one too) recovers the job
            self.library.forget(item.id)
            log.warning("%s: job %d left to its lease: %s", self.actor_name, item.id, exc)
            return
        failure = as_media_failure(exc)
        try:
            state = self.library.fail(item.id, self.stage, failure, self.policy.max_attempts)
        except LeaseLost as lost:
            self.library.forget(item.id)
            log.warning("%s: job %d's failure not recorded: %s", self.actor_name, item.id, lost)
            return
        if state is not JobState.FAILED:
            log.info("%s: job %d will be tried again (%s)", self.actor_name, item.id, failure.code)
        else:
            log.warning(
                "%s: job %d failed (%s/%s): %s",
                self.actor_name,
                item.id,
                failure.category,
                failure.code,
                failure,
            )

    def queue_counts(self) -> dict[str, int]:
        # counting scans the library: do it when a job moved, not at every
        # published step of an encode (several a second)
        if self._counts is None:
            try:
                self._counts = self.library.counts(self.RUNNING_STATE)
            except StoreError as exc:  # a shared store out of reach: the last counts known
                self._last_error = f"{type(exc).__name__}: {exc}"
                return self._shown or {"queued": 0, "running": 0, "done": 0, "failed": 0}
        return self._counts

    def state(self) -> dict[str, Any]:
        state = super().state()
        self._shown = self._counts
        return state

    def _poke_next(self) -> None:
        for running, (queued, _) in RUNNING.items():
            if queued is self.done_state:
                name = self.stage_names.get(running.value)
                if name is not None:
                    self.registry.tell(name, POKE)

    def _poke_all(self) -> None:
        for name in set(self.stage_names.values()):
            if name != self.actor_name:
                self.registry.tell(name, POKE)

    # -- library requests -----------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Poke | Enqueue):  # jobs moved elsewhere, or are coming in
            self._counts = None
        if isinstance(message, TimerDue) and self._began:
            self._keep_holds()
        if isinstance(message, LibraryRequest):
            try:
                self._library_request(message)
            except PipecastError as exc:
                message.reply(exc)
            return None
        return super().on_receive(message)

    def _library_request(self, req: LibraryRequest) -> None:
        if req.op == "jobs":
            state = req.args.get("state")
            jobs = self.library.jobs(
                JobState(state) if state else None, req.args.get("limit", 1000)
            )
            req.reply({"jobs": [j.as_dict() for j in jobs]})
        elif req.op == "job":
            job = self.library.get(req.args["id"])
            if job is None:
                req.reply(BadRequest(f"no job {req.args['id']}"))
            else:
                probes = self.library.searches.probes_of(job.id)
                req.reply({**job.as_dict(), "probes": probes})
        elif req.op == "retry":
            ids, refused = self.library.retry(req.args.get("ids"), req.args.get("code"))
            log.info("%s: retry %s [cid=%s]", self.actor_name, ids, req.cid)
            result: dict[str, Any] = {"retried": ids, "not_retried": refused}
            if req.args.get("code") is not None:
                result["codes"] = self.library.failure_codes()
            req.reply(result)
            self._after_library_change(req.cid)
        elif req.op == "cancel":
            self._cancel_job(req)
        elif req.op == "nodes":
            req.reply({"nodes": self.library.registry.nodes()})
        else:
            req.reply(BadRequest(f"unknown library request {req.op!r}"))

    def _cancel_job(self, req: LibraryRequest) -> None:
        job_id = req.args["id"]
        if self.library.cancel_queued(job_id):
            req.reply({"id": job_id, "cancelled": True, "was": "queued"})
            self._after_library_change(req.cid)
            return
        job = self.library.get(job_id)
        if job is None:
            req.reply(BadRequest(f"no job {job_id}"))
            return
        name = self.stage_names.get(job.state.value)
        if job.state not in RUNNING:
            req.reply(BadRequest(f"job {job_id} is {job.state.value}: nothing to cancel"))
            return
        if name is None or job.node != self.library.node:
            # another node holds it: it cancels the job at its next renewal
            holder = self.library.request_cancel(job_id)
            if holder is None:
                req.reply(BadRequest(f"job {job_id} is no longer running; try again"))
            else:
                req.reply({"id": job_id, "cancelled": "requested", "node": holder})
            return

        def answered(result: Any) -> None:  # the owning stage's thread
            if isinstance(result, dict) and not result.get("cancelled"):
                result = BadRequest(f"job {job_id} was not running in {name}; try again")
            req.reply(result if not isinstance(result, dict) else {"id": job_id, **result})

        if not self.registry.tell(name, CancelItem(job_id, req.cid, answered)):
            req.reply(PipecastError(f"stage {name} is down (see actor/{name})"))

    def _after_library_change(self, cid: str | None) -> None:
        self._counts = None
        self._publish(cid)
        self._poke_all()
        self._kick()
