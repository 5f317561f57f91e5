"""The rules of holds as plain Python: the reference the library is checked against. Pure.

`HoldsModel` keeps, in memory and with no engine, thread or clock (the caller
passes `now`), what the library's holds promise: a queued job is claimed by
one node under a new fence and a lease; a holder's writes land only while
the row still carries its node and fence (the clock does not decide); a hold
whose lease is over may be taken over by any node under a new fence; each
node believes it holds the jobs it claimed or took over until a write of its
own is refused or the job ends. A property test drives this model and two
real library nodes on one database with the same random steps and requires
the same answers and the same rows after every step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["HoldsModel", "ModelJob", "Outcome"]


class Outcome(enum.Enum):
    OK = "ok"
    LOST = "lost"  # LeaseLost: the writer does not (or no longer) hold the job
    INVALID = "invalid"  # the job's state refuses the event
    NONE = "none"  # nothing to claim, or nothing to take over


@dataclass(slots=True)
class ModelJob:
    state: str = "queued"  # queued, running, done
    node: str | None = None
    fence: int = 0
    lease_until: float | None = None


@dataclass(slots=True)
class HoldsModel:
    """See module docstring. Jobs are numbered from 1, in the order they were added."""

    lease: float
    jobs: dict[int, ModelJob] = field(default_factory=dict)
    beliefs: dict[str, dict[int, int]] = field(default_factory=dict)  # node -> job -> fence

    def add(self) -> int:
        job = len(self.jobs) + 1
        self.jobs[job] = ModelJob()
        return job

    def _believes(self, node: str) -> dict[int, int]:
        return self.beliefs.setdefault(node, {})

    def take(self, node: str, now: float) -> int | None:
        for job, rec in self.jobs.items():
            if rec.state == "queued":
                rec.state, rec.node, rec.lease_until = "running", node, now + self.lease
                rec.fence += 1
                self._believes(node)[job] = rec.fence
                return job
        return None

    def _holds(self, node: str, job: int) -> Outcome:
        """Whether `node`'s write to `job` lands; a refused belief is dropped."""
        fence = self._believes(node).get(job)
        rec = self.jobs[job]
        if fence is None:
            return Outcome.LOST if rec.state == "running" else Outcome.INVALID
        if rec.state == "running" and (rec.node, rec.fence) == (node, fence):
            return Outcome.OK
        del self._believes(node)[job]
        return Outcome.LOST

    def renew(self, node: str, job: int, now: float) -> Outcome:
        if job not in self._believes(node):
            return Outcome.LOST
        verdict = self._holds(node, job)
        if verdict is Outcome.OK:
            self.jobs[job].lease_until = now + self.lease
        return verdict

    def done(self, node: str, job: int) -> Outcome:
        verdict = self._holds(node, job)
        if verdict is Outcome.OK:
            rec = self.jobs[job]
            rec.state, rec.lease_until = "done", None
            del self._believes(node)[job]
        return verdict

    def lapsed(self, node: str, now: float) -> list[int]:
        mine = self._believes(node)
        return [
            job
            for job, rec in self.jobs.items()
            if rec.state == "running"
            and (rec.lease_until is None or rec.lease_until < now)
            and job not in mine
        ]

    def adopt(self, node: str, job: int, now: float) -> Outcome:
        rec = self.jobs[job]
        if rec.state != "running" or (rec.lease_until is not None and rec.lease_until >= now):
            return Outcome.NONE
        rec.node, rec.lease_until = node, now + self.lease
        rec.fence += 1
        self._believes(node)[job] = rec.fence
        return Outcome.OK
