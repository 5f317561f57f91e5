"""The dashboard's view model, its --plain lines, and its drawing at every width."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from pipecast.cli.dashboard import (
    MarkerLog,
    PlainLog,
    build_view,
    duration_text,
    plain_lines,
    render,
    stage_line,
)


def stage(status: str = "idle", **detail: Any) -> dict[str, Any]:
    running = status == "running"
    return {
        "status": status,
        "item": {"id": 1, "path": "/lib/show/film.mkv"} if running else None,
        "progress": detail.pop("progress", 0.0),
        "detail": detail,
        "done": 2,
        "failed": 1,
        "skipped": 0,
        "queue": 3,
        "velocity": 1.5,
        "last_error": "boom" if status == "failed" else None,
    }


STATE = {
    "stage/analyze": {"state": stage()},
    "stage/crf_search": {
        "state": stage(
            "running",
            progress=0.5,
            phase="encode",
            crf=31.5,
            eta=75.0,
            probes=[{"crf": 30.0, "mean": 96.2}, {"crf": 34.0, "mean": 94.1}],
        )
    },
    "stage/encode": {
        "state": stage("running", progress=0.25, phase="encoding", fps=163.7, eta=12.0),
        "library": {"encoded": 4, "bytes_before": 4_000_000, "bytes_after": 1_000_000},
    },
    "presence/stage/": {"cli-1": {"host": "a"}, "cli-2": {"host": "b"}},
    "invocation/demo": {
        "run": {"network": "demo", "status": "waiting", "run": 2},
        "7": {"sequence": 0, "model": "paint", "state": "completed", "output": "a.png"},
        "8": {"sequence": 1, "model": "caption", "state": "invoking", "output": None},
    },
    "actor/bridge": {"state": {"status": "running"}},
    "ext/script": {"job": {"step": 3}},
}


def test_the_view_holds_what_a_person_needs_from_each_topic():
    view = build_view(STATE)
    names = [r.name for r in view.stages]
    assert names == ["analyze", "crf_search", "encode"]
    crf = view.stages[1]
    assert (crf.file, crf.crf, crf.probes, crf.eta) == (
        "film.mkv",
        31.5,
        ((30, 96.2), (34, 94.1)),
        75,
    )
    assert view.totals is not None
    assert view.totals.saved == 3_000_000
    assert view.presence == (("stage/", 2),)
    (net,) = view.networks
    assert (net.network, net.run, net.status) == ("demo", 2, "waiting")
    assert net.latest == ("#0 paint completed: a.png", "#1 caption invoking: ")
    assert view.others == (("ext/script", "job", '{"step":3}'),)  # actor/ topics left out


def test_a_stage_line_shows_the_trail_and_says_only_what_a_person_sees():
    view = build_view(STATE)
    line = stage_line(view.stages[1])
    assert line == (
        "crf_search: encode film.mkv  50 %  crf 31.5  probes 30->96.2 34->94.1  eta 1m15s"
        "  queue 3 done 2 failed 1"
    )
    failed = build_view({"stage/encode": {"state": stage("failed")}}).stages[0]
    assert stage_line(failed) == "encode: failed (boom)  queue 3 done 2 failed 1"


def test_plain_lines_are_printed_once_per_visible_change():
    log = PlainLog()
    first = log.changes(build_view(STATE))
    assert len(first) == len(set(first)) == 7
    assert log.changes(build_view(STATE)) == []  # nothing changed: nothing printed
    moved = {
        **STATE,
        "stage/encode": {
            "state": stage("running", progress=0.251, phase="encoding", fps=163.9, eta=12.2)
        },
    }
    assert log.changes(build_view(moved)) == []  # 25 %, 164 fps, 12 s: the same to a person
    further = {
        **STATE,
        "stage/encode": {
            "state": stage("running", progress=0.3, phase="encoding", fps=150.0, eta=10.0)
        },
    }
    (line,) = log.changes(build_view(further))
    assert line.startswith("encode: encoding film.mkv  30 %  150 fps  eta 10 s")


@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["idle", "running", "paused"])), max_size=60
    )
)
def test_plain_never_prints_a_line_twice_in_a_row_and_ends_on_the_truth(steps):
    log = PlainLog()
    printed: list[str] = []
    for progress, status in steps:
        state = {"stage/encode": {"state": stage(status, progress=progress, phase="encoding")}}
        printed += log.changes(build_view(state))
    assert all(a != b for a, b in itertools.pairwise(printed))
    if steps:
        progress, status = steps[-1]
        last = stage_line(
            build_view(
                {"stage/encode": {"state": stage(status, progress=progress, phase="encoding")}}
            ).stages[0]
        )
        assert printed[-1] == last


def test_durations_read_like_a_clock():
    assert [duration_text(s) for s in (None, -1, 0, 59.4, 61, 3599, 3600, 7384)] == [
        "-", "-", "0 s", "59 s", "1m01s", "59m59s", "1h00m", "2h03m",
    ]  # fmt: skip


def draw(width: int, markers: MarkerLog | None = None, stale: bool = False) -> list[str]:
    console = Console(width=width, record=True, color_system=None, force_terminal=True)
    console.print(render(build_view(STATE, markers or (), stale), width))
    return console.export_text().splitlines()


def test_the_dashboard_fits_80_columns_and_shows_bars_counts_and_the_trail():
    lines = draw(80)
    assert max(len(x) for x in lines) <= 80
    text = "\n".join(lines)
    assert "━" in text  # bars
    for expected in (
        "crf_search",
        "encode",
        "3/2/1",
        "1m15s",
        "164",
        "30→96.2 34→94.1",
        "saved 3.0 MB",
        "watching: stage/ 2",
        "demo run 2: waiting",
    ):
        assert expected in text, expected
    assert len(lines) <= 24


def test_a_narrow_terminal_gets_fewer_columns_not_wrapped_rows():
    for width in (40, 50, 60, 70):
        lines = draw(width)
        assert max(len(x) for x in lines) <= width, width
        stage_rows = [x for x in lines if x.startswith(("analyze", "crf_search", "encode "))]
        assert len(stage_rows) == 3, (width, lines)


def test_markers_and_staleness_are_shown():
    markers = MarkerLog(keep=2)
    for i in range(3):
        markers.add(float(i), f"reason=gap topic=stage/encode replayed={i} (recovered)")
    text = "\n".join(draw(80, markers, stale=True))
    assert "STALE" in text
    assert "replayed=0" not in text  # only the latest two are kept
    assert "replayed=2" in text


def test_where_a_node_or_a_relay_listens_reads_as_words() -> None:
    state = {
        "node": {"endpoints": {"status": "tcp://n:1", "sync": "tcp://n:2", "control": "tcp://n:3"}},
        "a/node": {
            "endpoints": {
                "status": "tcp://r:1",
                "control": "tcp://r:3",
                "node_control": "tcp://n:3",
            }
        },
        "relay/actor/control": {"state": {"status": "running"}},
    }
    lines = plain_lines(build_view(state))
    assert lines["node at"] == "node at status tcp://n:1  sync tcp://n:2  control tcp://n:3"
    assert lines["a/node at"].endswith("(a relay; the node's control tcp://n:3)")
    assert not any("relay/actor" in line for line in lines.values())  # with the actors
