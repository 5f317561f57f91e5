"""The media policy and encoder settings: refused when bad, and the arguments they make."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pipecast.actors import (
    EncodeSettings,
    MediaPolicy,
)
from pipecast.transport import BadRequest

AV1 = EncodeSettings()


@pytest.mark.parametrize(
    "kw",
    [
        {"suffix": "av1"},
        {"suffix": ".a/b"},
        {"min_bytes": -1},
        {"max_output_ratio": 0},
        {"stall_timeout": 0},
        {"max_attempts": 0},
        {"replace": "yes"},
    ],
)
def test_a_bad_policy_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        MediaPolicy(**kw)


def test_probe_and_final_arguments_differ_only_in_paths() -> None:  # G2
    a = AV1.args("/lib/a.mkv", "/w/probe.mkv", 31.5)
    b = AV1.args("/lib/b.mkv", "/w/final.mkv", 31.5)
    assert [x for x in a if not x.startswith("/")] == [x for x in b if not x.startswith("/")]


@pytest.mark.parametrize("crf", [31.25, 63.5, 68.0])
def test_svt_av1_gets_fractional_and_high_crfs_through_its_own_params(crf: float) -> None:  # G3 G4
    args = AV1.args("/a.mkv", "/b.mkv", crf)
    assert "-crf" not in args
    assert args[args.index("-svtav1-params") + 1] == f"crf={crf:g}"
    merged = replace(AV1, extra=("-svtav1-params", "tune=0")).args("/a.mkv", "/b.mkv", crf)
    assert merged[merged.index("-svtav1-params") + 1] == f"crf={crf:g}:tune=0"
    assert merged.count("-svtav1-params") == 1
    x264 = EncodeSettings(encoder="libx264").args("/a.mkv", "/b.mkv", 20.25)
    assert x264[x264.index("-crf") + 1] == "20.25"
