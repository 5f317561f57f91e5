"""What a CRF search tells: its summary (kept with the job) and its live detail.

Pure functions of the search's bookkeeping; the stage (`CrfSearchStage`)
gathers the figures and publishes or stores what these return. No I/O, no
clock: the caller passes the elapsed times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipecast.actors.cluster import HoldStatistics
from pipecast.actors.runtime import StageStatistics

from ._probe_book import ProbeRecord
from ._strategy import SearchResult, u_slope_of

__all__ = [
    "CrfSearchStatistics",
    "SearchEta",
    "SearchFacts",
    "SearchTotals",
    "live_detail",
    "search_progress",
    "search_summary",
]

_SHOWN = ("crf", "mean", "worst", "p1", "percent", "complete")


@dataclass(frozen=True, slots=True)
class SearchFacts:
    """What the stage knows of one search besides the strategy's result."""

    target: float  # the target searched for (lowered by retries)
    sample_encodes: int  # encodes run (cache hits excluded)
    settled: int  # probes stopped on part of their samples
    encoder: str  # the encoder key: the build and arguments without the CRF
    model_u_slope: float | None  # the slope the strategy started from
    learned_from: int  # earlier searches that slope was learned from
    samples: int | None  # samples in the plan; None: a full pass
    seconds: float  # the search's wall time so far
    source_size: int  # bytes
    duration: float  # the source's, seconds
    sampled_seconds: float  # of the source a complete probe encodes


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 5)


def search_summary(
    result: SearchResult, records: Sequence[ProbeRecord], facts: SearchFacts
) -> dict[str, Any]:
    """The `search` map stored with the job: the outcome, its cost and its predictions.

    The predicted encode time scales the chosen probe's sample encode time
    to the whole file; None when every sample came from an untimed cache entry.
    """
    out: dict[str, Any] = {
        "outcome": result.outcome.value,
        "reason": result.reason,
        "target": facts.target,
        "probes": len(records),
        "sample_encodes": facts.sample_encodes,
        "settled_early": facts.settled,
        "encoder": facts.encoder,
        # the slope this search fitted (CRFs >= 1 apart), for the searches after it
        "u_slope": _rounded(u_slope_of([(p.crf, p.mean) for p in records], min_span=1.0)),
        "model_u_slope": _rounded(facts.model_u_slope),
        "slope_learned_from": facts.learned_from,
        "samples": "full" if facts.samples is None else facts.samples,
        "seconds": round(facts.seconds, 3),
    }
    probe = result.probe
    if probe is not None:
        out.update(
            predicted_vmaf=probe.mean,
            worst_sample=probe.worst,
            p1=probe.p1,
            predicted_percent=probe.percent,
            predicted_size=round(facts.source_size * probe.percent / 100),
            predicted_seconds=(
                round(probe.seconds * facts.duration / max(facts.sampled_seconds, 1e-6), 2)
                if probe.seconds
                else None
            ),
        )
    return out


def search_progress(done: int, expected: int, before: float) -> float:
    """The search's progress: `done` tasks of about `expected`, 0..0.99, never backwards
    from `before`."""
    return max(before, min(0.99, done / max(expected, 1)))


class SearchEta:
    """A search's remaining seconds, from the work its plan has left and the pace its
    tasks have ended at. Pure: times are seconds since the search began.

    The pace is measured when a task ends (`task_ended`); between ends the estimate
    counts down with the clock. Within one probe it never rises: an end that came
    later than the pace said cannot push it up (it waits at the count it reached);
    a new probe may, since the plan itself changed.
    """

    __slots__ = ("_at", "_last", "_probe", "_rate")

    def __init__(self) -> None:
        self._rate: float | None = None  # tasks a second
        self._at = 0.0  # when it was measured
        self._probe = -1
        self._last: float | None = None

    def task_ended(self, done: int, elapsed: float) -> None:
        if done > 0 and elapsed > 0:
            self._rate, self._at = done / elapsed, elapsed

    def eta(self, probe: int, tasks_left: int, elapsed: float) -> float | None:
        """Seconds left with `tasks_left` tasks to go (this probe's and the probes likely
        after it), now at `elapsed`; None before the first task has ended."""
        if self._rate is None:
            return None
        estimate = max(0.0, tasks_left / self._rate - max(0.0, elapsed - self._at))
        if probe == self._probe and self._last is not None:
            estimate = min(estimate, self._last)
        self._probe, self._last = probe, estimate
        return round(estimate, 1)


def live_detail(
    records: Sequence[ProbeRecord],
    running: Sequence[tuple[str, int]],
    samples: int,
    crf: float | None,
    eta: float | None,
) -> dict[str, Any]:
    """The stage's published `detail` while it searches: which probe, which CRF,
    what runs (label and sample, 1-based of `samples`) and every probe so far."""
    kind, i = running[0] if running else ("planning", 0)
    return {
        "phase": kind,
        "eta": eta,
        "probe": len(records) + 1,
        "crf": crf,
        "sample": f"{i + 1}/{samples}",
        "running": [f"{label} {j + 1}/{samples}" for label, j in running],
        "probes": [{k: getattr(p, k) for k in _SHOWN} for p in records],
    }


@dataclass(frozen=True, slots=True)
class CrfSearchStatistics(StageStatistics):
    """A CRF search stage's statistics: the stage's own, then every search's since it
    started (`outcomes`: found, not_beneficial, a failure's category, cancelled,
    interrupted; the per-search means are None before the first search)."""

    searches: int
    outcomes: dict[str, int]
    probes: int
    sample_encodes: int
    cache_hits: int
    settled_early: int
    probes_per_search: float | None
    sample_encodes_per_search: float | None
    cache_hit_ratio: float | None
    holds: HoldStatistics | None = None  # the stage's holds on jobs (a media stage's)


@dataclass(slots=True)
class SearchTotals:
    """What a CRF search stage has done since it started: its `statistics()`.

    Owned by the stage's thread; `add` once per search that began, however it
    ended (`outcome`: found, not_beneficial, a failure's category, cancelled,
    or interrupted when the stage stopped under it).
    """

    searches: int = 0
    probes: int = 0
    sample_encodes: int = 0
    cache_hits: int = 0
    settled_early: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(
        self, outcome: str, probes: int, sample_encodes: int, cache_hits: int, settled: int
    ) -> None:
        self.searches += 1
        self.probes += probes
        self.sample_encodes += sample_encodes
        self.cache_hits += cache_hits
        self.settled_early += settled
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def statistics(self, stage: StageStatistics) -> CrfSearchStatistics:
        """The stage's own `stage` figures with these totals after them."""
        n = self.searches
        looked_up = self.sample_encodes + self.cache_hits
        return CrfSearchStatistics(
            steps=stage.steps,
            items_ended=stage.items_ended,
            busy_seconds=stage.busy_seconds,
            mean_step_ms=stage.mean_step_ms,
            searches=n,
            outcomes=dict(self.outcomes),
            probes=self.probes,
            sample_encodes=self.sample_encodes,
            cache_hits=self.cache_hits,
            settled_early=self.settled_early,
            probes_per_search=round(self.probes / n, 3) if n else None,
            sample_encodes_per_search=round(self.sample_encodes / n, 3) if n else None,
            cache_hit_ratio=round(self.cache_hits / looked_up, 3) if looked_up else None,
            holds=getattr(stage, "holds", None),
        )
