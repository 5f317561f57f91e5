"""The CRF search strategy on synthetic VMAF curves: smooth, plateaus, bumps, out of reach."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors.media.crf import (
    MAX_JUMP,
    CrfSearch,
    Outcome,
    ProbeResult,
    SearchResult,
    encoder_model,
    learned_model,
    settled_early,
    u_slope_of,
)
from pipecast.bench import AbAv1Search

Curve = Callable[[float], float]


def u_linear(crossing: float, k: float = 0.13, target: float = 95.0) -> Curve:
    """VMAF = 100 - exp(ln(100 - T) + k (crf - crossing)): crosses T at `crossing`."""
    base = math.log(100 - target)
    return lambda c: 100 - math.exp(base + k * (c - crossing))


def size_at(c: float, percent_at_30: float = 10.0) -> float:
    return percent_at_30 * math.exp(-0.115 * (c - 30))


def run(
    search: CrfSearch | AbAv1Search, curve: Curve, size: Callable[[float], float] = size_at
) -> tuple[SearchResult, list[float]]:
    tried = []
    for _ in range(40):
        crf = search.next_crf()
        if crf is None:
            break
        tried.append(crf)
        v = curve(crf)
        search.feed(ProbeResult(crf, v, v - 1.0, v - 4.0, size(crf), 1.0))
    assert search.result is not None, tried
    return search.result, tried


@pytest.mark.parametrize("crossing", [18.0, 24.3, 30.0, 36.7, 42.0, 51.5])
def test_a_cold_search_finds_the_crossing_in_few_probes(crossing: float) -> None:
    result, tried = run(CrfSearch(), u_linear(crossing))
    assert result.outcome is Outcome.FOUND
    assert result.crf is not None
    assert crossing - 1.0 <= result.crf <= crossing
    assert len(tried) <= 5
    assert len(set(tried)) == len(tried)  # never a CRF twice


def test_a_cold_start_scoring_near_100_jumps_far_but_at_most_max_jump() -> None:
    # the prior's Newton step from VMAF 99.8 at crf 30 asks for ~24 CRF
    curve = u_linear(60.0, k=0.115)
    search = CrfSearch()
    assert search.next_crf() == 30.0
    v = curve(30.0)
    search.feed(ProbeResult(30.0, v, v - 1.0, v - 4.0, size_at(30.0), 1.0))
    assert search.next_crf() == 30.0 + MAX_JUMP
    assert MAX_JUMP > 12  # the design's 12 cut the demo clip's first jump short


def test_the_demo_clips_measured_curve_is_searched_in_three_probes() -> None:
    # `pipecast demo`'s clip (8 s 640x360 testsrc2, svt-av1 preset 8), full-pass
    # VMAF measured at these CRFs; between them ln(100 - VMAF) is interpolated
    measured = {30: 99.122, 40: 96.984, 42: 96.386, 44: 95.781, 45: 95.446, 46: 94.931,
                47: 94.724, 48: 94.254, 50: 93.596}  # fmt: skip
    crfs = sorted(measured)

    def curve(c: float) -> float:
        lo = max(x for x in crfs if x <= c)
        hi = min(x for x in crfs if x >= c)
        t = 0.0 if hi == lo else (c - lo) / (hi - lo)
        a, b = math.log(100 - measured[lo]), math.log(100 - measured[hi])
        return 100 - math.exp(a + t * (b - a))

    result, tried = run(CrfSearch(model=encoder_model("libsvtav1")), curve)
    assert result.outcome is Outcome.FOUND
    assert len(tried) <= 3, tried  # with steps of at most 12: 30, 42, 44.5, 45.5
    assert result.crf is not None
    assert curve(result.crf) >= 95.0


@pytest.mark.parametrize("crossing", [18.0, 24.3, 30.0, 36.7, 42.0, 51.5])
def test_with_history_the_search_needs_at_most_three_probes(crossing: float) -> None:
    result, tried = run(CrfSearch(prior=crossing - 0.6), u_linear(crossing))
    assert result.outcome is Outcome.FOUND
    assert len(tried) <= 3


def test_median_probes_beat_ab_av1_on_the_same_curves() -> None:
    ours, theirs = [], []
    for crossing in [x / 2 for x in range(30, 110, 3)]:
        for k in (0.10, 0.13, 0.16):
            curve = u_linear(crossing, k)
            r1, t1 = run(CrfSearch(), curve)
            _r2, t2 = run(AbAv1Search(), curve)
            assert r1.outcome is Outcome.FOUND
            ours.append(len(t1))
            theirs.append(len(t2))
    assert statistics.median(ours) <= 4
    assert statistics.median(ours) < statistics.median(theirs)
    assert max(ours) <= 6


def test_the_first_probe_comes_from_the_prior_not_a_midpoint() -> None:
    assert CrfSearch().next_crf() == 30.0  # svt-av1 cold start
    assert CrfSearch(prior=27.1).next_crf() == 27.0  # rounded to the 0.25 step
    assert CrfSearch(model=encoder_model("libx264")).next_crf() == 20.0
    assert AbAv1Search().next_crf() == 37.5  # the anchor's blind midpoint


def test_a_plateau_below_the_target_is_metric_saturated_within_six_probes() -> None:
    result, tried = run(CrfSearch(), lambda c: 93.0 + 0.001 * (40 - c))
    assert result.outcome is Outcome.SATURATED
    assert len(tried) <= 6


def test_an_unreachable_target_says_so_within_six_probes() -> None:
    tiny = lambda c: 1.0  # noqa: E731 - size is no object: only quality is out of reach
    result, tried = run(CrfSearch(), lambda c: 90.0 - 0.3 * c, size=tiny)  # below 95 everywhere
    assert result.outcome in (Outcome.UNREACHABLE, Outcome.SATURATED)
    assert len(tried) <= 6


def test_an_unreachable_target_at_c_min_is_unreachable_quality() -> None:
    result, tried = run(CrfSearch(prior=6.0), lambda c: 80.0 - (c - 5.0), size=lambda c: 1.0)
    assert result.outcome is Outcome.UNREACHABLE
    assert 5.0 in tried


def test_quality_out_of_reach_within_the_size_cap_is_not_beneficial() -> None:
    result, tried = run(CrfSearch(prior=6.0), lambda c: 80.0 - (c - 5.0))
    assert result.outcome is Outcome.NOT_BENEFICIAL
    assert len(tried) == 1  # lower CRFs only grow: no probe spent on them


def test_quality_that_needs_more_than_the_size_cap_is_not_beneficial() -> None:
    result, _ = run(CrfSearch(), u_linear(20.0), size=lambda c: 95.0 * math.exp(-0.115 * (c - 20)))
    assert result.outcome is Outcome.NOT_BENEFICIAL


def test_a_bumpy_curve_still_ends_with_a_probed_passing_crf() -> None:
    curve = u_linear(33.0)
    bumpy = lambda c: curve(c) + 0.8 * math.sin(3 * c)  # noqa: E731
    result, tried = run(CrfSearch(), bumpy)
    assert len(tried) <= 6
    if result.outcome is Outcome.FOUND:
        assert result.crf in tried
        assert result.probe is not None
        assert result.probe.mean >= 95.0


def test_the_worst_sample_guard_refuses_a_mean_that_hides_a_bad_sample() -> None:
    s = CrfSearch()
    good_mean_bad_sample = ProbeResult(30.0, 95.5, 91.0, 90.0, 30.0)
    assert not s.passes(good_mean_bad_sample)
    assert CrfSearch(worst_margin=None).passes(good_mean_bad_sample)
    assert not s.passes(ProbeResult(30.0, 95.5, 94.0, 87.0, 30.0))  # p1 guard


def test_a_sample_failure_ends_the_search_with_its_outcome() -> None:
    s = CrfSearch()
    s.next_crf()
    s.failed_sample("frame counts differ")
    assert s.result is not None
    assert s.result.outcome is Outcome.SAMPLE_FAILURE
    assert s.next_crf() is None


@settings(max_examples=300, deadline=None)
@given(
    st.floats(8.0, 65.0),
    st.floats(0.05, 0.3),
    st.floats(-1.5, 1.5),
    st.floats(10.0, 90.0),
    st.one_of(st.none(), st.floats(5.0, 70.0)),
)
def test_any_curve_ends_within_the_cap_without_repeats_and_inside_the_range(
    crossing: float, k: float, wobble: float, size30: float, prior: float | None
) -> None:
    base = u_linear(crossing, k)
    curve = lambda c: base(c) + wobble * math.sin(c)  # noqa: E731
    search = CrfSearch(prior=prior)
    result, tried = run(search, curve, size=lambda c: size_at(c, size30))
    assert len(tried) <= search.max_probes
    assert len(set(tried)) == len(tried)
    assert all(5.0 <= c <= 70.0 for c in tried)
    assert all(abs(c / 0.25 - round(c / 0.25)) < 1e-9 for c in tried)
    if result.outcome is Outcome.FOUND:
        assert result.crf in tried
        assert result.probe is not None
        assert search.passes(result.probe)
        assert result.probe.percent <= search.max_percent


def test_a_pass_over_the_size_cap_keeps_searching_at_higher_crfs() -> None:
    # passes up to crf 40; only above crf 34 is the size under the cap
    result, tried = run(
        CrfSearch(), u_linear(40.0), size=lambda c: 80.0 * math.exp(-0.115 * (c - 34))
    )
    assert result.outcome is Outcome.FOUND
    assert result.crf is not None
    assert result.crf > 34.0
    assert tried[0] == 30.0


# -- probes settled early on part of their samples (docs/crf_search.md) -------------


@pytest.mark.parametrize(
    ("means", "settled"),
    [
        ([], False),
        ([99.0], False),  # one sample says little
        ([98.0, 98.2], True),  # both 3 above, close together
        ([92.0, 91.8, 92.1], True),  # clearly below
        ([96.0, 96.2], False),  # within 1.5 of the target
        ([97.0, 94.5], False),  # on both sides
        ([99.5, 96.6], False),  # far on average, but 3 SE is wider than the distance
    ],
)
def test_a_probe_is_settled_early_only_when_its_samples_agree_far_from_the_target(
    means: list[float], settled: bool
) -> None:
    assert settled_early(means, 95.0) is settled


def run_settling(
    search: CrfSearch, per_sample: Callable[[float], list[float]]
) -> tuple[SearchResult, list[tuple[float, bool]]]:
    """Feed each probe partial (2 of its samples) whenever those two already settle it."""
    asked: list[tuple[float, bool]] = []
    for _ in range(40):
        crf = search.next_crf()
        if crf is None:
            break
        asked.append((crf, search.completing))
        means = per_sample(crf)
        partial = not search.completing and settled_early(means[:2], search.target)
        used = means[:2] if partial else means
        mean = sum(used) / len(used)
        search.feed(ProbeResult(crf, mean, min(used), mean - 4, size_at(crf), 1.0, not partial))
    assert search.result is not None, asked
    return search.result, asked


def test_a_far_probe_settled_on_two_samples_still_places_the_next_one() -> None:
    curve = u_linear(40.0)
    result, asked = run_settling(CrfSearch(), lambda c: [curve(c)] * 4)
    first = asked[0][0]
    assert first == 30.0
    assert curve(first) - 95.0 > 1.5  # so it was settled early
    assert result.outcome is Outcome.FOUND
    assert result.probe is not None
    assert result.probe.complete
    assert 39.0 <= result.crf <= 40.0  # type: ignore[operator]
    assert len(asked) <= 4


def test_a_partial_pass_is_completed_before_it_can_be_the_answer() -> None:
    # passes by far at 30 on its first two samples; its other two are bad, and
    # everything above 30 fails: the answer would be the partial probe
    def per_sample(c: float) -> list[float]:
        return [98.0, 98.0, 91.0, 90.0] if c <= 30 else [93.0, 93.0, 93.0, 93.0]

    search = CrfSearch(max_probes=3)
    result, asked = run_settling(search, per_sample)
    completions = [c for c, completing in asked if completing]
    assert 30.0 in completions
    assert all(p.complete for p in search.probes if p.crf == 30.0)
    # complete, crf 30 fails the worst-sample guard: it is not the answer
    assert result.crf != 30.0
    if result.probe is not None:
        assert result.probe.complete


def test_a_skip_for_size_is_never_decided_on_partial_sizes() -> None:
    search = CrfSearch(prior=6.0)
    search.next_crf()
    search.feed(ProbeResult(6.0, 80.0, 80.0, 76.0, 120.0, 1.0, complete=False))
    assert search.next_crf() == 6.0
    assert search.completing
    with pytest.raises(ValueError, match="complete"):
        search.feed(ProbeResult(6.0, 80.0, 80.0, 76.0, 120.0, 1.0, complete=False))
    search.feed(ProbeResult(6.0, 80.0, 80.0, 76.0, 120.0, 1.0))
    assert search.next_crf() is None
    assert search.result is not None
    assert search.result.outcome is Outcome.NOT_BENEFICIAL


@settings(max_examples=300, deadline=None)
@given(
    st.floats(8.0, 65.0),
    st.floats(0.05, 0.3),
    st.lists(st.floats(-4.0, 4.0), min_size=4, max_size=4),
    st.one_of(st.none(), st.floats(5.0, 70.0)),
)
def test_with_early_settling_every_answer_rests_on_every_sample(
    crossing: float, k: float, offsets: list[float], prior: float | None
) -> None:
    base = u_linear(crossing, k)
    search = CrfSearch(prior=prior)
    result, asked = run_settling(search, lambda c: [base(c) + o for o in offsets])
    crfs = [c for c, completing in asked if not completing]
    assert len(set(crfs)) == len(crfs)  # a CRF is named twice only to complete it
    assert len(crfs) <= search.max_probes
    assert all(c in crfs for c, completing in asked if completing)
    if result.probe is not None:
        assert result.probe.complete
    if result.outcome is Outcome.FOUND:
        assert search.passes(result.probe)  # type: ignore[arg-type]


def test_the_fitted_u_slope_is_the_curves_and_needs_two_crfs_far_enough_apart() -> None:
    curve = u_linear(34.0, k=0.105)
    points = [(c, curve(c)) for c in (30.0, 33.5, 34.0)]
    slope = u_slope_of(points)
    assert slope == pytest.approx(0.105)
    assert u_slope_of(points[:1]) is None
    assert u_slope_of([(30.0, 96.0), (30.0, 97.0)]) is None
    assert u_slope_of(points[1:], min_span=1.0) is None  # 0.5 CRF apart: too noisy to learn
    assert u_slope_of(points, min_span=1.0) == pytest.approx(0.105)


def test_the_learned_slope_is_the_median_of_earlier_searches_within_bounds() -> None:
    prior = encoder_model("libsvtav1")
    assert learned_model(prior, []) == prior
    assert learned_model(prior, [0.0, -0.1, math.nan, math.inf]) == prior
    assert learned_model(prior, [0.10, 0.116, 0.5]).u_slope == pytest.approx(0.116)
    assert learned_model(prior, [0.001]).u_slope == pytest.approx(0.5 * prior.u_slope)
    assert learned_model(prior, [9.0]).u_slope == pytest.approx(2 * prior.u_slope)
    assert learned_model(prior, [0.11]).cold_start == prior.cold_start  # only the slope


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=30))
def test_a_learned_slope_never_leaves_half_to_twice_the_prior(slopes: list[float]) -> None:
    prior = encoder_model("libsvtav1")
    k = learned_model(prior, slopes).u_slope
    assert 0.5 * prior.u_slope <= k <= 2 * prior.u_slope


CROSSINGS = [c / 10 for c in range(200, 500, 3)]


@pytest.mark.parametrize("k", [0.09, 0.105, 0.16])
def test_a_slope_learned_from_files_like_it_saves_probes_over_the_prior(
    k: float,
) -> None:  # docs/crf_search.md, the learned slope
    model = learned_model(encoder_model("libsvtav1"), [k])
    prior, learned = [], []
    for crossing in CROSSINGS:
        curve = u_linear(crossing, k=k)
        prior.append(len(run(CrfSearch(), curve)[1]))
        result, tried = run(CrfSearch(model=model), curve)
        assert result.crf is not None
        assert crossing - 1.0 <= result.crf <= crossing
        learned.append(len(tried))
    assert statistics.mean(learned) < statistics.mean(prior) - 0.4
    assert max(learned) <= 3


def test_steps_aim_inside_the_window_that_stops_the_search() -> None:
    # aimed at target + 0.15, the middle of "a pass within 0.3 VMAF": with the
    # curve's own slope a cold search mostly ends on its second probe
    k = encoder_model("libsvtav1").u_slope
    counts = [len(run(CrfSearch(), u_linear(crossing, k))[1]) for crossing in CROSSINGS]
    assert statistics.mean(counts) < 2.4
    assert max(counts) <= 3
