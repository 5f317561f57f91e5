"""`pipecast run/stop-run/networks/invocations` and `watch --display` against a real node."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from pipecast.testing import PIPECAST, NodeProcess, wait_for


@pytest.fixture
def running(tmp_path: Path):
    config = tmp_path / "node.toml"
    config.write_text(
        textwrap.dedent(
            """
            [[networks]]
            name = "demo"
            models = ["paint", "caption", "remix"]
            lockout = 30
            pace = [{ delay = 0.05 }]
            max_invocations = 8

            [[networks]]
            name = "slow"
            models = ["echo"]
            lockout = 0
            pace = [{ delay = 60 }]

            [[networks]]
            name = "locked"
            models = ["echo"]
            lockout = 30
            pace = [{ delay = 60 }]
            """
        )
    )
    node = NodeProcess(tmp_path / "data", "--config", str(config))
    yield node
    node.close()


def test_a_run_is_started_watched_on_a_grid_and_listed(running: NodeProcess) -> None:
    watcher = subprocess.Popen(
        [
            PIPECAST,
            "watch",
            "--control",
            running.control,
            "--status",
            running.status,
            "--sync",
            running.sync,
            "--data-dir",
            str(running.data_dir),
            "invocation/demo",
            "--display",
            "grid:2x2",
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())  # the join
        assert first["display"] == "grid:2x2"
        assert first["shown"] == [None, None, None, None]
        out = running.run("run", "demo", "a lantern over the harbour", "--json")
        assert out.returncode == 0, out.stderr
        genesis = json.loads(out.stdout)
        frames = []
        for line in watcher.stdout:
            frames.append(json.loads(line))
            if (frames[-1]["run"] or {}).get("reason") == "max_invocations":
                break
    finally:
        watcher.kill()
        watcher.communicate()
    last = frames[-1]
    # 8 invocations on a ring of 4 cells: seq 4..7 in cells 0..3
    assert [c["sequence"] for c in last["shown"]] == [4, 5, 6, 7]
    assert {c["run"] for c in last["shown"]} == {genesis["id"]}
    assert [c["model"] for c in last["shown"]] == ["caption", "remix", "paint", "caption"]
    assert all(c["state"] == "completed" for c in last["shown"])
    listing = json.loads(running.run("invocations", "demo", "--json").stdout)
    assert [i["sequence"] for i in listing["invocations"]] == list(range(8))
    text = running.run("invocations", "demo", "--limit", "2").stdout
    assert "#6" in text
    assert "#7" in text
    assert "#5" not in text
    nets = json.loads(running.run("networks", "--json").stdout)
    assert nets["demo"]["state"]["reason"] == "max_invocations"
    assert nets["slow"]["models"] == ["echo"]


def test_a_prompt_in_the_lockout_exits_1_with_when_it_is_accepted(running: NodeProcess) -> None:
    # a run that is still going (60 s pace): the lockout applies only to an active run,
    # and the 8-invocation demo run could end before the second CLI process starts
    assert running.run("run", "locked", "first").returncode == 0
    out = running.run("run", "locked", "second")
    assert out.returncode == 1
    assert "locked_out" in out.stderr
    assert "prompts are accepted again at" in out.stderr


def test_stop_run_ends_the_run_and_says_so_when_there_is_none(running: NodeProcess) -> None:
    out = running.run("run", "slow", "p")
    assert out.stdout.startswith("run ")
    assert wait_for(
        lambda: (
            json.loads(running.run("networks", "--json").stdout)["slow"]["state"]["status"]
            == "waiting"
        ),
        10,
    )
    assert running.run("stop-run", "slow").stdout.startswith("stopped run")
    none = running.run("stop-run", "slow")
    assert none.returncode == 1  # nothing to do is said, and is not success
    assert "slow had no run going" in none.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("run", "nope", "p"),
        ("run", "demo", ""),
        ("stop-run", "nope"),
        ("invocations", "demo", "--run", "0"),
        ("invocations", "demo", "--run", "7"),  # no such run: said, not an empty list
        ("invocations", "demo", "--limit", "0"),
        ("watch", "invocation/demo", "--display", "grid:0x2"),
        ("watch", "invocation/demo", "--display", "single:3:2"),
        ("watch", "stage/", "--display", "grid:1x1"),
    ],
)
def test_bad_network_arguments_exit_2_and_change_nothing(
    running: NodeProcess, args: tuple[str, ...]
) -> None:
    out = running.run(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert json.loads(running.run("invocations", "demo", "--json").stdout)["run"] is None
