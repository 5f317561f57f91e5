"""Small real clips made with ffmpeg's lavfi sources, for the demo, tests and benchmarks.

`make_clip` runs ffmpeg in the caller's thread and blocks until the clip is
written (well under a second for a few seconds of 320x240). The video is
H.264 at a high quality (so an AV1 encode of it is smaller), with a sine
audio track and, optionally, a subtitle track.
"""

from __future__ import annotations

from pathlib import Path

from pipecast.transport import PipecastError

from ._ffmpeg import run_ffmpeg

__all__ = ["make_clip"]

_SOURCES = {
    "testsrc2": "testsrc2=size={size}:rate={rate}:duration={seconds}",
    "mandelbrot": "mandelbrot=size={size}:rate={rate},trim=duration={seconds}",
    "noise": "nullsrc=size={size}:rate={rate}:duration={seconds},geq=random(1)*255:128:128",
    # moving test pattern with film-grain-like noise: closer to real footage
    "grain": "testsrc2=size={size}:rate={rate}:duration={seconds},noise=alls=12:allf=t",
}


def make_clip(
    path: str | Path,
    seconds: float = 3.0,
    size: str = "320x240",
    rate: int = 24,
    source: str = "testsrc2",
    audio: bool = True,
    subtitles: bool = False,
    crf: int = 12,
    gop: int | None = None,
) -> Path:
    """Write a clip to `path` (its extension picks the container); raises PipecastError."""
    out = Path(path)
    video = _SOURCES[source].format(size=size, rate=rate, seconds=seconds)
    args = ["-y", "-f", "lavfi", "-i", video]
    maps = ["-map", "0:v"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        maps += ["-map", "1:a"]
    if subtitles:
        srt = out.with_suffix(".srt")
        srt.write_text(f"1\n00:00:00,000 --> 00:00:0{min(int(seconds), 9)},000\nhello\n")
        args += ["-i", str(srt)]
        maps += ["-map", f"{2 if audio else 1}:s"]
    args += [
        *maps,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
    ]
    if gop is not None:
        args += ["-g", str(gop)]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    if subtitles:
        args += ["-c:s", "srt" if out.suffix == ".mkv" else "mov_text"]
    code, errors = run_ffmpeg([*args, "-shortest", str(out)], timeout=120 + 4 * seconds)
    if subtitles:
        out.with_suffix(".srt").unlink(missing_ok=True)
    if code != 0:
        raise PipecastError(f"could not make the clip {out}: {errors.strip()[-300:]}")
    return out
