"""Encode progress: monotonic, honest about frames and suspended time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors.media import (
    EncodeProgress,
)

# -- progress ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 500),
    st.lists(
        st.tuples(st.sampled_from(["frame", "suspend", "resume", "end"]), st.integers(0, 600)),
        max_size=40,
    ),
)
def test_progress_is_monotonic_within_0_and_100(total: int, events: list[tuple[str, int]]) -> None:
    p = EncodeProgress(total, 5.0, 0.0)
    now, last = 0.0, 0.0
    for kind, n in events:
        now += 0.5
        if kind == "frame":
            p.update({"frame": str(n), "speed": "1.5x"}, now)
        elif kind == "suspend":
            p.suspend(now)
        elif kind == "resume":
            p.resume(now)
        else:
            p.update({"frame": str(n), "progress": "end"}, now)
        assert 0.0 <= p.percent <= 100.0
        assert p.percent >= last
        last = p.percent
        assert p.active(now) <= now
        assert p.frames <= p.total or p.total == 0
        if p.ended and p.frames:
            assert p.total == p.frames  # the real count, once it is known


def test_an_ended_job_shows_its_real_frame_count_not_the_estimate() -> None:
    p = EncodeProgress(193, 5.0, 0.0)  # 8.04 s x 24 fps: the audio is 40 ms longer
    p.update({"frame": "150"}, 1.0)
    assert (p.as_dict(1.0)["frames"], p.as_dict(1.0)["total_frames"]) == (150, 193)
    p.update({"frame": "192", "progress": "end"}, 1.3)
    assert (p.as_dict(1.3)["frames"], p.as_dict(1.3)["total_frames"], p.percent) == (192, 192, 100)
    q = EncodeProgress(200, 5.0, 0.0)
    q.update({"frame": "210"}, 1.0)  # an estimate too low: never more done than in all
    assert q.as_dict(1.0)["total_frames"] == 210


def test_suspended_time_is_excluded_from_fps_eta_and_the_stall_clock() -> None:
    p = EncodeProgress(total_frames=200, stall_timeout=5.0, now=0.0)
    p.update({"frame": "50"}, 2.0)  # 25 fps over 2 s of work
    p.suspend(2.0)
    assert not p.stalled(100.0)  # suspended for 98 s: never a stall
    p.resume(100.0)
    assert p.active(100.0) == pytest.approx(2.0)
    assert p.fps(100.0) == pytest.approx(25.0)
    assert p.eta(100.0) == pytest.approx(6.0)
    assert not p.stalled(104.0)
    assert p.stalled(105.5)  # 5.5 s of unsuspended time without a new frame


def test_progress_counts_only_frames_gained() -> None:
    p = EncodeProgress(100, 1.0, 0.0)
    p.update({"frame": "10"}, 0.5)
    p.update({"frame": "10"}, 1.4)
    assert not p.stalled(1.4)
    assert p.stalled(1.6)
    p.update({"frame": "11"}, 1.7)
    assert not p.stalled(1.7)
