"""The `crf` stage: every file gets the configured CRF, with no search.

For pipelines that know their CRF (and for tests that need a fast one); the
`crf_search` stage chooses one per file instead. Runs in the stage's thread.
"""

from __future__ import annotations

from typing import Any

from pipecast.actors.runtime import WorkItem

from ._job_states import JobState
from ._stage import MediaStage

__all__ = ["FixedCrfStage"]


class FixedCrfStage(MediaStage):
    """Until a CRF search is configured: every file gets the configured CRF."""

    RUNNING_STATE = JobState.CRF_SEARCHING

    def advance(self, item: WorkItem) -> dict[str, Any] | None:
        self.progress = 1.0
        return {"crf": float(self.settings.crf)}
