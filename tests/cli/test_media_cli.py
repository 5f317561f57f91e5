"""`pipecast enqueue/jobs/retry/cancel/pause --suspend` against a real node process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipecast.actors import make_clip
from pipecast.testing import NodeProcess, wait_for


@pytest.fixture
def running(tmp_path: Path):
    config = tmp_path / "node.toml"
    stages = (("analyze", "analyze"), ("crf_search", "crf"), ("encode", "encode"))
    config.write_text(
        "[media]\nmin_bytes = 1024\n\n[encode]\npreset = 12\ncrf = 40\n\n"
        + "".join(f'[[stages]]\nname = "{n}"\nkind = "{k}"\n\n' for n, k in stages)
    )
    node = NodeProcess(tmp_path / "data", "--config", str(config))
    yield node
    node.close()


def jobs(running: NodeProcess) -> list[dict]:
    out = running.run("jobs", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["jobs"]


def test_a_folder_is_enqueued_encoded_and_listed(running: NodeProcess, tmp_path: Path) -> None:
    lib = tmp_path / "library"
    lib.mkdir()
    make_clip(lib / "a.mkv", seconds=2)
    (lib / "notes.txt").write_text("x")
    out = running.run("enqueue", str(lib))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("queued 1 new, 0 changed, 0 already known; ids 1")
    assert wait_for(lambda: [j["state"] for j in jobs(running)] == ["encoded"], 60, 0.1)
    text = running.run("jobs").stdout
    assert "encoded" in text
    assert "a.av1.mkv" in text
    again = running.run("enqueue", str(lib))
    assert "1 already known" in again.stdout
    assert "ignored" in again.stdout
    assert "a pipecast output" in again.stdout


def test_a_failed_job_is_listed_with_why_and_retried_by_code(
    running: NodeProcess, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.mkv"
    bad.write_text("not a video")
    running.run("enqueue", str(bad))
    assert wait_for(lambda: [j["state"] for j in jobs(running)] == ["failed"], 30, 0.1)
    assert "[analysis/source_corrupt/UNREADABLE]" in running.run("jobs", "--state", "failed").stdout
    out = running.run("retry", "--code", "UNREADABLE")
    assert out.stdout.strip() == "retrying 1 job(s): 1"
    assert wait_for(
        lambda: jobs(running)[0]["attempts"] >= 1 and jobs(running)[0]["state"] == "failed", 30, 0.1
    )


def test_suspend_on_an_idle_stage_pauses_it_and_resume_brings_it_back(running: NodeProcess) -> None:
    assert running.run("pause", "encode", "--suspend").stdout.strip() == "encode: paused"
    assert running.run("resume", "encode").stdout.strip() == "encode: idle"


@pytest.mark.parametrize(
    "args",
    [
        ("retry",),
        ("retry", "1", "--code", "X"),
        ("retry", "0"),
        ("cancel", "0"),
        ("cancel", "77"),
        ("jobs", "--state", "lost"),
        ("enqueue", "/no/such/file.mkv"),
        ("pause", "nope"),
    ],
)
def test_bad_media_arguments_exit_2_and_change_nothing(
    running: NodeProcess, args: tuple[str, ...]
) -> None:
    out = running.run(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert jobs(running) == []


def test_commands_that_did_nothing_say_so_and_exit_1(running: NodeProcess, tmp_path: Path) -> None:
    lib = tmp_path / "library"
    (lib / "season1").mkdir(parents=True)
    make_clip(lib / "season1" / "e1.mkv", seconds=1)
    flat = running.run("enqueue", str(lib))
    assert flat.returncode == 1
    assert "no video file was queued" in flat.stderr
    assert "add -r" in flat.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    text = running.run("enqueue", str(notes))
    assert text.returncode == 1
    assert "not a video file name (.avi, .flv" in text.stdout
    assert jobs(running) == []
    missing = running.run("retry", "99")
    assert missing.returncode == 1
    assert "not retried 99: no such job" in missing.stderr
    nothing = running.run("retry", "--code", "STALLED")
    assert nothing.returncode == 1
    assert "failed jobs have: none" in nothing.stderr
    deep = running.run("enqueue", str(lib), "-r")
    assert deep.returncode == 0, deep.stderr
    assert wait_for(lambda: [j["state"] for j in jobs(running)] == ["encoded"], 60, 0.1)
    done = running.run("retry", "1")
    assert done.returncode == 1
    assert "not retried 1: not failed (encoded)" in done.stderr


def test_retry_by_category_takes_what_jobs_prints(running: NodeProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mkv"
    bad.write_text("not a video")
    running.run("enqueue", str(bad))
    assert wait_for(lambda: [j["state"] for j in jobs(running)] == ["failed"], 30, 0.1)
    assert jobs(running)[0]["failure"]["message"].endswith(
        "Invalid data found when processing input"
    )
    wrong = running.run("retry", "--code", "source_missing")
    assert wrong.returncode == 1
    assert "failed jobs have: UNREADABLE, source_corrupt" in wrong.stderr
    out = running.run("retry", "--code", "source_corrupt", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"retried": [1], "not_retried": [], "codes": []}


def test_jobs_id_shows_one_job_whole(running: NodeProcess, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "film.mkv", seconds=2)
    assert running.run("enqueue", str(clip)).returncode == 0
    assert wait_for(lambda: [j["state"] for j in jobs(running)] == ["encoded"], 60, 0.1)
    text = running.run("jobs", "1")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("job 1: encoded\n")
    for expected in (
        "  file      ",
        "film.av1.mkv",
        "crf       40",
        "video h264",
        "command   ffmpeg ",
    ):
        assert expected in text.stdout, expected
    doc = json.loads(running.run("jobs", "1", "--json").stdout)
    assert doc["id"] == 1
    assert doc["probes"] == []  # the fixed-CRF stage probes nothing
    assert "crf=40" in " ".join(doc["encode"]["args"])
    missing = running.run("jobs", "9")
    assert missing.returncode == 2
    assert "no job 9" in missing.stderr


def test_status_and_stats_read_as_text_without_json(running: NodeProcess) -> None:
    status = running.run("status")
    assert status.returncode == 0
    assert "encode: idle  queue 0 done 0 failed 0" in status.stdout
    assert "actors running: " in status.stdout
    assert "{" not in status.stdout
    stats = running.run("stats")
    assert "bridge:\n" in stats.stdout
    assert "  sequencer.published " in stats.stdout
    assert "{" not in stats.stdout
