"""The claims rules as plain Python: the reference every engine is checked against. Pure.

`ClaimsModel` keeps the contract of `_claims.py` in memory, with no engine,
thread or clock (the caller passes `now`). A property test drives a model and
a real engine with the same random steps, from several nodes, and requires
the same answers and the same jobs after every step: whatever the SQL does,
it must do this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._claims import ClaimState

__all__ = ["ClaimsModel", "ModelJob"]


@dataclass(slots=True)
class ModelJob:
    stage: str
    state: ClaimState = ClaimState.QUEUED
    node: str | None = None
    attempt: int = 0
    lease_until: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class ClaimsModel:
    """See module docstring. Jobs are numbered from 1, in enqueue order."""

    def __init__(self) -> None:
        self.jobs: dict[int, ModelJob] = {}
        self.paused: set[str] = set()

    def enqueue(self, stage: str, count: int) -> list[int]:
        ids = [len(self.jobs) + 1 + i for i in range(count)]
        for job in ids:
            self.jobs[job] = ModelJob(stage)
        return ids

    def claim(self, stage: str, node: str, now: float, lease: float) -> tuple[int, int] | None:
        """(job, attempt) of the oldest queued job of `stage`, now `node`'s; or None."""
        if stage in self.paused:
            return None
        for job, rec in self.jobs.items():
            if rec.stage == stage and rec.state is ClaimState.QUEUED:
                rec.state, rec.node, rec.lease_until = ClaimState.CLAIMED, node, now + lease
                rec.attempt += 1
                return job, rec.attempt
        return None

    def holds(self, job: int, node: str, attempt: int, now: float) -> bool:
        """The fencing check: still this claim's, its lease not over."""
        rec = self.jobs.get(job)
        return (
            rec is not None
            and rec.state is ClaimState.CLAIMED
            and rec.node == node
            and rec.attempt == attempt
            and rec.lease_until is not None
            and rec.lease_until >= now
        )

    def renew(self, job: int, node: str, attempt: int, now: float, lease: float) -> bool:
        if not self.holds(job, node, attempt, now):
            return False
        self.jobs[job].lease_until = now + lease
        return True

    def finish(self, job: int, node: str, attempt: int, now: float, result: dict[str, Any]) -> bool:
        if not self.holds(job, node, attempt, now):
            return False
        rec = self.jobs[job]
        rec.state, rec.lease_until, rec.result = ClaimState.DONE, None, result
        return True

    def fail(self, job: int, node: str, attempt: int, now: float, error: str) -> bool:
        if not self.holds(job, node, attempt, now):
            return False
        rec = self.jobs[job]
        rec.state, rec.lease_until, rec.error = ClaimState.FAILED, None, error
        return True

    def expire(self, now: float) -> int:
        n = 0
        for rec in self.jobs.values():
            if (
                rec.state is ClaimState.CLAIMED
                and rec.lease_until is not None
                and rec.lease_until < now
            ):
                rec.state, rec.lease_until = ClaimState.QUEUED, None
                n += 1
        return n

    def retry(self, job: int) -> bool:
        rec = self.jobs.get(job)
        if rec is None or rec.state is not ClaimState.FAILED:
            return False
        rec.state, rec.error = ClaimState.QUEUED, None
        return True
