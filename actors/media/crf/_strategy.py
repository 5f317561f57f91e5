"""The CRF search as a pure strategy: fed probe results, it names the next CRF or stops.

No ffmpeg inside: a probe (encode the samples at a CRF, score them) is the
shell's job. The strategy works in u = ln(100 - VMAF), near-linear in CRF,
and ln(size), linear in CRF (docs/crf_search.md, "The strategy"):

* first probe from a prior (the file's history, its siblings, else a cold
  start per encoder), not a blind midpoint;
* the u-slope of the encoder's model learned from earlier searches with the
  same arguments (`learned_model`), else the encoder's prior;
* then a Newton step with the encoder's u-slope (at most `MAX_JUMP` CRF), a
  secant (Illinois) inside a bracket, extrapolation with the fitted slope
  outside one, each aimed at
  target + 0.15 (`AIM`, the middle of the precision stop window); steps of
  `step` CRF (0.25 where the encoder takes fractions), never a CRF twice;
* stop rules, first match wins: unreachable (a fail at c_min), not
  beneficial (quality needs a size over the cap), bracket exhausted,
  precision (a pass within 0.3 VMAF of the target), economic (the predicted
  crossing is under ~3 % size away), metric saturated (a plateau of failing
  probes), hard cap (6 probes).

A probe passes when its mean >= target, its worst sample >= target - 3 and
its 1st-percentile frame >= target - 7 (the guards can be turned off).

A probe far from the target may be settled early on part of its samples
(`settled_early`): it still places the next probe and
counts as a pass or a fail, but it is never the answer as it stands. Before
the search ends on a partial probe it asks for that CRF again (`completing`),
the shell scores the remaining samples (the scored ones come from its cache)
and the complete probe replaces the partial one; the stop rules then run
again on it.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "CrfSearch",
    "EncoderModel",
    "Outcome",
    "ProbeResult",
    "SearchResult",
    "encoder_model",
    "learned_model",
    "settled_early",
    "u_slope_of",
]

# How far (VMAF) the scored samples' mean must sit from the target to settle a
# probe on part of its samples. Small, because a settled pass is completed
# before it can become the answer: a wrong early verdict costs a probe or some
# size, never the quality (the measurements: docs/crf_search.md).
SETTLE_MARGIN = 1.5

# Where a step aims, in VMAF above the target: the middle of the stop window
# (a pass within 0.3 ends the search). Aimed at the target itself, a step that
# lands on the model's crossing is a fail half of the time and costs a probe.
AIM = 0.15

# The longest step outside a bracket, CRF: long enough for the jump from a cold
# start on content that scores VMAF 99+ there, short enough that a wrong slope
# cannot throw a probe across the range (docs/crf_search.md has the figures).
MAX_JUMP = 16.0


class Outcome(enum.Enum):
    FOUND = "found"
    UNREACHABLE = "unreachable_quality"
    NOT_BENEFICIAL = "not_beneficial"
    SATURATED = "metric_saturated"
    SAMPLE_FAILURE = "sample_failure"


@dataclass(frozen=True, slots=True)
class EncoderModel:
    """What the search assumes of an encoder until its history says better."""

    c_min: float
    c_max: float
    step: float
    cold_start: float  # first CRF with no history and no siblings
    u_slope: float  # d ln(100 - VMAF) / d CRF
    size_slope: float = -0.115  # d ln(size) / d CRF


def encoder_model(encoder: str) -> EncoderModel:
    if encoder in ("libx264", "libx265"):
        cold = 20.0 if encoder == "libx264" else 22.0
        return EncoderModel(10.0, 46.0, 0.25, cold, 0.17)
    # svt-av1 (>= 4.0 takes quarter steps). u-slope 0.115, not the public film
    # traces' 0.13: our clips' chord from crf 30 to VMAF 95 is 0.094-0.116
    # (docs/crf_search.md, "The prior u-slope")
    return EncoderModel(5.0, 70.0, 0.25, 30.0, 0.115)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    crf: float
    mean: float  # frame-weighted mean VMAF over the samples
    worst: float  # the lowest per-sample mean
    p1: float  # 1st-percentile frame VMAF over all sampled frames
    percent: float  # encoded size as a percent of the source's (predicted for the file)
    seconds: float = 0.0  # encode time of the samples
    complete: bool = True  # False: settled early on part of the samples


@dataclass(frozen=True, slots=True)
class SearchResult:
    outcome: Outcome
    crf: float | None
    probe: ProbeResult | None  # the chosen probe: the predicted VMAF, worst, size
    probes: int
    reason: str


def _u(vmaf: float) -> float:
    return math.log(100.0 - min(vmaf, 99.9))


def u_slope_of(points: Sequence[tuple[float, float]], min_span: float = 0.0) -> float | None:
    """The least-squares d ln(100 - VMAF) / d CRF of (crf, VMAF) points.

    None when the CRFs span less than `min_span` or fewer than two distinct ones.
    """
    crfs = {c for c, _ in points}
    if len(crfs) < 2 or max(crfs) - min(crfs) < min_span:
        return None
    pts = [(c, _u(v)) for c, v in points]
    mc = sum(c for c, _ in pts) / len(pts)
    mu = sum(u for _, u in pts) / len(pts)
    var = sum((c - mc) ** 2 for c, _ in pts)
    return sum((c - mc) * (u - mu) for c, u in pts) / var


def learned_model(model: EncoderModel, slopes: Sequence[float]) -> EncoderModel:
    """The model with its u-slope learned from earlier searches.

    The median of the slopes earlier searches fitted with the same encoder
    arguments, kept within [0.5, 2] x the prior's; the prior alone when
    there are none (non-positive or non-finite slopes are ignored).
    """
    usable = [k for k in slopes if math.isfinite(k) and k > 0]
    if not usable:
        return model
    k = statistics.median(usable)
    return replace(model, u_slope=min(2 * model.u_slope, max(0.5 * model.u_slope, k)))


def settled_early(
    sample_means: Sequence[float], target: float, margin: float = SETTLE_MARGIN
) -> bool:
    """True when the samples scored so far already put the probe on one side of the target.

    Needs at least two samples, all on the same side, and their mean farther
    from the target than `margin` and than three standard errors.
    """
    n = len(sample_means)
    if n < 2:
        return False
    above = sum(m >= target for m in sample_means)
    if 0 < above < n:
        return False
    mean = sum(sample_means) / n
    se = statistics.stdev(sample_means) / math.sqrt(n)
    return abs(mean - target) > max(margin, 3.0 * se)


@dataclass
class CrfSearch:
    target: float = 95.0
    max_percent: float = 80.0
    model: EncoderModel = field(default_factory=lambda: encoder_model("libsvtav1"))
    prior: float | None = None  # history or siblings; else the model's cold start
    max_probes: int = 6
    worst_margin: float | None = 3.0  # None: the guard is off
    p1_margin: float | None = 7.0
    probes: list[ProbeResult] = field(default_factory=list)
    result: SearchResult | None = None
    _kept: str | None = None  # which end of the bracket the last secant kept (Illinois)
    _completing: float | None = None  # a partial probe's CRF asked for again

    @property
    def completing(self) -> bool:
        """True while the CRF last named is a partial probe to complete (score every sample)."""
        return self._completing is not None

    # -- the shell's interface ----------------------------------------------------------

    def next_crf(self) -> float | None:
        """The CRF to probe next, or None when `result` is set."""
        if self.result is not None:
            return None
        if self._completing is not None:
            return self._completing
        if not self.probes:
            return self._clamp(self.prior if self.prior is not None else self.model.cold_start)
        verdict = self._stop()
        if self.completing:  # _stop asked for a partial probe again
            return self._completing
        crf = None
        if verdict is None:
            crf = self._place()
            if crf is None:
                verdict = self._finish("no CRF left to try")
        if verdict is not None:
            if verdict.probe is not None and not verdict.probe.complete:
                # never an answer from part of the samples: complete it, then judge again
                self._completing = verdict.probe.crf
                return self._completing
            self.result = verdict
        return crf

    def feed(self, probe: ProbeResult) -> None:
        """Add a probe's result; a complete probe at a partial one's CRF replaces it."""
        if self._completing is not None and not probe.complete:
            raise ValueError(f"crf {probe.crf:g} was asked for complete, with every sample")
        self.probes = [p for p in self.probes if p.crf != probe.crf]
        self.probes.append(probe)
        self._completing = None

    def failed_sample(self, why: str) -> None:
        self.result = SearchResult(Outcome.SAMPLE_FAILURE, None, None, len(self.probes), why)

    # -- rules ---------------------------------------------------------------------------

    def passes(self, p: ProbeResult) -> bool:
        if p.mean < self.target:
            return False
        if self.worst_margin is not None and p.worst < self.target - self.worst_margin:
            return False
        return not (self.p1_margin is not None and p.p1 < self.target - self.p1_margin)

    def _best_pass(self) -> ProbeResult | None:
        passing = [p for p in self.probes if self.passes(p)]
        return max(passing, key=lambda p: p.crf) if passing else None

    def _fail_above(self, crf: float) -> ProbeResult | None:
        failing = [p for p in self.probes if not self.passes(p) and p.crf > crf]
        return min(failing, key=lambda p: p.crf) if failing else None

    def _found(self, p: ProbeResult, why: str) -> SearchResult:
        if p.percent > self.max_percent:
            return SearchResult(
                Outcome.NOT_BENEFICIAL, None, p, len(self.probes),
                f"the best passing CRF {p.crf:g} makes {p.percent:.0f} % of the source",
            )  # fmt: skip
        return SearchResult(Outcome.FOUND, p.crf, p, len(self.probes), why)

    def _finish(self, why: str) -> SearchResult:
        best = self._best_pass()
        if best is not None:
            return self._found(best, why)
        return SearchResult(Outcome.UNREACHABLE, None, None, len(self.probes), why)

    def _stop(self) -> SearchResult | None:
        m, step = self.model, self.model.step
        last = self.probes[-1]
        best = self._best_pass()
        failing = [p for p in self.probes if not self.passes(p)]
        if any(p.crf <= m.c_min for p in failing) and best is None:
            return SearchResult(
                Outcome.UNREACHABLE, None, None, len(self.probes),
                f"even crf {m.c_min:g} misses VMAF {self.target:g}",
            )  # fmt: skip
        over = [p for p in failing if p.percent > self.max_percent]
        if best is None and over:
            if not any(p.complete for p in over):
                # a persisted skip needs sizes from every sample, not from part of them
                self._completing = over[0].crf
                return None
            # quality needs a lower CRF, which only makes it bigger than the cap
            return SearchResult(
                Outcome.NOT_BENEFICIAL, None, None, len(self.probes),
                f"at crf {last.crf:g} it is already {last.percent:.0f} % of the source "
                f"and still below VMAF {self.target:g}",
            )  # fmt: skip
        if best is not None:
            # (a pass over the size cap is no verdict: a higher CRF may pass smaller)
            fail = self._fail_above(best.crf)
            if fail is not None and fail.crf - best.crf <= step + 1e-9:
                return self._found(best, "bracket exhausted")
            if best.mean - self.target <= 0.3:
                return self._found(best, "within 0.3 VMAF of the target")
            crossing = self._crossing()
            if crossing is not None and (crossing - best.crf) * abs(m.size_slope) < 0.03:
                return self._found(best, "the rest would save under 3 % size")
            if best.crf >= m.c_max:
                return self._found(best, "passes at the highest CRF")
        if self._saturated(failing):
            return SearchResult(
                Outcome.SATURATED, None, None, len(self.probes),
                "VMAF barely moves across 10 CRF below the target",
            )  # fmt: skip
        if len(self.probes) >= self.max_probes:
            return self._finish(f"hard cap of {self.max_probes} probes")
        return None

    def _saturated(self, failing: list[ProbeResult]) -> bool:
        for a in failing:
            for b in failing:
                if b.crf - a.crf >= 10 and abs(a.mean - b.mean) < 0.3:
                    return True
        return False

    # -- placement -------------------------------------------------------------------------

    def _slope(self) -> float:
        """The fitted u-slope of the probes (least squares), clamped to [0.5k, 2k]."""
        k = self.model.u_slope
        fitted = u_slope_of([(p.crf, p.mean) for p in self.probes])
        return k if fitted is None else min(2 * k, max(0.5 * k, fitted))

    def _crossing(self) -> float | None:
        """Where the model puts VMAF = target."""
        best = self._best_pass()
        if best is None:
            return None
        fail = self._fail_above(best.crf)
        ut = _u(self.target)
        if fail is not None and _u(fail.mean) != _u(best.mean):
            t = (ut - _u(best.mean)) / (_u(fail.mean) - _u(best.mean))
            return best.crf + t * (fail.crf - best.crf)
        return best.crf + (ut - _u(best.mean)) / self._slope()

    def _place(self) -> float | None:
        _m, step = self.model, self.model.step
        best = self._best_pass()
        fail = self._fail_above(best.crf) if best is not None else None
        ut = _u(self.target)
        if best is not None and fail is not None:
            ua = _u(self.target + AIM)
            ub, uf = _u(best.mean) - ua, _u(fail.mean) - ua
            # Illinois: halve the end kept twice, so the secant does not creep
            if self._kept == "pass":
                uf /= 2
            elif self._kept == "fail":
                ub /= 2
            t = -ub / (uf - ub) if uf != ub else 0.5
            raw = best.crf + t * (fail.crf - best.crf)
            low, high = best.crf + step, fail.crf - step
            crf = min(high, max(low, self._round(raw)))
            self._kept = "pass" if raw - best.crf > fail.crf - raw else "fail"
        else:
            anchor = min(self.probes, key=lambda p: abs(_u(p.mean) - ut))
            aim = _u(self.target + AIM)
            jump = (aim - _u(anchor.mean)) / self._slope()
            jump = max(-MAX_JUMP, min(MAX_JUMP, jump))
            crf = self._clamp(anchor.crf + jump)
            going_up = best is not None  # everything passes: try a higher CRF
            if going_up and crf <= best.crf:  # type: ignore[union-attr]
                crf = self._clamp(best.crf + step)  # type: ignore[union-attr]
            if not going_up:
                lowest_fail = min(self.probes, key=lambda p: p.crf)
                if crf >= lowest_fail.crf:
                    crf = self._clamp(lowest_fail.crf - step)
        tried = {p.crf for p in self.probes}
        if crf in tried:
            return None
        return crf

    def _round(self, crf: float) -> float:
        step = self.model.step
        return round(round(crf / step) * step, 4)

    def _clamp(self, crf: float) -> float:
        return min(self.model.c_max, max(self.model.c_min, self._round(crf)))
