"""The CRF search's ffmpeg task chains, with the real ffmpeg."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipecast.actors.media.crf import Ended, Tasks

TINY = ["-f", "lavfi", "-i", "testsrc2=s=32x32:r=10:d=0.3", "-f", "null", "-"]
BAD = ["-f", "lavfi", "-i", "no_such_source", "-f", "null", "-"]
LONG = ["-re", "-f", "lavfi", "-i", "testsrc2=s=32x32:r=10:d=60", "-f", "null", "-"]
# one second in real time (-re), so progress reports come while it runs
SECOND = ["-re", "-f", "lavfi", "-i", "testsrc2=s=32x32:r=20:d=1", "-f", "null", "-"]


def _until_ended(tasks: Tasks, timeout: float = 30.0) -> Ended:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = tasks.poll(0.25)
        if ended is not None:
            return ended
    raise AssertionError("no task ended in time")


def test_a_chain_runs_its_commands_in_order_and_times_the_first_alone(tmp_path: Path) -> None:
    pgids: list[int] = []
    tasks = Tasks(tmp_path, ".1-", pgids.append)
    tasks.start(("probe", 0), [("encode", TINY), ("score", TINY)])
    assert tasks.busy("probe")
    assert not tasks.busy("cut")
    assert tasks.labels() == [("encode", 0)]
    ended = _until_ended(tasks)
    assert (ended.key, ended.label, ended.code) == (("probe", 0), "score", 0)
    assert ended.first_seconds is not None
    assert ended.first_seconds > 0
    assert len(pgids) == 2  # each process recorded as it started
    assert len(tasks) == 0
    assert (tmp_path / ".1-encode0.log").exists()
    assert (tmp_path / ".1-score0.log").exists()


def test_a_failing_command_ends_its_chain_with_its_label_and_errors(tmp_path: Path) -> None:
    tasks = Tasks(tmp_path, ".1-", lambda _: None)
    tasks.start(("probe", 2), [("encode", BAD), ("score", TINY)])
    ended = _until_ended(tasks)
    assert (ended.key, ended.label) == (("probe", 2), "encode")
    assert ended.code not in (0, None)
    assert "no_such_source" in ended.errors
    assert ended.first_seconds is None
    assert len(tasks) == 0


def test_one_command_is_not_timed_as_a_chain(tmp_path: Path) -> None:
    tasks = Tasks(tmp_path, ".1-", lambda _: None)
    tasks.start(("probe", 1), [("encode+score", TINY)])
    ended = _until_ended(tasks)
    assert (ended.label, ended.code, ended.first_seconds) == ("encode+score", 0, None)


def test_stop_kills_every_running_task(tmp_path: Path) -> None:
    tasks = Tasks(tmp_path, ".1-", lambda _: None)
    tasks.start(("cut", 3), [("cut", LONG)])
    tasks.start(("probe", 0), [("encode", LONG), ("score", TINY)])
    assert tasks.poll(0.1) is None  # nothing ends on its own for a minute
    tasks.stop()
    assert len(tasks) == 0
    assert tasks.poll(0.1) is None


def test_a_timed_command_marks_its_first_frame_done_so_start_up_can_be_left_out(
    tmp_path: Path,
) -> None:
    tasks = Tasks(tmp_path, ".1-", lambda _: None)
    tasks.start(("probe", 0), [("encode", SECOND), ("score", TINY)])
    ended = _until_ended(tasks)
    assert ended.code == 0
    assert ended.first_seconds is not None
    assert ended.first_mark is not None
    at, done = ended.first_mark
    assert 0 < at < ended.first_seconds
    assert 1 <= done < 20  # reported while it ran, not at its end
    assert ended.last_mark is not None
    last_at, last_done = ended.last_mark
    assert at <= last_at <= ended.first_seconds
    assert done <= last_done < 20  # the last report *before* the end (20 frames in all)


def test_the_first_commands_time_leaves_out_its_start_up_when_it_can_tell() -> None:
    def ended(
        seconds: float | None,
        mark: tuple[float, int] | None,
        last: tuple[float, int] | None = None,
    ) -> Ended:
        return Ended(("probe", 0), "score", 0, "", seconds, mark, last)

    # 0.2 s to the first of 100 frames, then 99 more in 0.99 s: 1 s for all 100
    assert ended(1.19, (0.2, 1)).first_seconds_without_start_up(100) == pytest.approx(1.0)
    assert ended(1.19, None).first_seconds_without_start_up(100) == 1.19
    assert ended(1.19, (1.0, 60)).first_seconds_without_start_up(100) == 1.19  # too late
    assert ended(None, None).first_seconds_without_start_up(100) is None


def test_the_first_commands_time_is_its_pace_while_going_without_the_flush_at_its_end() -> None:
    def ended(last: tuple[float, int] | None) -> Ended:
        return Ended(("probe", 0), "encode", 0, "", 1.0, (0.2, 10), last)

    # 10 -> 70 frames from 0.2 to 0.8 s: 10 ms a frame, 1 s for 100, though the
    # last 30 came out in 0.2 s (the lookahead flushed at the end)
    assert ended((0.8, 70)).first_seconds_without_start_up(100) == pytest.approx(1.0)
    # reports fewer than a quarter of the frames apart: from the first frame to the end
    assert ended((0.3, 30)).first_seconds_without_start_up(100) == pytest.approx(0.8 * 100 / 90)
    assert ended(None).first_seconds_without_start_up(100) == pytest.approx(0.8 * 100 / 90)
    assert ended((0.2, 10)).first_seconds_without_start_up(100) == pytest.approx(0.8 * 100 / 90)
