"""What a CRF search reports: its stored summary and its live detail (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.actors.media.crf import (
    Outcome,
    ProbeRecord,
    ProbeResult,
    SearchEta,
    SearchFacts,
    SearchResult,
    SearchTotals,
    live_detail,
    search_progress,
    search_summary,
)
from pipecast.actors.runtime import StageStatistics

FACTS = SearchFacts(
    target=95.0,
    sample_encodes=7,
    settled=1,
    encoder="abcd",
    model_u_slope=0.115,
    learned_from=0,
    samples=4,
    seconds=5.0404,
    source_size=10_000_000,
    duration=1920.0,
    sampled_seconds=48.0,
)


def _record(crf: float, mean: float) -> ProbeRecord:
    return ProbeRecord(crf, mean, worst=mean - 1, p1=mean - 4, percent=20.0, seconds=0.0,
                       complete=True, se=0.1, samples=(mean,) * 4, cached=False,
                       paired_with=None)  # fmt: skip


def test_a_found_search_predicts_vmaf_size_and_the_whole_files_encode_time() -> None:
    probe = ProbeResult(38.0, 95.2, 94.1, 90.3, 21.5, seconds=1.5)
    result = SearchResult(Outcome.FOUND, 38.0, probe, 2, "within 0.3 VMAF of the target")
    out = search_summary(result, [_record(30, 97.5), _record(38, 95.2)], FACTS)
    assert out["outcome"] == "found"
    assert (out["probes"], out["sample_encodes"], out["settled_early"]) == (2, 7, 1)
    assert (out["predicted_vmaf"], out["worst_sample"], out["p1"]) == (95.2, 94.1, 90.3)
    assert out["predicted_size"] == 2_150_000
    assert out["predicted_seconds"] == pytest.approx(1.5 * 1920 / 48)  # 48 s of 1920 sampled
    assert out["seconds"] == 5.04
    assert out["samples"] == 4
    # ln(100 - VMAF) fell from ln 2.5 to ln 4.8 over 8 CRF
    assert out["u_slope"] == pytest.approx(0.08154, abs=1e-5)


def test_a_summary_without_a_chosen_probe_predicts_nothing() -> None:
    result = SearchResult(Outcome.UNREACHABLE, None, None, 1, "even crf 5 misses VMAF 95")
    out = search_summary(result, [_record(5, 90.0)], FACTS)
    assert "predicted_vmaf" not in out
    assert out["u_slope"] is None  # one CRF: no slope


def test_an_untimed_probe_has_no_predicted_time_and_a_full_pass_says_so() -> None:
    probe = ProbeResult(38.0, 95.2, 94.1, 90.3, 21.5, seconds=0.0)
    result = SearchResult(Outcome.FOUND, 38.0, probe, 1, "from the cache")
    out = search_summary(result, [_record(38, 95.2)], replace(FACTS, samples=None))
    assert out["predicted_seconds"] is None
    assert out["samples"] == "full"


def test_the_live_detail_names_the_probe_the_crf_and_what_runs() -> None:
    detail = live_detail([_record(30, 97.5)], [("encode+score", 2), ("cut", 3)], 4, 36.5, 2.0)
    assert detail["phase"] == "encode+score"
    assert (detail["probe"], detail["crf"], detail["sample"]) == (2, 36.5, "3/4")
    assert detail["running"] == ["encode+score 3/4", "cut 4/4"]
    assert detail["probes"] == [
        {"crf": 30, "mean": 97.5, "worst": 96.5, "p1": 93.5, "percent": 20.0, "complete": True}
    ]
    assert live_detail([], [], 1, None, None)["phase"] == "planning"


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 60)), min_size=1, max_size=30))
def test_progress_never_goes_back_nor_reaches_one(steps: list[tuple[int, int]]) -> None:
    progress = 0.0
    for done, expected in steps:
        now = search_progress(done, expected, progress)
        assert progress <= now <= 0.99
        progress = now


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0.01, 30), st.booleans(), st.integers(0, 40)),
        max_size=60,
    )
)
def test_the_eta_never_rises_within_a_probe_and_is_never_negative(
    steps: list[tuple[int, float, bool, int]],
) -> None:
    eta, probe, elapsed, done = SearchEta(), 0, 0.0, 0
    last: float | None = None
    for new_probe, dt, ended, left in steps:
        elapsed += dt
        if ended:
            done += 1
            eta.task_ended(done, elapsed)
        if new_probe == 3:  # a quarter of the steps begin a new probe
            probe += 1
            last = None
        now = eta.eta(probe, left, elapsed)
        if now is not None:
            assert now >= 0
            if last is not None:
                assert now <= last
            last = now


def test_the_eta_counts_down_at_a_steady_pace_and_starts_once_a_task_has_ended() -> None:
    eta = SearchEta()
    assert eta.eta(0, 8, 1.0) is None  # no pace yet
    eta.task_ended(1, 2.0)  # 2 s a task
    assert eta.eta(0, 8, 2.0) == 16.0
    assert eta.eta(0, 8, 3.0) == 15.0  # counts down between ends
    eta.task_ended(2, 6.0)  # slower: 3 s a task; 7 left is 21 s, more than 12 s
    assert eta.eta(0, 7, 6.0) == 15.0  # it does not rise within the probe
    assert eta.eta(1, 7, 6.0) == 21.0  # a new probe: the new pace


STAGE = StageStatistics(steps=10, items_ended=3, busy_seconds=1.5, mean_step_ms=150.0)


def test_totals_add_up_every_search_however_it_ended() -> None:
    totals = SearchTotals()
    assert totals.statistics(STAGE).probes_per_search is None
    totals.add("found", probes=2, sample_encodes=7, cache_hits=0, settled=1)
    totals.add("found", probes=1, sample_encodes=0, cache_hits=4, settled=0)
    totals.add("cancelled", probes=0, sample_encodes=1, cache_hits=0, settled=0)
    out = totals.statistics(STAGE)
    assert (out.searches, out.outcomes) == (3, {"found": 2, "cancelled": 1})
    assert (out.probes, out.sample_encodes, out.cache_hits) == (3, 8, 4)
    assert out.probes_per_search == 1.0
    assert out.cache_hit_ratio == round(4 / 12, 3)
    assert (out.steps, out.items_ended, out.mean_step_ms) == (10, 3, 150.0)  # the stage's own
    out.outcomes["found"] = 99  # a copy: the caller cannot change the totals
    assert totals.outcomes["found"] == 2
