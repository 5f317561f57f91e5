"""The CRF search's keys: what changes a sample encode's cache key, and what does not."""

from __future__ import annotations

from pipecast.actors import EncodeSettings
from pipecast.actors.media.crf import Sample, encoder_key, ffmpeg_build, sample_key

SVT = EncodeSettings(preset=10)
S0, S1 = Sample(2.0, 288), Sample(130.0, 288)


def test_the_same_sample_encode_has_the_same_key() -> None:
    assert sample_key(1000, "d", S0, SVT, 32.5) == sample_key(1000, "d", S0, SVT, 32.5)
    assert sample_key(1000, "d", S0, SVT, 32.5) == sample_key(
        1000, "d", Sample(2.0, 288), EncodeSettings(preset=10), 32.5
    )


def test_anything_that_changes_the_bytes_or_the_score_changes_the_key() -> None:
    base = sample_key(1000, "d", S0, SVT, 32.5)
    others = [
        sample_key(1001, "d", S0, SVT, 32.5),  # another source
        sample_key(1000, "e", S0, SVT, 32.5),
        sample_key(1000, "d", S1, SVT, 32.5),  # another sample
        sample_key(1000, "d", None, SVT, 32.5),  # the whole file
        sample_key(1000, "d", S0, SVT, 32.75),  # a quarter step
        sample_key(1000, "d", S0, EncodeSettings(preset=8), 32.5),
        sample_key(1000, "d", S0, EncodeSettings(preset=10, extra=("-g", "240")), 32.5),
    ]
    assert len({base, *others}) == len(others) + 1


def test_the_encoder_key_leaves_out_the_crf_but_not_the_arguments() -> None:
    assert encoder_key(SVT) == encoder_key(EncodeSettings(preset=10, crf=40.0))
    assert encoder_key(SVT) != encoder_key(EncodeSettings(preset=8))
    assert encoder_key(SVT) != encoder_key(EncodeSettings(preset=10, audio="drop"))
    assert len(encoder_key(SVT)) == 16


def test_the_build_is_ffmpegs_version_line() -> None:
    assert ffmpeg_build().startswith("ffmpeg version ")
