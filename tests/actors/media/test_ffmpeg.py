"""FfmpegJob: progress read without blocking past its timeout, and never spinning."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipecast.actors.media import FfmpegJob, _ffmpeg


def test_a_job_reports_progress_blocks_until_the_end(tmp_path: Path) -> None:
    job = FfmpegJob(
        ["-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=2", "-f", "null", "-"],
        tmp_path / "job.log",
    )
    blocks: list[dict[str, str]] = []
    while job.poll() is None:
        blocks += job.read_progress(0.25)
    blocks += job.read_progress(0.25)  # whatever was written just before the exit
    job.close()
    assert job.proc.returncode == 0, job.errors()
    assert blocks, "no progress block at all"
    assert blocks[-1]["progress"] == "end"
    assert int(blocks[-1]["frame"]) == 20


def test_a_job_whose_output_ended_waits_for_its_exit_instead_of_spinning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fault: ffmpeg has closed its progress pipe but not yet exited (its
    # teardown on a loaded machine). Caused here by a shell standing in for
    # the process at the boundary: it writes a last block, closes stdout and
    # lingers; ffmpeg's own arguments become the shell's ignored positionals.
    sh = shutil.which("sh")
    assert sh is not None
    script = "printf 'frame=5\\nprogress=end\\n'; exec 1>&-; sleep 1"
    monkeypatch.setattr(_ffmpeg, "_setpriv", lambda: [sh, "-c", script])
    monkeypatch.setattr(_ffmpeg, "ffmpeg_exe", lambda: "ffmpeg")
    job = FfmpegJob([], tmp_path / "job.log")
    steps = 0
    blocks: list[dict[str, str]] = []
    while job.poll() is None:
        blocks += job.read_progress(0.2)
        steps += 1
    job.close()
    assert blocks == [{"frame": "5", "progress": "end"}]
    # ~1 s of lingering in steps of at most 0.2 s: a handful; a spin is thousands
    assert steps <= 12, steps
