"""The media pipeline's settings: encoder arguments and library policy. Pure, validated.

`EncodeSettings.args(source, output, crf)` is the one place encode arguments
are built, so a CRF probe and the final encode can use the same list, paths
apart (the CRF search relies on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipecast.transport import BadRequest

__all__ = ["OUR_MARK", "EncodeSettings", "MediaPolicy", "is_ours"]

# every temp, partial and backup file we write has this in its name, and a
# leading dot: scanners (ours included) skip them, and cleanup touches nothing else
OUR_MARK = ".pipecast-"
_OURS = re.compile(r"^\..*\.pipecast-(tmp|orig|partial)(\.[A-Za-z0-9]+)?$")
VIDEO_EXTENSIONS = frozenset(
    {
        ".mkv",
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".webm",
        ".ts",
        ".m2ts",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
    }
)


def is_ours(name: str) -> bool:
    """A file name of one of our temp, partial or backup files."""
    return bool(_OURS.match(name))


@dataclass(frozen=True, slots=True)
class EncodeSettings:
    encoder: str = "libsvtav1"
    preset: int = 8  # ab-av1's default for svt-av1; Reencodarr runs 6 (4 at 1080p and up)
    crf: float = 35.0  # used until a CRF search chooses one per file
    audio: str = "copy"  # copy | drop
    subtitles: str = "copy"  # copy | drop
    extra: tuple[str, ...] = ()  # more output options, e.g. ("-svtav1-params", "tune=0")

    def __post_init__(self) -> None:
        if self.encoder not in ("libsvtav1", "libaom-av1", "librav1e", "libx264", "libx265"):
            raise BadRequest(f"encoder {self.encoder!r} is not supported")
        if type(self.preset) is not int or not -2 <= self.preset <= 13:
            raise BadRequest("preset must be an int from -2 to 13")
        if type(self.crf) not in (int, float) or not 0 <= self.crf <= 70:
            raise BadRequest("crf must be 0 to 70")
        for name, v in (("audio", self.audio), ("subtitles", self.subtitles)):
            if v not in ("copy", "drop"):
                raise BadRequest(f"{name} must be copy or drop")
        if not all(type(x) is str for x in self.extra):
            raise BadRequest("extra must be a list of strings")

    @property
    def codec(self) -> str:
        return {"libx264": "h264", "libx265": "hevc"}.get(self.encoder, "av1")

    def args(self, source: str, output: str, crf: float | None = None) -> list[str]:
        """ffmpeg arguments (after the global ones) to encode `source` into `output`.

        libsvtav1 gets its CRF inside `-svtav1-params` (merged with any given
        there): ffmpeg's own `-crf` takes whole numbers up to 63 only, and
        rounds 31.5 to 32 without a word.
        """
        crf = self.crf if crf is None else crf
        out = ["-xerror", "-y", "-i", source, "-map", "0:v:0"]
        if self.audio == "copy":
            out += ["-map", "0:a?", "-c:a", "copy"]
        if self.subtitles == "copy":
            out += ["-map", "0:s?", "-c:s", "copy"]
        out += ["-c:v", self.encoder, "-preset", str(self.preset)]
        extra = list(self.extra)
        if self.encoder == "libsvtav1":
            params = [f"crf={crf:g}"]
            if "-svtav1-params" in extra:
                i = extra.index("-svtav1-params")
                params.append(extra[i + 1])
                del extra[i : i + 2]
            out += ["-svtav1-params", ":".join(params)]
        else:
            out += ["-crf", f"{crf:g}"]
        return [*out, *extra, "-f", "matroska", output]


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """What the library does with files (see docs/media.md)."""

    replace: bool = False  # default: keep the output beside the original, never touch it
    suffix: str = ".av1"  # keep mode: <stem><suffix>.mkv beside the original
    min_bytes: int = 64 * 1024  # smaller sources are skipped (too_small)
    max_output_ratio: float = 1.0  # output must be below source size * this
    min_output_bytes: int = 1024
    stall_timeout: float = 300.0  # seconds without frame progress (not paused) -> failed:stalled
    max_attempts: int = 3  # automatic attempts per stage for retryable failures
    duration_tolerance: float = 0.005  # |delta| <= max(2 s, this * duration)
    verify_decode: bool = True
    work_dir: str = field(default="")  # default: <data_dir>/work
    # the folders it may enqueue from, read and replace in (none: every enqueue is refused)
    roots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if type(self.roots) is not tuple or not all(
            type(r) is str and 0 < len(r) <= 4096 for r in self.roots
        ):
            raise BadRequest("roots must be a list of folder paths")
        if type(self.replace) is not bool or type(self.verify_decode) is not bool:
            raise BadRequest("replace and verify_decode must be true or false")
        if not re.fullmatch(r"\.[A-Za-z0-9_-]{1,32}", self.suffix):
            raise BadRequest("suffix must look like .av1")
        for name, v, low in (
            ("min_bytes", self.min_bytes, 0),
            ("min_output_bytes", self.min_output_bytes, 0),
            ("max_attempts", self.max_attempts, 1),
        ):
            if type(v) is not int or v < low:
                raise BadRequest(f"{name} must be an int >= {low}")
        if type(self.max_output_ratio) not in (int, float) or not 0 < self.max_output_ratio <= 10:
            raise BadRequest("max_output_ratio must be in (0, 10]")
        if type(self.stall_timeout) not in (int, float) or not 0.1 <= self.stall_timeout <= 86400:
            raise BadRequest("stall_timeout must be 0.1 to 86400 seconds")
        if (
            type(self.duration_tolerance) not in (int, float)
            or not 0 <= self.duration_tolerance < 1
        ):
            raise BadRequest("duration_tolerance must be in [0, 1)")
