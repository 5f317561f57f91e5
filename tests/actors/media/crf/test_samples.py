"""Where CRF samples go (G9 of docs/media_safety.md) and what a probe's scores add up to. Pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors.media.crf import file_percent, plan_samples, probe_order, score_probe


@pytest.mark.parametrize("duration", [3.0, 11.0, 40.0, 56.0])
def test_short_files_get_a_full_pass(duration: float) -> None:
    assert plan_samples(duration, 24.0, [0.0, 2.0]).full_pass


def test_a_long_file_gets_at_least_four_samples_at_keyframes_spread_over_it() -> None:
    keys = [i * 2.0 for i in range(0, 1800)]  # a keyframe every 2 s, one hour
    plan = plan_samples(3600.0, 25.0, keys)
    assert not plan.full_pass
    assert len(plan.samples) == 8  # ceil(60 min / 8 min)
    starts = [s.start for s in plan.samples]
    assert all(s in keys for s in starts)
    assert starts == sorted(starts)
    assert starts[0] >= 0.02 * 3600 - 2
    assert starts[-1] + 12 <= 0.98 * 3600 + 2
    assert all(s.frames == 300 for s in plan.samples)


def test_the_sample_count_is_clamped_between_4_and_12() -> None:
    keys = [i * 1.0 for i in range(20000)]
    assert len(plan_samples(200.0, 24.0, keys).samples) == 4
    assert len(plan_samples(6 * 3600.0, 24.0, keys[: 6 * 3600]).samples) == 12


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 20000.0), st.floats(1.0, 120.0), st.floats(0.5, 30.0))
def test_a_plan_is_a_full_pass_or_4_to_12_disjoint_samples_inside_the_file(
    duration: float, fps: float, gop: float
) -> None:
    keys = [i * gop for i in range(int(duration / gop) + 1)]
    plan = plan_samples(duration, fps, keys)
    if plan.full_pass:
        assert plan.samples == ()
        return
    assert 4 <= len(plan.samples) <= 12
    for a, b in zip(plan.samples, plan.samples[1:], strict=False):
        assert b.start >= a.start + 12.0
    assert all(0 <= s.start <= duration - 12.0 for s in plan.samples)


def test_probe_scores_weight_frames_and_keep_the_worst_sample_and_p1() -> None:
    s = score_probe([[96.0] * 100, [90.0] * 100, [99.0] * 200])
    assert s.mean == pytest.approx((96 * 100 + 90 * 100 + 99 * 200) / 400)
    assert s.worst == 90.0
    assert s.p1 == 90.0
    assert s.per_sample == (96.0, 90.0, 99.0)
    assert s.se > 0
    with pytest.raises(ValueError, match="no frame scores"):
        score_probe([])


@pytest.mark.parametrize("n", range(13))
def test_probe_order_visits_every_sample_once_and_starts_far_apart(n: int) -> None:
    order = probe_order(n)
    assert sorted(order) == list(range(n))
    if n >= 2:
        assert order[0] == 0
        assert order[1] >= n // 2  # the second sample from the other half of the file
    assert probe_order(4) == [0, 2, 1, 3]


def test_the_samples_ratio_applies_to_the_videos_share_and_the_copied_rest_stays() -> None:
    # 1000 bytes: 800 of video (8 per frame x 100 frames), 200 of audio
    assert file_percent(0.5, 1000, 80, 10, 100, copies_the_rest=True) == pytest.approx(60.0)
    assert file_percent(0.5, 1000, 80, 10, 100, copies_the_rest=False) == pytest.approx(40.0)
    # samples denser than the file average: the video is at most the whole file
    assert file_percent(0.5, 1000, 200, 10, 100, copies_the_rest=True) == pytest.approx(50.0)
    assert file_percent(0.5, 0, 80, 10, 100, copies_the_rest=True) == pytest.approx(50.0)
    assert file_percent(0.5, 1000, 0, 0, 100, copies_the_rest=True) == pytest.approx(50.0)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.01, 3.0),
    st.integers(1, 10**12),
    st.integers(1, 10**9),
    st.integers(1, 10**6),
    st.floats(1, 10**7),
    st.booleans(),
)
def test_the_predicted_percent_lies_between_the_video_ratio_and_keeping_everything(
    ratio: float, size: int, sampled: int, frames: int, file_frames: float, copies: bool
) -> None:
    percent = file_percent(ratio, size, sampled, frames, file_frames, copies)
    if copies:  # somewhere between the ratio applied to all and the file kept as it is
        assert min(ratio, 1.0) * 100 - 1e-6 <= percent <= max(ratio, 1.0) * 100 + 1e-6
    else:  # never more than the ratio applied to all
        assert 0 <= percent <= ratio * 100 + 1e-6
