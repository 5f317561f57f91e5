"""Small helpers the benchmarks share for turning samples into figures."""

from __future__ import annotations

__all__ = ["percentile_ms"]


def percentile_ms(seconds: list[float], p: float) -> float:
    """The p-th percentile of samples in seconds, in milliseconds (nan if none)."""
    if not seconds:
        return float("nan")
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))] * 1000.0
