"""Claiming work across nodes: leases, and a fencing attempt number. The contract.

Every engine (SQLite for one node, PostgreSQL for many) keeps these rules, and
one test suite holds both to them:

- `claim` hands a queued job of a stage to one node, never to two at once: the
  job becomes `claimed` by that node until `lease_until`, and its `attempt`
  grows by one. The attempt is the fencing token: every later step of that
  claim names it.
- `renew` extends a claim's lease while the work runs; `finish` and `fail` end
  it. Each checks, in the same transaction that records it, that the job is
  still claimed by that node under that attempt with its lease not yet over;
  otherwise `LeaseLost`, and nothing changes. A node paused, partitioned or
  killed past its lease can thus never record anything for a job someone else
  has claimed since, and the file swap that `finish` stands for is made only
  under that check.
- `expire` puts every claim whose lease is over back to `queued`, for any node.
- A stage's paused flag (`set_paused`) is shared: no node claims a job of a
  paused stage.
- `retry` puts a failed job back to `queued`.

Times are the caller's (`now`, seconds): the nodes of a cluster must keep
their clocks in step (NTP) to within a small part of a lease.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pipecast.actors.runtime import StoreError
from pipecast.transport import PipecastError

__all__ = [
    "Claim",
    "ClaimState",
    "Claims",
    "ClaimsStatistics",
    "JobRecord",
    "LeaseLost",
    "StoreError",
]


class LeaseLost(PipecastError):
    """The claim is no longer this node's: its lease ended, or another attempt took it."""


class ClaimState(enum.StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Claim:
    """One node's hold on one job, under one attempt (the fencing token)."""

    job: int
    stage: str
    node: str
    attempt: int
    lease_until: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobRecord:
    job: int
    stage: str
    state: ClaimState
    node: str | None  # who holds it, or last held it
    attempt: int
    lease_until: float | None
    result: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ClaimsStatistics:
    engine: str
    claimed: int  # by this instance
    renewed: int
    lost: int  # renew, finish or fail refused: the lease was no longer ours
    expired: int  # claims this instance put back
    jobs: dict[str, int]  # the store's jobs by state, every node's


class Claims(Protocol):
    """What every engine offers (see module docstring). One instance per thread."""

    engine: str

    def migrate(self) -> int:
        """Create or bring the schema up to date; the version it is at."""
        ...

    def enqueue(self, stage: str, payloads: Iterable[dict[str, Any]]) -> list[int]: ...

    def claim(self, stage: str, node: str, now: float, lease: float) -> Claim | None:
        """The oldest queued job of `stage`, now `node`'s; None if none (or paused)."""
        ...

    def renew(self, claim: Claim, now: float, lease: float) -> Claim: ...

    def finish(self, claim: Claim, result: dict[str, Any], now: float) -> None: ...

    def fail(self, claim: Claim, error: str, now: float) -> None: ...

    def expire(self, now: float) -> int: ...

    def retry(self, job: int, now: float) -> bool: ...

    def set_paused(self, stage: str, paused: bool) -> None: ...

    def is_paused(self, stage: str) -> bool: ...

    def job(self, job: int) -> JobRecord | None: ...

    def statistics(self) -> ClaimsStatistics: ...

    def close(self) -> None: ...
