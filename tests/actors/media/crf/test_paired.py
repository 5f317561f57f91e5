"""A partial probe paired with a complete one at another CRF. Pure."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors.media.crf import (
    PairedEstimate,
    SampleScore,
    may_stop,
    nearest_complete,
    paired_estimate,
    settled_paired,
)


def _moved(vmaf: float, step: float) -> float:
    return 100.0 - (100.0 - vmaf) * math.exp(step)


REFERENCE = {
    0: SampleScore(96.0, 300, 10_000),
    1: SampleScore(92.0, 200, 30_000),
    2: SampleScore(98.0, 300, 5_000),
    3: SampleScore(94.0, 250, 20_000),
}


def test_samples_that_move_alike_give_the_whole_probe_from_two_of_them() -> None:
    step = 0.12  # one CRF up, in ln(100 - VMAF)
    scored = {i: SampleScore(_moved(REFERENCE[i].mean, step), 1, 0) for i in (0, 2)}
    est = paired_estimate(scored, REFERENCE, 30.0)
    assert est is not None
    frames = sum(s.frames for s in REFERENCE.values())
    truth = sum(_moved(s.mean, step) * s.frames for s in REFERENCE.values()) / frames
    assert est.mean == pytest.approx(truth, abs=1e-3)
    # the plain mean of the two scored samples misses by more than a VMAF
    plain = sum(s.mean for s in scored.values()) / 2
    assert abs(plain - truth) > 1.0
    assert est.worst == pytest.approx(_moved(92.0, step), abs=1e-3)
    assert est.scored == 2
    assert est.reference == 30.0


def test_sizes_move_by_the_scored_samples_ratio() -> None:
    scored = {i: SampleScore(REFERENCE[i].mean - 1, 1, REFERENCE[i].size // 2) for i in (1, 3)}
    est = paired_estimate(scored, REFERENCE, 30.0)
    assert est is not None
    assert est.size == pytest.approx(sum(s.size for s in REFERENCE.values()) / 2)


def test_no_estimate_from_one_sample_or_a_sample_the_reference_lacks() -> None:
    one = {0: SampleScore(95.0, 300, 1)}
    assert paired_estimate(one, REFERENCE) is None
    stranger = {0: SampleScore(95.0, 300, 1), 7: SampleScore(95.0, 300, 1)}
    assert paired_estimate(stranger, REFERENCE) is None


def test_steps_that_disagree_widen_the_standard_error() -> None:
    alike = {0: SampleScore(_moved(96.0, 0.1), 1, 1), 2: SampleScore(_moved(98.0, 0.1), 1, 1)}
    apart = {0: SampleScore(_moved(96.0, 0.0), 1, 1), 2: SampleScore(_moved(98.0, 0.2), 1, 1)}
    a, b = paired_estimate(alike, REFERENCE), paired_estimate(apart, REFERENCE)
    assert a is not None
    assert b is not None
    assert b.se > 2 * a.se > 0  # the floor keeps agreeing samples' se above zero


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(60.0, 99.5), min_size=3, max_size=12),
    st.floats(-0.6, 0.6),
    st.data(),
)
def test_the_estimate_of_a_uniform_step_is_exact_and_scored_samples_keep_their_scores(
    means: list[float], step: float, data: st.DataObject
) -> None:
    reference = {i: SampleScore(m, 100 + i, 1000 + i) for i, m in enumerate(means)}
    picked = data.draw(st.sets(st.sampled_from(sorted(reference)), min_size=2))
    scored = {i: SampleScore(_moved(reference[i].mean, step), 1, 1) for i in picked}
    est = paired_estimate(scored, reference)
    assert est is not None
    frames = sum(s.frames for s in reference.values())
    truth = sum(_moved(s.mean, step) * s.frames for s in reference.values()) / frames
    assert est.mean == pytest.approx(truth, abs=2e-3)
    assert est.worst == pytest.approx(min(_moved(m, step) for m in means), abs=2e-3)
    if len(picked) == len(means):
        assert est.se == 0.0  # nothing left to guess


def _estimate_at(mean: float, se: float) -> PairedEstimate:
    scored = {0: SampleScore(mean, 1, 1), 1: SampleScore(mean, 1, 1)}
    reference = {i: SampleScore(mean, 1, 1) for i in range(3)}
    est = paired_estimate(scored, reference)
    assert est is not None
    return replace(est, se=se)


@pytest.mark.parametrize(
    ("mean", "se", "settled"),
    [
        (96.0, 0.1, True),  # a pass clear of the window
        (95.35, 0.1, False),  # above the window, but not by three SE
        (95.2, 0.0, False),  # inside the window: may be the answer, score it all
        (94.9, 0.03, True),  # a fail by more than three SE
        (94.9, 0.05, False),
    ],
)
def test_a_paired_probe_settles_below_the_target_or_above_the_window(
    mean: float, se: float, settled: bool
) -> None:
    assert settled_paired(_estimate_at(mean, se), 95.0) is settled


def test_without_a_complete_probe_the_scored_samples_decide_alone() -> None:
    far = {0: SampleScore(98.5, 1, 1), 1: SampleScore(98.6, 1, 1)}
    assert may_stop(far, None, 95.0) == (True, None)
    near = {0: SampleScore(95.7, 1, 1), 1: SampleScore(95.8, 1, 1)}
    assert may_stop(near, None, 95.0) == (False, None)
    # paired with a complete probe one CRF away, the same near samples do settle
    reference = {i: SampleScore(96.1, 1, 1) for i in range(5)}
    stop, est = may_stop(near, (39.0, reference), 95.0)
    assert stop
    assert est is not None
    assert est.reference == 39.0


def test_the_reference_is_the_nearest_complete_probe_at_another_crf() -> None:
    full = {i: SampleScore(95.0, 1, 1) for i in range(4)}
    partial = {0: SampleScore(95.0, 1, 1)}
    probes = {30.0: full, 36.0: partial, 38.0: full, 40.0: full}
    assert nearest_complete(probes, 37.0, 4) == 38.0
    assert nearest_complete(probes, 36.0, 4) == 38.0
    assert nearest_complete(probes, 40.0, 4) == 38.0
    assert nearest_complete(probes, 39.0, 4) == 38.0  # ties go to the lower CRF
    assert nearest_complete({36.0: partial}, 37.0, 4) is None
