"""The states of a media file's job and the one table that moves them. Pure.

    needs_analysis -> analyzing -> analyzed -> crf_searching -> crf_searched
        -> encoding -> encoded
    any running state -> skipped (with a reason) | failed (stage, category, code)

Each stage takes jobs from one queued state into its running state (`TAKE`)
and ends them with `DONE`, `SKIP` or `FAIL`. `INTERRUPT` puts a running job
back where its stage found it (a restart after a crash: the encode starts
again, the chosen CRF is kept). `RETRY` sends a failed job back to the queue
of the stage that failed it. `CANCEL` fails a queued or running job with the
category `cancelled`. `RESCAN` sends a job whose source changed back to
analysis. Anything else is an `InvalidTransition`: the store never holds a
state the table cannot explain.
"""

from __future__ import annotations

import enum
import errno

from pipecast.transport import ErrorType, PipecastError

__all__ = [
    "QUEUED",
    "RESOURCE_ERRNOS",
    "RETRYABLE",
    "RUNNING",
    "InvalidTransition",
    "JobEvent",
    "JobState",
    "MediaFailure",
    "job_transition",
    "stage_of",
]


class JobState(enum.Enum):
    NEEDS_ANALYSIS = "needs_analysis"
    ANALYZING = "analyzing"
    ANALYZED = "analyzed"
    CRF_SEARCHING = "crf_searching"
    CRF_SEARCHED = "crf_searched"
    ENCODING = "encoding"
    ENCODED = "encoded"
    SKIPPED = "skipped"
    FAILED = "failed"


class JobEvent(enum.Enum):
    TAKE = "take"
    DONE = "done"
    SKIP = "skip"
    FAIL = "fail"
    INTERRUPT = "interrupt"
    RETRY = "retry"
    CANCEL = "cancel"
    RESCAN = "rescan"


J, V = JobState, JobEvent

# the queue each running state was taken from, and where DONE leads
RUNNING: dict[JobState, tuple[JobState, JobState]] = {
    J.ANALYZING: (J.NEEDS_ANALYSIS, J.ANALYZED),
    J.CRF_SEARCHING: (J.ANALYZED, J.CRF_SEARCHED),
    J.ENCODING: (J.CRF_SEARCHED, J.ENCODED),
}
QUEUED: dict[JobState, JobState] = {queued: running for running, (queued, _) in RUNNING.items()}
_STAGE = {J.ANALYZING: "analysis", J.CRF_SEARCHING: "crf_search", J.ENCODING: "encoding"}
_QUEUE_OF_STAGE = {stage: RUNNING[running][0] for running, stage in _STAGE.items()}

# failure categories an automatic retry may fix (up to the attempts limit)
RETRYABLE = frozenset({"stalled", "resource", "encoder_crash"})
# a resource that ran out (space, file descriptors, memory, a writable disk): the
# category `resource`, retryable once it is back
RESOURCE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.EROFS, errno.ENOMEM}
)


class InvalidTransition(PipecastError):
    """A job event that means nothing in the job's state (e.g. retrying an encoded file)."""

    wire_type = ErrorType.BAD_REQUEST


class MediaFailure(PipecastError):
    """Why a job failed: the stage, a category (source_missing, ...) and a code."""

    wire_type = ErrorType.MEDIA_FAILED

    def __init__(self, category: str, code: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.code = code


def stage_of(state: JobState) -> str | None:
    """The stage name of a running state (analysis, crf_search, encoding)."""
    return _STAGE.get(state)


def job_transition(state: JobState, event: JobEvent, failed_stage: str | None = None) -> JobState:
    """The state after `event`, or `InvalidTransition`.

    `failed_stage` is needed for `RETRY` (the stage that failed the job).
    """
    if event is V.TAKE and state in QUEUED:
        return QUEUED[state]
    if state in RUNNING:
        queued, done = RUNNING[state]
        outcome = {
            V.DONE: done,
            V.SKIP: J.SKIPPED,
            V.FAIL: J.FAILED,
            V.INTERRUPT: queued,
            V.CANCEL: J.FAILED,
        }.get(event)
        if outcome is not None:
            return outcome
    if event is V.CANCEL and state in QUEUED:
        return J.FAILED
    if event is V.RETRY and state is J.FAILED:
        if failed_stage not in _QUEUE_OF_STAGE:
            raise InvalidTransition(f"a failure in stage {failed_stage!r} cannot be retried")
        return _QUEUE_OF_STAGE[failed_stage]
    if event is V.RESCAN and state not in RUNNING:
        return J.NEEDS_ANALYSIS
    raise InvalidTransition(f"{event.value} means nothing for a job that is {state.value}")
