"""Job states: every transition of the pure table, and what a retry or an interruption does."""

from __future__ import annotations

import errno
import itertools
import os

import pytest

from pipecast.actors import (
    JobEvent,
    JobState,
    job_transition,
)
from pipecast.actors.media import (
    QUEUED,
    RETRYABLE,
    RUNNING,
    InvalidTransition,
    as_media_failure,
)

J, V = JobState, JobEvent


# -- job states ----------------------------------------------------------------------------


def test_a_job_goes_through_every_stage_to_encoded() -> None:
    state = J.NEEDS_ANALYSIS
    seen = [state]
    while state is not J.ENCODED:
        state = job_transition(state, V.TAKE if state in QUEUED else V.DONE)
        seen.append(state)
    assert [s.value for s in seen] == [
        "needs_analysis",
        "analyzing",
        "analyzed",
        "crf_searching",
        "crf_searched",
        "encoding",
        "encoded",
    ]


@pytest.mark.parametrize(("state", "event"), list(itertools.product(J, V)))
def test_every_state_event_pair_is_defined_or_refused(state: JobState, event: JobEvent) -> None:
    try:
        after = job_transition(state, event, "encoding")
    except InvalidTransition:
        after = None
    if event is V.TAKE:
        assert after == (QUEUED.get(state))
    elif event in (V.DONE, V.SKIP, V.FAIL, V.INTERRUPT):
        assert (after is not None) == (state in RUNNING)
    elif event is V.CANCEL:
        assert after == (J.FAILED if state in RUNNING or state in QUEUED else None)
    elif event is V.RETRY:
        assert after == (J.CRF_SEARCHED if state is J.FAILED else None)
    elif event is V.RESCAN:
        assert after == (None if state in RUNNING else J.NEEDS_ANALYSIS)


def test_an_interrupted_job_goes_back_where_its_stage_found_it() -> None:
    assert job_transition(J.ANALYZING, V.INTERRUPT) is J.NEEDS_ANALYSIS
    assert job_transition(J.CRF_SEARCHING, V.INTERRUPT) is J.ANALYZED
    assert job_transition(J.ENCODING, V.INTERRUPT) is J.CRF_SEARCHED  # the chosen CRF is kept


@pytest.mark.parametrize(
    ("stage", "queue"),
    [("analysis", J.NEEDS_ANALYSIS), ("crf_search", J.ANALYZED), ("encoding", J.CRF_SEARCHED)],
)
def test_a_retry_goes_back_to_the_queue_of_the_stage_that_failed(
    stage: str, queue: JobState
) -> None:
    assert job_transition(J.FAILED, V.RETRY, stage) is queue


def test_a_retry_without_a_known_stage_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        job_transition(J.FAILED, V.RETRY, None)


@pytest.mark.parametrize(
    ("err", "code"),
    [(errno.ENOSPC, "ENOSPC"), (errno.EMFILE, "EMFILE"), (errno.EROFS, "EROFS")],
)
def test_a_resource_that_ran_out_is_a_retryable_resource_failure(err: int, code: str) -> None:
    failure = as_media_failure(OSError(err, os.strerror(err)))
    assert (failure.category, failure.code) == ("resource", code)
    assert failure.category in RETRYABLE


def test_any_other_error_is_internal_named_by_its_type() -> None:
    failure = as_media_failure(OSError(errno.EACCES, "denied"))
    assert (failure.category, failure.code) == ("internal", "PermissionError")
