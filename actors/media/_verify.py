"""The gates an encode passes before it may be committed.

`judge(...)` is pure: it compares what source and output hold (`MediaInfo`)
and their sizes, and answers None (commit it), a skip reason (`not_beneficial`: a persisted
skip, never a success), or a `MediaFailure` (`verify_failed` with a code:
TOO_SMALL, DURATION, NO_VIDEO, CODEC, STREAMS). The full-decode
gate runs in the encoder's `verifying` phase, as a stepped ffmpeg job.
"""

from __future__ import annotations

from ._config import EncodeSettings, MediaPolicy
from ._inspect import MediaInfo
from ._job_states import MediaFailure

__all__ = ["judge"]


def judge(
    source: MediaInfo,
    output: MediaInfo,
    source_size: int,
    output_size: int,
    policy: MediaPolicy,
    settings: EncodeSettings,
) -> MediaFailure | str | None:
    if output_size < max(policy.min_output_bytes, 1):
        return MediaFailure(
            "verify_failed",
            "TOO_SMALL",
            f"output is {output_size} bytes (< {policy.min_output_bytes})",
        )
    limit = max(2.0, policy.duration_tolerance * source.duration)
    if abs(output.duration - source.duration) > limit:
        return MediaFailure(
            "verify_failed",
            "DURATION",
            f"output lasts {output.duration:.3f} s, source {source.duration:.3f} s "
            f"(tolerance {limit:.3f} s)",
        )
    video = output.video
    if video is None:
        return MediaFailure("verify_failed", "NO_VIDEO", "output has no video stream")
    if video.codec != settings.codec:
        return MediaFailure(
            "verify_failed", "CODEC", f"output video is {video.codec}, not {settings.codec}"
        )
    for kind, policy_of in (("audio", settings.audio), ("subtitle", settings.subtitles)):
        want = source.count(kind) if policy_of == "copy" else 0
        if output.count(kind) != want:
            return MediaFailure(
                "verify_failed",
                "STREAMS",
                f"output has {output.count(kind)} {kind} stream(s), expected {want}",
            )
    if output_size >= source_size * policy.max_output_ratio:
        return "not_beneficial"
    return None
