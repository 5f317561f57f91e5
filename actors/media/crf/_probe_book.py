"""One search's probes, sample by sample. Pure: no ffmpeg, files, clock or threads.

The CRF search stage opens a probe at the CRF the strategy names (`open`),
hands over each sample's result as it is scored or comes from the cache
(`add`), asks whether the probe may stop on the samples scored so far
(`may_stop`: paired with the complete probe at the nearest CRF when there
is one) and closes it (`close`) into the
`ProbeResult` the strategy is fed and the record the library stores. A
probe settled on part of its samples stands for all of them through its
paired estimate when it has one; a completed probe replaces its partial
record. Every sample scored at every CRF is kept for the pairing, until
the plan changes (`clear`).

A sample's result is a `SampleResult`; a closed probe is a `ProbeRecord`.
Both become maps only where they are stored (`as_cached`, `as_dict`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ._paired import PairedEstimate, SampleScore, may_stop, nearest_complete
from ._samples import score_probe
from ._strategy import ProbeResult

__all__ = ["ProbeBook", "ProbeRecord", "SampleResult"]


@dataclass(frozen=True, slots=True)
class SampleResult:
    """One sample encoded and scored at one CRF: what the stage measured or the cache kept."""

    scores: tuple[float, ...]  # per-frame VMAF, in frame order
    size: int  # encoded bytes
    frames: int | None  # frames encoded; None in cache entries older than the field
    seconds: float | None  # its encode timed alone, start-up left out; None: untimed
    cached: bool = False  # came from the cache, not from an encode of this search

    def as_cached(self) -> dict[str, Any]:
        """The cache's JSON map (the store edge); `cached` is not part of it."""
        return {
            "size": self.size,
            "seconds": self.seconds,
            "frames": self.frames,
            "scores": list(self.scores),
        }

    @classmethod
    def from_cached(cls, entry: Mapping[str, Any]) -> SampleResult:
        """A cache entry as a result marked `cached`; `KeyError`/`TypeError` if it is not one."""
        scores = tuple(float(v) for v in entry["scores"])
        if not scores:
            raise TypeError("a cached sample without scores")
        frames, seconds = entry.get("frames"), entry.get("seconds")
        return cls(
            scores,
            int(entry["size"]),
            None if frames is None else int(frames),
            None if seconds is None else float(seconds),
            cached=True,
        )


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """A closed probe as the library keeps it and the stage shows it.

    The strategy's `ProbeResult` fields, then: `se` (standard error of the
    mean), each scored sample's mean (`samples`), whether every sample came
    from the cache, and the CRF of the complete probe it was paired with.
    """

    crf: float
    mean: float
    worst: float
    p1: float
    percent: float
    seconds: float
    complete: bool
    se: float
    samples: tuple[float, ...]
    cached: bool
    paired_with: float | None

    def as_dict(self) -> dict[str, Any]:
        """The map stored in the library and shown in a search's detail."""
        return {**asdict(self), "samples": list(self.samples)}


def _sample_score(result: SampleResult) -> SampleScore:
    scores = result.scores
    return SampleScore(sum(scores) / len(scores), len(scores), result.size)


class ProbeBook:
    """See module docstring. Used by one stage actor's thread; raises only on misuse."""

    def __init__(self, samples: int, pairing: bool = True) -> None:
        self.pairing = pairing  # False: a probe settles on its scored samples alone
        self.crf: float | None = None
        self.results: dict[int, SampleResult] = {}  # the open probe's, by sample
        self._estimate: PairedEstimate | None = None
        self.settled = 0  # probes stopped on part of their samples
        self.clear(samples)

    def clear(self, samples: int) -> None:
        """Forget every probe closed: the sample plan changed (a retry as a full pass)."""
        self.samples = samples  # a complete probe's (a full pass is one)
        self.records: list[ProbeRecord] = []  # every probe closed, in order
        self._scored_at: dict[float, dict[int, SampleScore]] = {}

    def open(self, crf: float | None) -> None:
        self.crf, self.results, self._estimate = crf, {}, None

    def add(self, i: int, result: SampleResult) -> None:
        self.results[i] = result

    def scored(self) -> list[SampleResult]:
        """The open probe's scored samples, by sample index."""
        return [r for _, r in sorted(self.results.items())]

    def may_stop(self, target: float) -> bool:
        """True when the scored samples settle the open probe (`_paired.may_stop`);
        counts it as settled. The caller drops the samples still queued."""
        assert self.crf is not None
        scored = {i: _sample_score(r) for i, r in self.results.items()}
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
    ) -> tuple[ProbeResult, ProbeRecord]:
        """The open probe as the strategy's `ProbeResult` and the library's record.

        `cut_sizes` are the source bytes of each sample (of the file, for a full
        pass); `to_percent` turns the encoded / source ratio of the video into
        the file's predicted percent; `seconds` is the samples' encode time.
        """
        assert self.crf is not None
        results = self.scored()
        n = len(results)
        scores = score_probe([r.scores for r in results])
        encoded = sum(r.size for r in results)
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
            (i, _sample_score(r)) for i, r in self.results.items()
        )
        record = ProbeRecord(
            **asdict(probe),
            se=se,
            samples=tuple(scores.per_sample),
            cached=all(r.cached for r in results),
            paired_with=paired.reference if paired is not None else None,
        )
        # a completed probe replaces its partial record
        self.records = [p for p in self.records if p.crf != probe.crf]
        self.records.append(record)
        return probe, record
