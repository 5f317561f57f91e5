"""The `pipecast` command, run as a real subprocess."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

ANY_PORT = "tcp://127.0.0.1:*"

PIPECAST = str(Path(sys.executable).parent / "pipecast")


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPECAST, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_help_documents_the_exit_codes():
    out = run("--help")
    assert out.returncode == 0
    assert "Exit codes" in out.stdout
    assert "4  an endpoint could not be bound" in out.stdout


def test_demo_encodes_a_clip_and_streams_the_pipeline_in_order(tmp_path):
    out = run(
        "demo",
        "--seconds",
        "3",
        "--json",
        "--keep",
        str(tmp_path / "kept"),
        "--status",
        ANY_PORT,  # the demo binds ephemeral ports itself: no pick-then-bind race
        "--sync",
        ANY_PORT,
        "--control",
        ANY_PORT,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["event"] == "reset", lines[0]
    topic = [x for x in lines if x["event"] == "update" and x["topic"] == "stage/encode"]
    seqs = [x["seq"] for x in topic]  # per topic, whatever the key
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    encode = [x for x in topic if x["key"] == "state"]
    library = [x["data"] for x in topic if x["key"] == "library"]
    assert library[-1]["encoded"] == 1
    assert library[-1]["bytes_after"] < library[-1]["bytes_before"]
    progress = [x["data"]["progress"] for x in encode if x["data"]["status"] == "running"]
    assert progress == sorted(progress), progress
    assert len(progress) >= 2, progress
    assert encode[-1]["data"]["status"] == "idle", encode[-1]
    assert encode[-1]["data"]["done"] == 1, encode[-1]
    assert all(not (x["data"]["status"] == "running" and x["data"]["item"] is None) for x in encode)
    assert "encoded sample.mkv" in out.stderr
    assert "verified and committed" in out.stderr
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == [
        "sample.av1.mkv",
        "sample.mkv",
    ]


def test_demo_on_an_endpoint_in_use_exits_4_with_a_clear_message():
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUB)
    s.linger = 0
    s.bind("tcp://127.0.0.1:*")
    try:
        out = run(
            "demo",
            "--status",
            s.get_string(zmq.LAST_ENDPOINT),
            "--sync",
            ANY_PORT,
            "--control",
            ANY_PORT,
        )
    finally:
        s.close()
        ctx.term()
    assert out.returncode == 4
    assert "cannot bind" in out.stderr


def test_bad_arguments_exit_2_and_change_nothing():
    out = run("demo", "--size-mb", "0")
    assert out.returncode == 2
    assert "size-mb" in out.stderr
    out = run("bench", "bus", "--count", "nope")
    assert out.returncode == 2
    for bench, example in (("pipeline", "1280x720"), ("crf", "320x240")):
        out = run("bench", bench, "--size", "12x")  # refused before any clip is made
        assert out.returncode == 2
        assert f"size must be WIDTHxHEIGHT, e.g. {example}" in out.stderr


def test_bench_crf_strategy_compares_the_strategies_on_the_same_simulated_files():
    out = run("bench", "crf-strategy", "--files", "60", "--sigmas", "0.05,1", "--json")
    assert out.returncode == 0, out.stderr
    rows = {(r["strategy"], r["sigma"]): r for r in json.loads(out.stdout)["rows"]}
    strategies = ("ours", "ours, unpaired", "ours, slope known", "ab-av1")
    assert set(rows) == {(s, sigma) for s in strategies for sigma in (0.05, 1.0)}
    for sigma in (0.05, 1.0):
        ours, unpaired, known, ab = (rows[(s, sigma)] for s in strategies)
        assert ours["files"] == 60
        assert known["encodes"] <= ours["encodes"] <= unpaired["encodes"] < ab["encodes"]
        assert ours["probes"] < ab["probes"]
        assert ours["below_target"] == unpaired["below_target"] == known["below_target"] == 0


def test_bench_crf_strategy_refuses_bad_spreads_with_exit_2():
    for sigmas in ("wide", "-1", "0.5,,1"):
        out = run("bench", "crf-strategy", "--sigmas", sigmas)
        assert out.returncode == 2, (sigmas, out.stdout)
        assert "sigma" in out.stderr


def test_bench_supervision_reports_every_crash_as_json():
    out = run("bench", "supervision", "--crashes", "5", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["restarts_seen"] == result["crashes"] == 5
    assert 0 < result["median_ms"] <= result["max_ms"]


def test_bench_watchers_reports_dispatch_churn_and_count_reads_as_json():
    out = run(
        "bench",
        "watchers",
        "--sizes",
        "20",
        "--rounds",
        "3",
        "--churn",
        "200",
        "--json",
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert set(r["dispatch"]["20"]) >= {"hub_p50_ms", "naive_p50_ms", "speedup_p50"}
    assert (r["churn_leftover_watchers"], r["churn_leftover_presence"]) == (0, 0)
    assert r["count_reads_per_second"] > 0


def test_bench_watchers_refuses_bad_sizes_with_exit_2():
    assert run("bench", "watchers", "--sizes", "ten").returncode == 2


def test_bench_network_reports_rate_overhead_and_a_lossless_watcher_as_json():
    out = run("bench", "network", "--invocations", "300", "--repeats", "1", "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["watcher_completed"] == r["invocations"] == 300
    assert r["watcher_gaps"] == 0
    assert 0 < r["overhead_p50_us"] <= r["overhead_p99_us"]
    assert r["pipecast_per_second"] > 0
    assert r["raw_per_second"] > 0


def test_bench_pipeline_reports_the_ratio_against_ffmpeg_run_directly():
    out = run(
        "bench", "pipeline", "--clips", "1", "--seconds", "1", "--size", "320x240",
        "--preset", "12", "--repeats", "1", "--json", timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["raw_seconds"] > 0
    assert r["pipeline_seconds"] > 0
    assert r["ratio"] == pytest.approx(r["pipeline_seconds"] / r["raw_seconds"], rel=0.02)
    assert 0 < r["encode_share"] <= 1
    assert 0 < r["verify_share"] < r["encode_share"]  # the full decode ran, and cost less
    assert r["encode_share"] + r["verify_share"] <= 1.0 + 1e-3
    assert r["node_cpu_seconds"] > 0
    assert r["no_decode_ratio"] > 0


def test_bench_soak_loads_a_node_with_everything_at_once_and_reports_as_json():
    out = run("bench", "soak", "--minutes", "0.1", "--clients", "8", "--json", timeout=180)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["unrecovered_gaps"] == 0
    assert r["pings"] > 0
    assert r["raw_ping_p99_ms"] > 0
    assert r["publications"] > 0
    assert r["hostile_requests"] > 0
    assert r["watcher_joins"] > 0
    assert r["toggles"] > 0
    assert r["errors_by_type"].get("internal", 0) == 0
    assert {"too_large", "bad_request", "unsupported_version"} <= set(r["errors_by_type"])
    assert r["rss_start_mb"] > 0


def test_demo_plain_prints_each_visible_change_once_and_a_summary(tmp_path):
    out = run(
        "demo", "--seconds", "3", "--plain", "--keep", str(tmp_path / "kept"),
        "--status", ANY_PORT, "--sync", ANY_PORT, "--control", ANY_PORT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(a != b for a, b in itertools.pairwise(lines)), lines
    # the plain lines show the state at most --max-fps times a second: a short encode may
    # pass between two of them, but the stage's end is always shown
    assert any(x.startswith("encode: idle") and "done 1" in x for x in lines), lines
    assert any(x.startswith("crf_search: ") and "crf " in x for x in lines), lines
    assert "pipecast demo: done" in out.stdout
    assert f"kept in {tmp_path / 'kept'}" in out.stdout
    assert max(len(x) for x in lines) <= 200  # lines, not a dump of state
