"""Small helpers the benchmarks share: clips, pacing a load, reading a process, percentiles."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["bench_clips", "pace", "percentile_ms", "process_cpu_seconds", "process_rss_mb"]


def pace(start: float, i: int, rate: int) -> None:
    """Sleep until update `i` of a load of `rate` a second begun at `start` is due.

    Sleep, never spin: a spinning producer holds the GIL and starves the other
    threads of its process, which would then be what the benchmark measures.
    """
    left = start + i / rate - time.monotonic()
    if left > 0:
        time.sleep(left)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MiB (0.0 once it has none: it exited)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile_ms(seconds: list[float], p: float) -> float:
    """The p-th percentile of samples in seconds, in milliseconds (nan if none)."""
    if not seconds:
        return float("nan")
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))] * 1000.0


def bench_clips(folder: Path, count: int, seconds: float, size: str) -> list[Path]:
    """`count` clips of varied content (grain, fractal, test pattern) in `folder`, made
    with ffmpeg at a high quality so an encode has real work. Blocks for the encodes."""
    from pipecast.actors import make_clip  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    sources = ["grain", "mandelbrot", "testsrc2"]
    return [
        make_clip(
            folder / f"clip{i}.mkv",
            seconds=seconds,
            size=size,
            source=sources[i % len(sources)],
            crf=18,
        )
        for i in range(count)
    ]
