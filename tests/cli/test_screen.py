"""The terminal rendering of displays: countdowns from absolute times, cells in place."""

from __future__ import annotations

from pipecast.cli._screen import describe_run, render
from pipecast.transport import Grid, Single

NOW = 1_000_000.0


def inv(seq: int, state: str = "completed", output: str = "text") -> dict[str, object]:
    return {
        "sequence": seq,
        "model": "m",
        "state": state,
        "output": output,
        "run": 1,
        "input": "in",
    }


def test_countdowns_come_from_the_absolute_times_in_the_run_state() -> None:
    run = {"run": 7, "status": "waiting", "next_at": NOW + 2.5, "ready_at": NOW + 12.2}
    assert describe_run(run, NOW) == "run 7 · waiting · next in 2.5 s · prompts in 12 s"
    assert "next in 1.5 s" in describe_run(run, NOW + 1)
    assert describe_run(run, NOW + 20).endswith("accepting prompts")
    assert describe_run({"run": 7, "status": "idle", "reason": "failed", "error": "boom"}, NOW) == (
        "run 7 · idle · (failed) · error: boom"
    )
    assert describe_run(None, NOW) == "no run yet"


def test_a_grid_puts_each_invocation_in_its_cell_and_shows_images_by_name() -> None:
    shown = [inv(4), None, inv(2, output="/data/images/abcdef0123456789.png"), inv(3, "invoking")]
    lines = render(Grid(2, 2), shown, None, NOW, width=60)
    assert lines[0].startswith("grid:2x2")
    assert lines[1].split(" | ")[0].strip() == "#4 m completed"
    assert lines[1].split(" | ")[1].strip() == "·"
    assert lines[3].split(" | ")[0].strip() == "#2 m completed"
    assert lines[4].split(" | ")[0].strip() == "[image abcdef012345]"
    assert lines[3].split(" | ")[1].strip() == "#3 m invoking"
    assert len(lines) == 5


def test_single_wraps_the_text_of_the_one_invocation() -> None:
    lines = render(
        Single(0, 1), inv(3, output="word " * 30), {"run": 1, "status": "invoking"}, NOW, 40
    )
    assert lines[1] == "#3 m completed"
    assert all(len(line) <= 40 for line in lines)
    assert len(lines) >= 5
    assert render(Single(0, 1), None, None, NOW)[-1] == "(nothing to show yet)"
