"""ab-av1's CRF search, modelled for comparison with ours (bench crf, crf-strategy).

ab-av1 0.11's crf-search as its source has it: a blind midpoint first, then
a linear interpolation between the nearest passing and failing probes, in
integer steps of q = crf / step, with a tolerance that widens every run.
Pure, like the strategy it is compared with; it is not part of the product.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecast.actors.media.crf import Outcome, ProbeResult, SearchResult

__all__ = ["AbAv1Search"]


@dataclass
class AbAv1Search:
    """ab-av1 0.11's crf-search (see module docstring). Integer q = crf/step."""

    target: float = 95.0
    max_percent: float = 80.0
    c_min: float = 5.0
    c_max: float = 70.0
    step: float = 0.25
    probes: list[ProbeResult] = field(default_factory=list)
    result: SearchResult | None = None
    _next: float | None = None

    def _q(self, crf: float) -> int:
        return round(crf / self.step)

    def next_crf(self) -> float | None:
        if self.result is not None:
            return None
        if not self.probes:
            return ((self._q(self.c_min) + self._q(self.c_max)) // 2) * self.step
        return self._next

    def feed(self, p: ProbeResult) -> None:
        self.probes.append(p)
        run = len(self.probes)
        q, min_q, max_q = self._q(p.crf), self._q(self.c_min), self._q(self.c_max)
        tol = max(0.1, min(self.step, 1.0) * 2 ** (run - 1) * 0.1)
        worse = [x for x in self.probes if self._q(x.crf) > q]
        better = [x for x in self.probes if self._q(x.crf) < q]
        if p.mean > self.target:
            if p.percent <= self.max_percent and p.mean < self.target + tol:
                self._done(p)
                return
            nearest = min(worse, key=lambda x: x.crf) if worse else None
            if nearest is not None and self._q(nearest.crf) == q + 1:
                self._done(p)
                return
            if nearest is not None:
                self._next = self._lerp(nearest, p) * self.step
            elif run == 1:
                self._next = round(0.4 * q + 0.6 * max_q) * self.step
            else:
                self._next = max_q * self.step
        else:
            if p.percent > self.max_percent or q == min_q:
                self.result = SearchResult(Outcome.UNREACHABLE, None, None, run, "no good crf")
                return
            nearest = max(better, key=lambda x: x.crf) if better else None
            if nearest is not None and self._q(nearest.crf) == q - 1:
                self._done(nearest)
                return
            if nearest is not None:
                self._next = self._lerp(p, nearest) * self.step
            elif run == 1:
                self._next = round(0.4 * q + 0.6 * min_q) * self.step
            else:
                self._next = min_q * self.step

    def _lerp(self, worse: ProbeResult, better: ProbeResult) -> int:
        wq, bq = self._q(worse.crf), self._q(better.crf)
        span = better.mean - worse.mean
        t = (better.mean - self.target) / span if span else 0.5
        q = round(bq + t * (wq - bq))
        return min(wq - 1, max(bq + 1, q))

    def _done(self, p: ProbeResult) -> None:
        outcome = Outcome.FOUND if p.percent <= self.max_percent else Outcome.NOT_BENEFICIAL
        self.result = SearchResult(outcome, p.crf, p, len(self.probes), "ab-av1")
