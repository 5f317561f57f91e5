"""One search's probes, sample by sample. Pure: no ffmpeg, files, clock or threads.

The CRF search stage opens a probe at the CRF the strategy names (`open`),
hands over each sample's result as it is scored or comes from the cache
(`add`), asks whether the probe may stop on the samples scored so far
(`may_stop`, media_anchors.md 7.3: paired with the complete probe at the
nearest CRF when there is one) and closes it (`close`) into the
`ProbeResult` the strategy is fed and the record the library stores. A
probe settled on part of its samples stands for all of them through its
paired estimate when it has one; a completed probe replaces its partial
record. Every sample scored at every CRF is kept for the pairing, until
the plan changes (`clear`).

A sample's result is the stage's dict: "scores" (per-frame VMAF), "size"
(encoded bytes), "frames", "seconds" and, from the cache, "cached".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from ._crf_search import ProbeResult
from ._paired import PairedEstimate, SampleScore, may_stop, nearest_complete
from ._samples import score_probe

__all__ = ["ProbeBook"]


def _sample_score(result: Mapping[str, Any]) -> SampleScore:
    scores = result["scores"]
    return SampleScore(sum(scores) / len(scores), len(scores), result["size"])


class ProbeBook:
    """See module docstring. Used by one stage actor's thread; raises only on misuse."""

    def __init__(self, samples: int, pairing: bool = True) -> None:
        self.pairing = pairing  # False: a probe settles on its scored samples alone
        self.crf: float | None = None
        self.results: dict[int, dict[str, Any]] = {}  # the open probe's, by sample
        self._estimate: PairedEstimate | None = None
        self.settled = 0  # probes stopped on part of their samples
        self.clear(samples)

    def clear(self, samples: int) -> None:
        """Forget every probe closed: the sample plan changed (a retry as a full pass)."""
        self.samples = samples  # a complete probe's (a full pass is one)
        self.records: list[dict[str, Any]] = []  # every probe closed, in order
        self._scored_at: dict[float, dict[int, SampleScore]] = {}

    def open(self, crf: float | None) -> None:
        self.crf, self.results, self._estimate = crf, {}, None

    def add(self, i: int, result: dict[str, Any]) -> None:
        self.results[i] = result

    def scored(self) -> list[dict[str, Any]]:
        """The open probe's scored samples, by sample index."""
        return [r for _, r in sorted(self.results.items()) if "scores" in r]

    def may_stop(self, target: float) -> bool:
        """True when the scored samples settle the open probe (`_paired.may_stop`);
        counts it as settled. The caller drops the samples still queued."""
        assert self.crf is not None
        scored = {i: _sample_score(r) for i, r in self.results.items() if "scores" in r}
        ref = nearest_complete(self._scored_at, self.crf, self.samples) if self.pairing else None
        reference = None if ref is None else (ref, self._scored_at[ref])
        stop, self._estimate = may_stop(scored, reference, target)
        self.settled += stop
        return stop

    def close(
        self,
        cut_sizes: Mapping[int, int],
        to_percent: Callable[[float], float],
        seconds: float,
    ) -> tuple[ProbeResult, dict[str, Any]]:
        """The open probe as the strategy's `ProbeResult` and the library's record.

        `cut_sizes` are the source bytes of each sample (of the file, for a full
        pass); `to_percent` turns the encoded / source ratio of the video into
        the file's predicted percent; `seconds` is the samples' encode time.
        """
        assert self.crf is not None
        results = self.scored()
        n = len(results)
        scores = score_probe([r["scores"] for r in results])
        encoded = sum(r["size"] for r in results)
        base = sum(cut_sizes[i] for i in self.results)
        ratio = encoded / base if base else 1.0
        mean, worst, se = scores.mean, scores.worst, scores.se
        paired = self._estimate if n < self.samples else None
        if paired is not None:
            # settled on a few samples paired with a complete probe: its estimate of
            # every sample beats the plain mean of the few
            mean, worst, se = paired.mean, paired.worst, paired.se
            everything = sum(cut_sizes.values())
            ratio = paired.size / everything if everything else 1.0
        probe = ProbeResult(
            self.crf, mean, worst, scores.p1, round(to_percent(ratio), 3), seconds,
            complete=n == self.samples,
        )  # fmt: skip
        self._scored_at.setdefault(self.crf, {}).update(
            (i, _sample_score(r)) for i, r in self.results.items() if "scores" in r
        )
        record = {
            **asdict(probe),
            "se": se,
            "samples": list(scores.per_sample),
            "cached": all(r.get("cached") for r in results),
            "paired_with": paired.reference if paired is not None else None,
        }
        # a completed probe replaces its partial record
        self.records = [p for p in self.records if p["crf"] != probe.crf]
        self.records.append(record)
        return probe, record
