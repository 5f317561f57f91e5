"""`pipecast bench crf`'s summary figures, from rows (no clips made here)."""

from __future__ import annotations

from pipecast.bench._crf import CrfBenchResult, CrfRow


def _row(strategy: str, size_error: float | None, time_error: float | None) -> CrfRow:
    return CrfRow("c.mkv", strategy, "found", 40.0, 2, 7, 95.1, 95.2, 5.0, 70.0,
                  size_error=size_error, time_error=time_error)  # fmt: skip


def test_the_predictions_share_within_their_limits_counts_our_rows_only() -> None:
    result = CrfBenchResult(1920.0, "160x120", 10)
    result.rows.extend([
        _row("ours", -1.1, +3.4),
        _row("ours", -0.7, +16.0),
        _row("ours+history", -12.5, -7.0),
        _row("ours+history", -0.9, None),  # every sample from an untimed cache entry
        _row("ab-av1", None, None),
    ])  # fmt: skip
    within = result.predictions_within()
    assert within["size"] == {"limit": 10.0, "within": 0.75, "worst": -12.5}
    assert within["time"] == {"limit": 15.0, "within": 2 / 3, "worst": +16.0}
    assert result.as_dict()["predictions_within"] == within


def test_no_prediction_at_all_is_none_not_zero() -> None:
    result = CrfBenchResult(64.0, "320x240", 10, [_row("ab-av1", None, None)])
    assert result.predictions_within()["time"] == {"limit": 15.0, "within": None, "worst": None}
