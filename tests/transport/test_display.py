"""Display modes against a straightforward reference model (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.transport import BadRequest, Grid, InvocationView, Single, parse_display

STATES = ["invoking", "completed", "failed"]


def reference(mode, run, invocations):
    """What the display should show, from the final state of each invocation of `run`."""
    mine = {k: v for k, v in invocations.items() if v["run"] == run}
    if isinstance(mode, Grid):
        cells = []
        for i in range(mode.cells):
            here = [v for v in mine.values() if v["sequence"] % mode.cells == i]
            cells.append(max(here, key=lambda v: v["sequence"]) if here else None)
        return cells
    eligible = [
        v
        for v in mine.values()
        if v["sequence"] == 0
        or (
            v["sequence"] % mode.stride == mode.offset
            and (mode.show_invoking or v["state"] != "invoking")
        )
    ]
    return max(eligible, key=lambda v: v["sequence"]) if eligible else None


modes = st.one_of(
    st.builds(Grid, st.integers(1, 3), st.integers(1, 3)),
    st.integers(1, 4).flatmap(
        lambda stride: st.builds(Single, st.integers(0, stride - 1), st.just(stride), st.booleans())
    ),
)


def run_updates(run: str, length: int, draw_states):
    """Updates of one run in the order a runner makes them."""
    out = []
    for seq in range(length):
        key = f"{run}-{seq}"
        out.append((key, {"id": key, "run": run, "sequence": seq, "state": "invoking"}))
        final = draw_states[seq % len(draw_states)]
        if final != "invoking":
            out.append((key, {"id": key, "run": run, "sequence": seq, "state": final}))
    return out


@given(
    mode=modes,
    length=st.integers(1, 14),
    states=st.lists(st.sampled_from(STATES), min_size=1, max_size=5),
    cut=st.integers(0, 40),
)
def test_the_view_equals_the_reference_after_every_update(mode, length, states, cut):
    view = InvocationView(mode)
    applied: dict[str, dict] = {}
    for key, value in run_updates("r1", length, states):
        view.apply(key, value)
        applied[key] = value
        assert view.shown() == reference(mode, "r1", applied)


@given(
    mode=modes,
    length=st.integers(1, 14),
    states=st.lists(st.sampled_from(STATES), min_size=1, max_size=5),
    cut=st.integers(1, 30),
)
def test_a_mid_run_joiner_built_from_the_snapshot_shows_what_a_live_watcher_shows(
    mode, length, states, cut
):
    updates = run_updates("r1", length, states)
    live, state = InvocationView(mode), {}
    for key, value in updates[:cut]:
        live.apply(key, value)
        state[key] = value
    joiner = InvocationView(mode)
    joiner.reset(dict(state))
    assert joiner.shown() == live.shown()
    for key, value in updates[cut:]:
        live.apply(key, value)
        joiner.apply(key, value)
        assert joiner.shown() == live.shown()


@given(mode=modes, a=st.integers(1, 8), b=st.integers(1, 8), data=st.data())
def test_interleaved_runs_are_isolated_and_a_genesis_resets_the_view(mode, a, b, data):
    old = run_updates("old", a, ["completed"])
    new = run_updates("new", b, ["completed"])
    view = InvocationView(mode)
    for key, value in old:
        view.apply(key, value)
    # the new run starts; stragglers of the old run keep arriving, interleaved
    merged = [new[0]]
    rest_old, rest_new = list(old), new[1:]
    while rest_old or rest_new:
        pick_old = rest_old and (not rest_new or data.draw(st.booleans()))
        merged.append(rest_old.pop(0) if pick_old else rest_new.pop(0))
    applied = {}
    for key, value in merged:
        view.apply(key, value)
        if value["run"] == "new":
            applied[key] = value
        assert view.shown() == reference(mode, "new", applied)
        assert view.run == "new"


def test_single_always_shows_the_genesis_even_when_it_does_not_match_the_stride():
    view = InvocationView(Single(offset=1, stride=3))
    view.apply("g", {"run": "g", "sequence": 0, "state": "invoking"})
    assert view.single()["sequence"] == 0
    view.apply("x", {"run": "g", "sequence": 1, "state": "invoking"})
    assert view.single()["sequence"] == 0  # invoking hidden
    view.apply("x", {"run": "g", "sequence": 1, "state": "completed"})
    assert view.single()["sequence"] == 1


def test_updates_that_are_not_invocations_change_nothing():
    view = InvocationView(Grid(1, 2))
    assert not view.apply("run", {"status": "running", "ready_at": 3.0})
    assert view.grid() == [None, None]


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("grid:2x3", Grid(2, 3)),
        ("single:0:1", Single(0, 1)),
        ("single:2:5:invoking", Single(2, 5, True)),
    ],
)
def test_display_specs_parse(text, mode):
    assert parse_display(text) == mode
    assert str(mode) == text


@pytest.mark.parametrize(
    "text",
    [
        "grid:0x3",
        "grid:2x",
        "single:3:3",
        "single:1:0",
        "single:-1:2",
        "tiles:3",
        "single:0:1:sometimes",
        "",
    ],
)
def test_bad_display_specs_are_refused_with_bad_request(text):
    with pytest.raises(BadRequest):
        parse_display(text)
