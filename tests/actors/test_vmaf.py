"""Scoring with libvmaf through the real ffmpeg."""

from __future__ import annotations

from pathlib import Path

from pipecast.actors import EncodeSettings, make_clip
from pipecast.actors._ffmpeg import run_ffmpeg
from pipecast.actors._vmaf import count_frames, read_vmaf_log, vmaf_args


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
