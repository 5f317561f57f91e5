"""A hold lost, and what a node's holds did (the figures `stats` and `bench cluster` read)."""

from __future__ import annotations

from dataclasses import dataclass

from pipecast.transport import PipecastError

__all__ = ["HoldStatistics", "LeaseLost"]


class LeaseLost(PipecastError):
    """The job is no longer this node's: another node took it over (its fence moved)."""


@dataclass(frozen=True, slots=True)
class HoldStatistics:
    node: str
    engine: str
    lease: float
    held: int  # jobs this node holds now
    claimed: int  # since start (by the stage asked, or in all)
    renewed: int  # renewed, adopted, lost: the node's, all stages together
    adopted: int  # holds of other nodes taken over after their leases lapsed
    lost: int  # writes refused because another node had taken the job over
    claim_p50_ms: float | None  # the claim's transaction, latest 1000 claims
    claim_p99_ms: float | None
