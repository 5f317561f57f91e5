"""What a media file holds, read with PyAV (no ffprobe needed).

`inspect_media(path)` runs in the calling stage's thread and blocks for the few
milliseconds PyAV needs to read the container's headers. Every way it can
fail becomes a `MediaFailure` with a category: `source_missing`,
`source_corrupt` (not readable as media), `not_video` (readable, no video).
PyAV's own exceptions never leave this module.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ._job_states import MediaFailure

__all__ = ["MediaInfo", "StreamInfo", "inspect_media"]

_PQ, _HLG, _BT2020 = 16, 18, 9  # AVCOL_TRC_SMPTE2084, AVCOL_TRC_ARIB_STD_B67, AVCOL_PRI_BT2020
_TIMING_PACKETS = 600  # packets read to judge the frame spacing (no decoding)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    index: int
    kind: str  # video | audio | subtitle | data | attachment
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    variable_fps: bool | None = None
    bit_depth: int | None = None
    hdr: str | None = None  # pq | hlg | None
    channels: int | None = None
    sample_rate: int | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    container: str
    duration: float  # seconds
    bit_rate: int | None
    streams: tuple[StreamInfo, ...]

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    def count(self, kind: str) -> int:
        return sum(1 for s in self.streams if s.kind == kind)

    @property
    def frames(self) -> int:
        """Frames of the first video stream, estimated from duration and fps."""
        v = self.video
        return round(self.duration * v.fps) if v is not None and v.fps else 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MediaInfo:
        return cls(
            d["container"],
            d["duration"],
            d["bit_rate"],
            tuple(StreamInfo(**s) for s in d["streams"]),
        )


def _rate(value: Fraction | None) -> float | None:
    return float(value) if value else None


def _stream(s: Any) -> StreamInfo:
    cc = s.codec_context
    kind = s.type or "data"
    language = (s.metadata or {}).get("language")
    # the codec's canonical name (av1), not the decoder's (libdav1d)
    codec = cc.codec.canonical_name if cc is not None and cc.codec is not None else "unknown"
    if kind == "video":
        avg, base = _rate(s.average_rate), _rate(s.base_rate)
        fmt = cc.format
        trc, primaries = getattr(cc, "color_trc", None), getattr(cc, "color_primaries", None)
        hdr = "pq" if trc == _PQ else "hlg" if trc == _HLG else None
        if hdr is None and primaries == _BT2020 and trc not in (None, 2):
            hdr = "bt2020"
        return StreamInfo(
            s.index,
            kind,
            codec,
            width=cc.width or None,
            height=cc.height or None,
            fps=avg or base,
            variable_fps=bool(avg and base and abs(avg - base) > 0.01),
            bit_depth=fmt.components[0].bits if fmt is not None and fmt.components else None,
            hdr=hdr,
            language=language,
        )
    if kind == "audio":
        layout = getattr(cc, "layout", None)
        return StreamInfo(
            s.index,
            kind,
            codec,
            channels=layout.nb_channels if layout is not None else None,
            sample_rate=cc.sample_rate or None,
            language=language,
        )
    return StreamInfo(s.index, kind, codec, language=language)


def _with_timing(container: Any, streams: tuple[StreamInfo, ...]) -> tuple[StreamInfo, ...]:
    """Mark the video variable-rate from its first packets' timestamps.

    Containers often state one rate for a variable one (mkv: the header says
    30 while frames are 33 and 67 ms apart), so look at the spacing itself.
    """
    video = next((i for i, s in enumerate(streams) if s.kind == "video"), None)
    if video is None or not container.streams.video:
        return streams
    stream = container.streams.video[0]
    times = []
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base:
            times.append(float(packet.pts * packet.time_base))
        if len(times) >= _TIMING_PACKETS:
            break
    times.sort()
    gaps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    if len(gaps) < 3:
        return streams
    median = gaps[len(gaps) // 2]
    variable = gaps[-1] > 1.5 * median or gaps[0] < median / 1.5
    out = list(streams)
    out[video] = replace(streams[video], variable_fps=variable or bool(streams[video].variable_fps))
    return tuple(out)


def inspect_media(path: str | Path) -> MediaInfo:
    """Read `path`'s container and streams; `MediaFailure` if it is not usable media."""
    p = Path(path)
    if not p.is_file():
        raise MediaFailure("source_missing", "ENOENT", f"{p} does not exist or is not a file")
    try:
        with av.open(str(p)) as container:
            streams = tuple(_stream(s) for s in container.streams)
            streams = _with_timing(container, streams)
            duration = container.duration / 1_000_000 if container.duration else 0.0
            result = MediaInfo(container.format.name, duration, container.bit_rate or None, streams)
    except av.error.FileNotFoundError:
        raise MediaFailure("source_missing", "ENOENT", f"{p} disappeared") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        # FFmpeg's errors carry its negative error codes as errno: say what they mean
        why = getattr(exc, "strerror", None) or str(exc)
        raise MediaFailure(
            "source_corrupt", "UNREADABLE", f"{p} is not media ffmpeg can read: {why}"
        ) from None
    if result.video is None:
        raise MediaFailure("not_video", "NO_VIDEO", f"{p} has no video stream")
    if result.duration <= 0:
        raise MediaFailure("source_corrupt", "NO_DURATION", f"{p} has no duration")
    return result
