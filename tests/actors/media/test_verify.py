"""The verification gates an encode must pass before it may replace anything."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipecast.actors import (
    EncodeSettings,
    MediaFailure,
    MediaPolicy,
)
from pipecast.actors.media import (
    MediaInfo,
    StreamInfo,
    judge,
)

# -- verification gates ------------------------------------------------------------------------------

V_H264 = StreamInfo(0, "video", "h264", 320, 240, 24.0)
V_AV1 = replace(V_H264, codec="av1")
AUDIO = StreamInfo(1, "audio", "aac", channels=1)
SUB = StreamInfo(2, "subtitle", "subrip")
SRC = MediaInfo("matroska,webm", 60.0, 1_000_000, (V_H264, AUDIO, SUB))
OUT = MediaInfo("matroska,webm", 60.0, 500_000, (V_AV1, AUDIO, SUB))
POLICY = MediaPolicy()
AV1 = EncodeSettings()


def test_a_good_output_passes() -> None:
    assert judge(SRC, OUT, 10_000_000, 5_000_000, POLICY, AV1) is None


@pytest.mark.parametrize(
    ("out", "size", "code"),
    [
        (OUT, 500, "TOO_SMALL"),  # B5
        (OUT, 0, "TOO_SMALL"),
        (replace(OUT, duration=30.0), 5_000_000, "DURATION"),  # B1: truncated at 50 %
        (replace(OUT, duration=57.9), 5_000_000, "DURATION"),  # > max(2 s, 0.5 %)
        (replace(OUT, streams=(V_AV1, SUB)), 5_000_000, "STREAMS"),  # B4: audio dropped
        (replace(OUT, streams=(V_AV1, AUDIO)), 5_000_000, "STREAMS"),  # subtitles dropped
        (replace(OUT, streams=(AUDIO, SUB)), 5_000_000, "NO_VIDEO"),
        (replace(OUT, streams=(V_H264, AUDIO, SUB)), 5_000_000, "CODEC"),
    ],
)
def test_a_bad_output_is_rejected_with_a_code(out: MediaInfo, size: int, code: str) -> None:
    verdict = judge(SRC, out, 10_000_000, size, POLICY, AV1)
    assert isinstance(verdict, MediaFailure)
    assert (verdict.category, verdict.code) == ("verify_failed", code)


def test_a_duration_within_tolerance_passes() -> None:
    assert judge(SRC, replace(OUT, duration=58.1), 10_000_000, 5_000_000, POLICY, AV1) is None
    long = replace(SRC, duration=3600.0)
    assert (
        judge(long, replace(OUT, duration=3582.1), 10_000_000, 5_000_000, POLICY, AV1) is None
    )  # 0.5 %


def test_an_output_not_smaller_than_its_source_is_a_skip_not_a_success() -> None:  # B6
    assert judge(SRC, OUT, 5_000_000, 5_000_000, POLICY, AV1) == "not_beneficial"
    assert judge(SRC, OUT, 5_000_000, 6_000_000, POLICY, AV1) == "not_beneficial"
    roomy = replace(POLICY, max_output_ratio=1.5)
    assert judge(SRC, OUT, 5_000_000, 6_000_000, roomy, AV1) is None


def test_dropping_audio_on_purpose_expects_none() -> None:
    drop = replace(AV1, audio="drop")
    assert (
        judge(SRC, replace(OUT, streams=(V_AV1, SUB)), 10_000_000, 5_000_000, POLICY, drop) is None
    )
