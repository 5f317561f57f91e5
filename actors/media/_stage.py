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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecast.actors.runtime import (
    POKE,
    CancelItem,
    Cancelled,
    Enqueue,
    Poke,
    Registry,
    Reply,
    Stage,
    WorkItem,
)
from pipecast.transport import BadRequest, PipecastError

from ._config import EncodeSettings, MediaPolicy
from ._job_states import RESOURCE_ERRNOS, RUNNING, JobState, MediaFailure, stage_of
from ._library import Library

__all__ = ["LibraryRequest", "MediaStage", "as_media_failure"]

log = logging.getLogger("pipecast.media")


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

    # -- the queue -----------------------------------------------------------------

    def queue_recover(self) -> int:
        self._counts = None
        jobs = self.library.jobs(self.RUNNING_STATE)
        for job in jobs:
            self.recover_job(job.id)
        return len(jobs)

    def recover_job(self, job_id: int) -> None:
        """A job this stage was running when its last incarnation died: back to its queue."""
        self.library.interrupt(job_id)

    def queue_add(self, payloads: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        raise BadRequest(f"{self.actor_name} takes no files: enqueue to the pipeline's first stage")

    def queue_take(self) -> WorkItem | None:
        self._counts = None
        job = self.library.take(self.queued_state)
        if job is None:
            return None
        return WorkItem(job.id, self.actor_name, {"path": job.path}, job.attempts)

    def queue_finish(self, item: WorkItem, result: dict[str, Any]) -> None:
        self._counts = None
        result = dict(result)  # a refused write is done again with the same result
        outcome = result.pop("outcome", "done")
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
        failure = as_media_failure(exc)
        state = self.library.fail(item.id, self.stage, failure, self.policy.max_attempts)
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
            self._counts = self.library.counts(self.RUNNING_STATE)
        return self._counts

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
        if name is None:
            req.reply(BadRequest(f"job {job_id} is {job.state.value}: nothing to cancel"))
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
