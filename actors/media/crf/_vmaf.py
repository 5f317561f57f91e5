"""libvmaf through ffmpeg, keyframes and frame counts through PyAV.

`vmaf_args` builds the scoring command (model `vmaf_v0.6.1`, `vmaf_4k_v0.6.1`
above 2560x1440; every frame scored, a per-frame JSON log; frames paired by
their index, not their timestamps), `scored_encode_args` an encode that
scores its own output in the same process (the same graph); `read_vmaf_log`
returns the per-frame scores or raises `MediaFailure` (`metric`). The PyAV
helpers run in the calling stage's thread and block while they read the
file's packets (no decoding).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av

from pipecast.actors.media._job_states import MediaFailure

__all__ = [
    "VMAF_OPTIONS",
    "count_frames",
    "keyframes",
    "keyframes_near",
    "read_vmaf_log",
    "scored_encode_args",
    "vmaf_args",
]

VMAF_OPTIONS = "libvmaf n_threads=auto, no subsampling, frames paired by index"  # in cache keys


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _graph(distorted: str, reference: str, log_path: str, width: int, height: int,
           threads: int | None) -> str:  # fmt: skip
    """libvmaf between two filtergraph inputs, frames paired by index."""
    model = "vmaf_4k_v0.6.1" if width > 2560 and height > 1440 else "vmaf_v0.6.1"
    # libvmaf's own default is n_threads=0: features on the filter's one thread. Its
    # threads give the same per-frame scores (tested) in ~17 % less wall time on 2 cores.
    if threads is None:
        threads = min(_cpus(), 16)
    # Pair frame i with frame i: both get pts = their index in one time base.
    # Paired by timestamp (each rebased to 0), a sample cut by stream copy at
    # 216.833 s kept its millisecond rounding (0, 42, 84, ...) while its encode
    # was retimed (0, 42, 83, ...): libvmaf's frame sync then paired frames
    # with their neighbours and scored 289 frames of 288 at VMAF 81 instead of
    # 97. The callers check the frame counts are equal, so by index is exact.
    index = "settb=1/1000,setpts=N"
    return (
        f"[{distorted}]{index}[d];[{reference}]{index}[r];"
        f"[d][r]libvmaf=model=version={model}:n_threads={threads}"
        f":log_fmt=json:log_path={log_path}"
    )


def vmaf_args(
    distorted: str,
    reference: str,
    log_path: str,
    width: int,
    height: int,
    threads: int | None = None,
) -> list[str]:
    """The scoring command; `threads` None: every CPU this process may run on (max 16)."""
    graph = _graph("0:v", "1:v", log_path, width, height, threads)
    return [
        "-i", distorted, "-i", reference, "-filter_complex", graph,
        # the output time base from the graph, so the null muxer sees the same pts
        "-enc_time_base", "filter", "-f", "null", "-",
    ]  # fmt: skip


def scored_encode_args(
    encode: list[str], log_path: str, width: int, height: int, threads: int | None = None
) -> list[str]:
    """`encode` unchanged, then a second output scoring what it encodes (ffmpeg >= 7.1).

    The encoder's packets are decoded back in the same process (a loopback
    decoder, `-dec 0:0`: output 0's first stream, the video `encode` maps
    first) and scored against the frames the encoder was given, so the
    reference is decoded once instead of twice and no second process reads
    the encode back: ~12 % less CPU per sample at 160x120, the same bytes
    and the same per-frame scores (tested). `encode` must read the reference
    as its input 0 and map its video first, as `EncodeSettings.args` does.
    """
    graph = _graph("dec:0", "0:v:0", log_path, width, height, threads)
    return [
        *encode,
        # the graph's output must be mapped here, or ffmpeg adds it to output 0: a cycle
        "-dec", "0:0", "-filter_complex", f"{graph}[scored]", "-map", "[scored]",
        "-enc_time_base", "filter", "-f", "null", "-",
    ]  # fmt: skip


def read_vmaf_log(path: Path) -> list[float]:
    try:
        frames = json.loads(path.read_text())["frames"]
        scores = [float(f["metrics"]["vmaf"]) for f in frames]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MediaFailure(
            "metric", "VMAF_PARSE", f"no VMAF scores in {path.name}: {exc}"
        ) from None
    if not scores:
        raise MediaFailure("metric", "VMAF_EMPTY", f"{path.name} scored no frame")
    return scores


def _start(container: av.container.InputContainer) -> float:
    """The file's start time in seconds (container.start_time is in AV_TIME_BASE units)."""
    return (container.start_time or 0) / 1_000_000


def _seconds(pts: int, time_base: Fraction, start: float) -> float:
    """A packet time as seconds from the file's start, as ffmpeg's input `-ss` counts."""
    return round(float(pts * time_base) - start, 6)


def keyframes(path: str | Path) -> list[float]:
    """Times (s) of the first video stream's keyframes, from the file's start.

    Relative to the container's start time, as ffmpeg's input `-ss` is: a
    file whose timestamps begin at 216.8 s has its first keyframe at 0.0.
    """
    out = []
    try:
        with av.open(str(path)) as c:
            start = _start(c)
            stream = c.streams.video[0]
            for packet in c.demux(stream):
                if packet.is_keyframe and packet.pts is not None and packet.time_base:
                    out.append(_seconds(packet.pts, packet.time_base, start))
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise MediaFailure("source_corrupt", "UNREADABLE", f"cannot read {path}: {exc}") from None
    return sorted(out)


# Packets read forward from a seek point before giving up on finding the next
# keyframe (a file with one keyframe every few minutes still fits).
_MAX_SCAN = 20_000


def keyframes_near(path: str | Path, times: Sequence[float]) -> list[float]:
    """The keyframes just before and just after each time (s from the file's start).

    Seeks instead of reading the whole file: a few GOPs per time, where
    `keyframes` reads every packet (seconds to minutes for a film of many
    GB). Falls back to `keyframes` if the container cannot seek.
    """
    found: set[float] = set()
    try:
        with av.open(str(path)) as c:
            start = _start(c)
            stream = c.streams.video[0]
            tb = stream.time_base
            if not tb:
                return keyframes(path)
            for t in times:
                c.seek(max(0, int((t + start) / tb)), stream=stream, backward=True)
                before: float | None = None
                for n, packet in enumerate(c.demux(stream)):
                    if n > _MAX_SCAN:
                        break
                    if not packet.is_keyframe or packet.pts is None:
                        continue
                    k = _seconds(packet.pts, tb, start)
                    if k <= t:
                        before = k
                        continue
                    found.add(k)
                    break
                if before is not None:
                    found.add(before)
    except av.error.FFmpegError:
        return keyframes(path)  # e.g. a container without an index to seek in
    except (OSError, IndexError) as exc:
        raise MediaFailure("source_corrupt", "UNREADABLE", f"cannot read {path}: {exc}") from None
    return sorted(found)


def count_frames(path: str | Path) -> int:
    """Video packets (= frames) of the first video stream."""
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            return sum(1 for p in c.demux(stream) if p.size)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise MediaFailure("sample_failure", "UNREADABLE", f"cannot read {path}: {exc}") from None
