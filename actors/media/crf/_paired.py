"""A partial probe's whole-probe figures, paired with a complete probe at another CRF. Pure.

The samples of a file differ from one another far more than they move
apart between two CRFs: on a real film the per-sample VMAF has an SD of
1.4-1.7, yet in u = ln(100 - VMAF) each sample steps between two CRFs by
about the same amount (docs/crf_search.md, "Probes"). So once one probe has
scored every sample, a probe at another CRF is known from a few of its
samples: each scored sample gives its own step from that reference, the
unscored ones are the reference's scores moved by the mean step (and their
sizes by the mean step in ln(bytes)). The spread of the steps gives the
standard error; it is floored at `STEP_SPREAD` of the mean step, because
two samples may agree by chance, and real samples move by about 30 % more
or less than one another.

`settled_paired` says when such an estimate is clear enough to stop the
probe: below the target, or above the precision window (a pass inside the
window may be the answer, so it is scored in full at once). A probe settled
this way stays partial: `CrfSearch` completes it before it can be the
answer, so a wrong estimate costs a probe, never the quality.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from ._strategy import _u, settled_early

__all__ = [
    "PairedEstimate",
    "SampleScore",
    "may_stop",
    "nearest_complete",
    "paired_estimate",
    "settled_paired",
]

STEP_SPREAD = 0.3  # floor of the SD of per-sample steps, as a share of the mean step
MIN_SPREAD = 0.005  # and in u, for steps near zero
WINDOW = 0.3  # VMAF above the target that a pass may be the answer (CrfSearch's stop)


@dataclass(frozen=True, slots=True)
class SampleScore:
    mean: float  # the sample's mean VMAF
    frames: int
    size: int  # encoded bytes


@dataclass(frozen=True, slots=True)
class PairedEstimate:
    mean: float  # predicted frame-weighted mean VMAF over every sample
    worst: float  # the lowest predicted per-sample mean
    se: float  # standard error of `mean`
    size: float  # predicted encoded bytes of every sample
    scored: int  # samples scored at this CRF
    reference: float  # the complete probe's CRF, filled in by the caller
    step: float  # mean step in u from the reference


def paired_estimate(
    scored: Mapping[int, SampleScore], reference: Mapping[int, SampleScore], crf: float = 0.0
) -> PairedEstimate | None:
    """Every sample's figures at this CRF from `scored` (some of them) and `reference`
    (all of them, scored at `crf`).

    None when fewer than two samples are scored or one is not in the reference.
    """
    if len(scored) < 2 or not set(scored) <= set(reference):
        return None
    steps = [_u(scored[i].mean) - _u(reference[i].mean) for i in scored]
    step = statistics.fmean(steps)
    spread = max(statistics.stdev(steps), STEP_SPREAD * abs(step), MIN_SPREAD)
    size_step = statistics.fmean(
        math.log(max(scored[i].size, 1) / max(reference[i].size, 1)) for i in scored
    )
    means: dict[int, float] = {}
    size = 0.0
    sensitivity = 0.0  # d(mean) / d(step), times the frames
    for i, ref in reference.items():
        if i in scored:
            means[i] = scored[i].mean
            size += scored[i].size
        else:
            means[i] = 100.0 - math.exp(_u(ref.mean) + step)
            size += ref.size * math.exp(size_step)
            sensitivity += ref.frames * (100.0 - means[i])
    frames = sum(ref.frames for ref in reference.values()) or 1
    mean = sum(means[i] * ref.frames for i, ref in reference.items()) / frames
    se = sensitivity / frames * spread / math.sqrt(len(scored))
    return PairedEstimate(
        round(mean, 4), round(min(means.values()), 4), round(se, 4), size, len(scored), crf, step
    )


def settled_paired(estimate: PairedEstimate, target: float, window: float = WINDOW) -> bool:
    """True when the estimate is more than three standard errors below the target, or
    above target + `window`."""
    if estimate.mean >= target:
        return estimate.mean - (target + window) > 3.0 * estimate.se
    return target - estimate.mean > 3.0 * estimate.se


def nearest_complete(
    probes: Mapping[float, Mapping[int, SampleScore]], crf: float, samples: int
) -> float | None:
    """The CRF, other than `crf`, nearest to it whose probe scored all `samples` samples."""
    complete = [c for c, scored in probes.items() if c != crf and len(scored) >= samples]
    return min(complete, key=lambda c: (abs(c - crf), c)) if complete else None


def may_stop(
    scored: Mapping[int, SampleScore],
    reference: tuple[float, Mapping[int, SampleScore]] | None,
    target: float,
) -> tuple[bool, PairedEstimate | None]:
    """Whether a probe may stop on the samples scored so far, and the estimate it stops on.

    Paired with `reference` (its CRF and its complete probe) when there is
    one (`settled_paired`); without one, on the scored samples alone
    (`settled_early`), and the estimate is None: their plain mean stands.
    """
    if reference is not None:
        estimate = paired_estimate(scored, reference[1], reference[0])
        if estimate is not None and settled_paired(estimate, target):
            return True, estimate
        return False, None
    return settled_early([s.mean for s in scored.values()], target), None
