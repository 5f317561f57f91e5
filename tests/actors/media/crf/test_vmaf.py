"""Scoring with libvmaf through the real ffmpeg."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from pipecast.actors import EncodeSettings, make_clip
from pipecast.actors.media import loopback_decoding, run_ffmpeg
from pipecast.actors.media.crf import (
    Sample,
    count_frames,
    cut_args,
    keyframes,
    keyframes_near,
    plan_samples,
    read_vmaf_log,
    sample_centres,
    scored_encode_args,
    vmaf_args,
)


def _packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.video[0]) if p.size]


@pytest.mark.skipif(not loopback_decoding(), reason="ffmpeg < 7.1: no loopback decoders")
def test_an_encode_that_scores_itself_writes_the_same_packets_and_scores_as_encode_then_score(
    tmp_path: Path,
) -> None:
    source = make_clip(tmp_path / "src.mkv", seconds=3, size="320x240", source="mandelbrot")
    settings = EncodeSettings(preset=12)
    split, fused = tmp_path / "split.mkv", tmp_path / "fused.mkv"
    split_log, fused_log = tmp_path / "split.json", tmp_path / "fused.json"
    code, errors = run_ffmpeg(settings.args(str(source), str(split), 40.0))
    assert code == 0, errors
    code, errors = run_ffmpeg(vmaf_args(str(split), str(source), str(split_log), 320, 240))
    assert code == 0, errors
    encode = settings.args(str(source), str(fused), 40.0)
    args = scored_encode_args(encode, str(fused_log), 320, 240)
    assert args[: len(encode)] == encode  # the final encode's arguments, untouched
    code, errors = run_ffmpeg(args)
    assert code == 0, errors
    assert _packets(fused) == _packets(split)
    scores = read_vmaf_log(fused_log)
    assert scores == read_vmaf_log(split_log)
    assert len(scores) == count_frames(source)


def test_threaded_scoring_gives_libvmafs_single_threaded_per_frame_scores(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "src.mkv", seconds=2, size="320x240", source="mandelbrot")
    out = tmp_path / "enc.mkv"
    code, errors = run_ffmpeg(EncodeSettings(preset=12, crf=45).args(str(source), str(out)))
    assert code == 0, errors
    ours, one = tmp_path / "ours.json", tmp_path / "one.json"
    default = vmaf_args(str(out), str(source), str(ours), 320, 240)
    assert "n_threads=0" not in " ".join(default)
    for args in (default, vmaf_args(str(out), str(source), str(one), 320, 240, threads=0)):
        code, errors = run_ffmpeg(args)
        assert code == 0, errors
    threaded = read_vmaf_log(ours)
    assert len(threaded) == count_frames(source)
    assert threaded == read_vmaf_log(one)
    assert 0 < min(threaded) < 100


def test_a_sample_cut_mid_file_is_scored_frame_for_frame_against_its_retimed_encode(
    tmp_path: Path,
) -> None:
    # Frames at (5204 + n) / 24 s, stored in Matroska's milliseconds: cut at the
    # first one, the sample's pts are 0, 42, 84, 125, ...; its encode is retimed
    # at 1/24 s to 0, 42, 83, 125, ... (the case that made a 32-minute bench clip
    # score 289 frames of 288, at VMAF 81 for a 97 encode, when paired by time).
    source = tmp_path / "late.mkv"
    code, errors = run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24:duration=6",
         "-vf", "setpts=(N+5204)/(24*TB)", "-c:v", "libx264", "-preset", "veryfast",
         "-crf", "12", "-g", "48", str(source)]
    )  # fmt: skip
    assert code == 0, errors
    ref, out, log = tmp_path / "sample.mkv", tmp_path / "enc.mkv", tmp_path / "v.json"
    assert keyframes(source) == [0.0, 2.0, 4.0]  # from the file's start, as -ss counts
    assert keyframes_near(source, [1.0, 3.5]) == [0.0, 2.0, 4.0]
    code, errors = run_ffmpeg(cut_args(str(source), Sample(0.0, 96), str(ref)))
    assert code == 0, errors
    code, errors = run_ffmpeg(EncodeSettings(preset=12, crf=20).args(str(ref), str(out)))
    assert code == 0, errors
    assert count_frames(ref) == count_frames(out) == 96
    code, errors = run_ffmpeg(vmaf_args(str(out), str(ref), str(log), 160, 120))
    assert code == 0, errors
    scores = read_vmaf_log(log)
    assert len(scores) == 96
    assert min(scores) > 85  # a crf 20 encode: no frame compared with its neighbour


def test_keyframes_near_the_sample_centres_plan_the_same_samples_as_all_keyframes(
    tmp_path: Path,
) -> None:
    for name, gop in (("a.mkv", 48), ("b.mp4", 25), ("c.mkv", None)):
        clip = make_clip(tmp_path / name, seconds=150, size="64x48", audio=False, gop=gop)
        every = keyframes(clip)
        centres = sample_centres(150.0)
        assert len(centres) == 4
        near = keyframes_near(clip, centres)
        assert set(near) <= set(every)  # real keyframes only
        assert len(near) <= 2 * len(centres)
        for t in centres:  # the ones just before and just after each centre
            assert max(k for k in every if k <= t) in near
            assert min(k for k in every if k > t) in near
        assert plan_samples(150.0, 24.0, near) == plan_samples(150.0, 24.0, every), name
