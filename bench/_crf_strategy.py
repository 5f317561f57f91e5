"""`pipecast bench crf-strategy`: the search strategies alone, on simulated files.

No ffmpeg: each simulated file has a VMAF curve linear in u = ln(100 - VMAF)
(crossing the target at a CRF drawn from [22, 48], u-slope from [0.09,
0.16], around svt-av1's prior 0.13) and five samples that each sit a fixed
offset from it, drawn from N(0, sigma) and centred, so the whole file
crosses where the curve does: sigma 0.05 is a uniform clip, 1-2 a film whose
scenes score differently. Ours runs as the stage drives it (samples in
`probe_order`, a probe settled early once `settled_early` says so, a
partial answer completed); "ours, slope known" starts from the file's own
slope, the best a learned slope can do (media_anchors.md 7.6); ab-av1's
strategy scores every sample of every probe. Printed per strategy and
sigma: mean sample encodes and probes (the search's cost), the 90th
percentile of encodes, and answers whose whole-file VMAF is below the
target (the promise). Runs in the caller's thread; seconds.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from pipecast.actors._crf_search import (
    AbAv1Search,
    CrfSearch,
    ProbeResult,
    encoder_model,
    learned_model,
    settled_early,
)
from pipecast.actors._samples import probe_order

__all__ = ["StrategyRow", "run_crf_strategy_bench"]

TARGET = 95.0
SAMPLES = 5
STRATEGIES = ("ours", "ours, slope known", "ab-av1")


@dataclass(frozen=True, slots=True)
class StrategyRow:
    strategy: str
    sigma: float
    files: int
    encodes: float  # mean sample encodes per file
    encodes_p90: float
    probes: float  # mean probes per file
    below_target: int  # answers whose whole-file VMAF is under the target


def _curve(crossing: float, k: float) -> Callable[[float], float]:
    base = math.log(100.0 - TARGET)
    return lambda crf: 100.0 - math.exp(base + k * (crf - crossing))


def _search(
    strategy: str, curve: Callable[[float], float], k: float, offsets: list[float]
) -> tuple[int, int, float | None]:
    """(sample encodes, probes, the answer's whole-file VMAF or None) of one file."""
    if strategy == "ab-av1":
        search: CrfSearch | AbAv1Search = AbAv1Search(TARGET)
    else:
        model = encoder_model("libsvtav1")
        if strategy == "ours, slope known":
            model = learned_model(model, [k])
        search = CrfSearch(TARGET, model=model)
    encodes = probes = 0
    while (crf := search.next_crf()) is not None and probes < 40:
        probes += 1
        may_settle = isinstance(search, CrfSearch) and not search.completing
        means: list[float] = []
        for i in probe_order(SAMPLES):
            means.append(min(99.99, curve(crf) + offsets[i]))
            encodes += 1
            if may_settle and len(means) < SAMPLES and settled_early(means, TARGET):
                break
        mean = sum(means) / len(means)
        size = 10.0 * math.exp(-0.115 * (crf - 30.0))
        search.feed(
            ProbeResult(
                crf, mean, min(means), min(means) - 4.0, size, complete=len(means) == SAMPLES
            )
        )
    result = search.result
    answer = None
    if result is not None and result.crf is not None:
        answer = curve(result.crf) + sum(offsets) / SAMPLES
    return encodes, probes, answer


def run_crf_strategy_bench(
    files: int = 400, sigmas: tuple[float, ...] = (0.05, 0.5, 1.0, 2.0), seed: int = 1
) -> list[StrategyRow]:
    """The same simulated files for every strategy (one seed); blocks for seconds."""
    rows = []
    for sigma in sigmas:
        rng = random.Random(f"{seed}/{sigma}")
        cases = []
        for _ in range(files):
            offsets = [rng.gauss(0.0, sigma) for _ in range(SAMPLES)]
            centre = sum(offsets) / SAMPLES
            k = rng.uniform(0.09, 0.16)
            cases.append((_curve(rng.uniform(22.0, 48.0), k), k, [o - centre for o in offsets]))
        for strategy in STRATEGIES:
            runs = [_search(strategy, curve, k, offsets) for curve, k, offsets in cases]
            encodes = sorted(e for e, _, _ in runs)
            rows.append(
                StrategyRow(
                    strategy=strategy,
                    sigma=sigma,
                    files=files,
                    encodes=round(statistics.mean(encodes), 2),
                    encodes_p90=float(encodes[min(files - 1, int(0.9 * files))]),
                    probes=round(statistics.mean(p for _, p, _ in runs), 2),
                    below_target=sum(a is not None and a < TARGET - 1e-9 for _, _, a in runs),
                )
            )
    return rows
