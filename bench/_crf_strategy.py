"""`pipecast bench crf-strategy`: the search strategies alone, on simulated files.

No ffmpeg: each simulated file has a VMAF curve linear in u = ln(100 - VMAF)
(crossing the target at a CRF drawn from [22, 48], u-slope from [0.075,
0.145]: our clips' and the public film traces', docs/crf_search.md) and five
samples that sit N(0, sigma) VMAF from it at the target, centred, and move
with slopes of their own (spread by 15 % of sigma, at most 30 %): sigma 0.05
is a uniform clip, 1-2 a film whose scenes score differently. Ours runs as
the stage drives it (samples in `probe_order`, a probe stopped early once
`may_stop` says so, paired with the nearest complete probe, a partial
answer completed); "ours, unpaired" settles on the scored samples alone;
"ours, slope known" starts from the file's own slope, the best a learned
slope can do; ab-av1's
strategy scores every sample of every probe. Printed per strategy and
sigma: mean sample encodes and probes (the search's cost), the 90th
percentile of encodes, and answers whose whole-file VMAF is below the
target (the promise). Runs in the caller's thread; seconds.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

from pipecast.actors.media.crf import (
    CrfSearch,
    ProbeBook,
    SampleResult,
    encoder_model,
    learned_model,
    probe_order,
)

from ._ab_av1 import AbAv1Search

__all__ = ["StrategyRow", "run_crf_strategy_bench"]

TARGET = 95.0
SAMPLES = 5
_CUT = 10**8  # each sample's source bytes: the encoded sizes carry the percent exactly
_CUTS = dict.fromkeys(range(SAMPLES), _CUT)
STRATEGIES = ("ours", "ours, unpaired", "ours, slope known", "ab-av1")


@dataclass(frozen=True, slots=True)
class StrategyRow:
    strategy: str
    sigma: float
    files: int
    encodes: float  # mean sample encodes per file
    encodes_p90: float
    probes: float  # mean probes per file
    below_target: int  # answers whose whole-file VMAF is under the target


@dataclass(frozen=True, slots=True)
class _File:
    """Sample i scores 100 - (5 - offsets[i]) * exp(slopes[i] * (crf - crossing))."""

    crossing: float
    k: float  # the file's u-slope, around which the samples' slopes spread
    offsets: tuple[float, ...]
    slopes: tuple[float, ...]

    def sample(self, i: int, crf: float) -> float:
        gap = (100.0 - TARGET - self.offsets[i]) * math.exp(self.slopes[i] * (crf - self.crossing))
        return min(99.99, 100.0 - gap)

    def vmaf(self, crf: float) -> float:
        return statistics.fmean(self.sample(i, crf) for i in range(SAMPLES))


def _file(rng: random.Random, sigma: float) -> _File:
    offsets = [rng.gauss(0.0, sigma) for _ in range(SAMPLES)]
    centre = statistics.fmean(offsets)
    # keep every sample's gap to 100 positive (a sample at VMAF 100 has no slope)
    offsets = [min(4.8, o - centre) for o in offsets]
    k = rng.uniform(0.075, 0.145)
    # samples that score apart move apart: SD 1.4-1.7 goes with slopes ~30 % apart
    # on a real film's samples (docs/crf_search.md)
    spread = min(0.3, 0.15 * sigma)
    slopes = [k * max(0.5, 1.0 + rng.gauss(0.0, spread)) for _ in range(SAMPLES)]
    return _File(rng.uniform(22.0, 48.0), k, tuple(offsets), tuple(slopes))


def _search(strategy: str, file: _File) -> tuple[int, int, float | None]:
    """(sample encodes, probes, the answer's whole-file VMAF or None) of one file."""
    if strategy == "ab-av1":
        search: CrfSearch | AbAv1Search = AbAv1Search(TARGET)
    else:
        model = encoder_model("libsvtav1")
        if strategy == "ours, slope known":
            model = learned_model(model, [file.k])
        search = CrfSearch(TARGET, model=model)
    # the stage's own bookkeeping: settling, pairing, the partial probe's estimate
    book = ProbeBook(SAMPLES, pairing=strategy != "ours, unpaired")
    encodes = probes = 0
    while (crf := search.next_crf()) is not None and probes < 40:
        probes += 1
        may_settle = isinstance(search, CrfSearch) and not search.completing
        size = 10.0 * math.exp(-0.115 * (crf - 30.0))  # percent of the source
        book.open(crf)
        for i in probe_order(SAMPLES):
            sample = SampleResult((file.sample(i, crf),), round(_CUT * size / 100.0), 1, None)
            book.add(i, sample)
            encodes += 1
            if may_settle and len(book.results) < SAMPLES and book.may_stop(TARGET):
                break
        probe, _ = book.close(_CUTS, lambda ratio: 100.0 * ratio, 0.0)
        search.feed(probe)
    result = search.result
    answer = None
    if result is not None and result.crf is not None:
        answer = file.vmaf(result.crf)
    return encodes, probes, answer


def run_crf_strategy_bench(
    files: int = 400, sigmas: tuple[float, ...] = (0.05, 0.5, 1.0, 2.0), seed: int = 1
) -> list[StrategyRow]:
    """The same simulated files for every strategy (one seed); blocks for seconds."""
    rows = []
    for sigma in sigmas:
        rng = random.Random(f"{seed}/{sigma}")
        cases = [_file(rng, sigma) for _ in range(files)]
        for strategy in STRATEGIES:
            runs = [_search(strategy, file) for file in cases]
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
