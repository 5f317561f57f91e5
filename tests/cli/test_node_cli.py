"""`pipecast start` and its client commands against a real node in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipecast.testing import PIPECAST, NodeProcess, free_endpoint, start_test_node, wait_for


class RunningNode(NodeProcess):
    def __init__(self, tmp_path: Path, *extra: str) -> None:
        super().__init__(tmp_path / "data", *extra)


@pytest.fixture
def running(tmp_path):
    node = RunningNode(tmp_path)
    yield node
    node.close()


def test_ping_status_toggle_publish_and_watch_against_a_real_node(running, tmp_path):
    assert "pong from epoch" in running.run("ping").stdout
    status = json.loads(running.run("status", "--json").stdout)
    assert "stage/encode" in status["topics"]
    out = running.run("toggle", "encode")
    assert out.stdout.strip() == "encode: paused"
    out = running.run("toggle", "encode", "--json")
    assert json.loads(out.stdout)["status"] == "idle"
    out = running.run("publish", "ext/script", "job", '{"step": 1}')
    assert out.stdout.strip() == "ext/script seq 1"
    status = json.loads(running.run("status", "--json", "--prefix", "ext/").stdout)
    assert status["topics"] == {"ext/script": {"job": {"step": 1}}}
    f = tmp_path / "f.mkv"  # a video's name, not a video: the analyzer fails it clearly
    f.write_bytes(b"x" * 1000)
    assert running.run("enqueue", str(f)).returncode == 0

    def analyzer() -> dict:
        return json.loads(running.run("status", "--json").stdout)["topics"]["stage/analyze"]

    assert wait_for(lambda: analyzer()["state"]["failed"] == 1, 10)
    jobs = json.loads(running.run("jobs", "--json").stdout)["jobs"]
    assert [(j["state"], j["failure"]["category"]) for j in jobs] == [("failed", "source_corrupt")]


def test_watch_prints_live_updates_in_order_as_json(running):
    watcher = subprocess.Popen(
        [
            PIPECAST,
            "watch",
            "--status",
            running.status,
            "--sync",
            running.sync,
            "--data-dir",
            str(running.data_dir),
            "ext/",
            "--json",
            "--count",
            "5",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # the first line is the join's reset; updates follow
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert first["event"] == "reset"
        for i in range(5):
            assert running.run("publish", "ext/w", "k", json.dumps({"i": i})).returncode == 0
        out, _ = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    updates = [json.loads(x) for x in out.splitlines() if json.loads(x)["event"] == "update"]
    assert [u["data"]["i"] for u in updates] == list(range(5))
    assert [u["seq"] for u in updates] == list(range(1, 6))
    assert watcher.returncode == 0


@pytest.mark.parametrize("how", ["sigterm", "sigint", "stop"])
def test_the_node_shuts_down_gracefully_within_two_seconds(running, how):
    t0 = time.monotonic()
    if how == "stop":
        assert running.run("stop").returncode == 0
    else:
        running.proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    running.proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    assert running.proc.returncode == (130 if how == "sigint" else 0)  # Ctrl-C is 130
    assert elapsed < 2.0 + 1.0  # 2 s budget, plus process start-up noise of the client


def test_a_second_node_on_the_same_endpoints_fails_clearly(running, tmp_path):
    out = subprocess.run(
        [PIPECAST, "start", *running.args, "--data-dir", str(tmp_path / "other")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 4
    assert "another node" in out.stderr


def test_an_unreachable_node_gives_a_clear_message_and_exit_3_within_the_timeout():
    t0 = time.monotonic()
    out = subprocess.run(
        [PIPECAST, "ping", "--control", free_endpoint(), "--timeout", "0.5", "--insecure"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 3
    assert "is the node running" in out.stderr
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize(
    "args",
    [
        ["pause", "nope"],
        ["publish", "stage/x", "k", "{}"],
        ["publish", "ext/x", "k", "[1]"],
        ["publish", "ext/x", "k", "not json"],
    ],
)
def test_bad_arguments_to_a_running_node_exit_2_and_change_nothing(running, args):
    before = json.loads(running.run("status", "--json").stdout)["topics"]
    out = running.run(*args)
    assert out.returncode == 2, out
    assert json.loads(running.run("status", "--json").stdout)["topics"] == before


def test_a_bad_config_file_is_refused_with_exit_2(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[stages]]\nname = "x"\nkind = "teleport"\n')
    out = subprocess.run(
        [PIPECAST, "start", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert "teleport" in out.stderr


def test_watch_joins_presence_while_it_runs_and_leaves_when_it_ends(running):
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
            "ext/p",
            "--count",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def listed() -> dict:
            return json.loads(running.run("presence", "--json").stdout)

        assert wait_for(lambda: listed().get("ext/p", {}).get("count") == 1, 15)
        (meta,) = listed()["ext/p"]["watchers"].values()
        assert meta["kind"] == "remote"
        out = running.run("presence", "ext/p")
        assert "ext/p: 1 watching" in out.stdout
        running.run("publish", "ext/p", "k", '{"x": 1}')
        watcher.communicate(timeout=20)
        assert watcher.returncode == 0
        assert wait_for(lambda: listed().get("ext/p", {"count": 0})["count"] == 0, 10)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()


def test_stop_says_so_when_the_node_does_not_stop(tmp_path):
    # an in-process node hears the shutdown op but nothing acts on it: it keeps running,
    # so its final heartbeat never comes
    node = start_test_node(tmp_path / "data", networks=())
    try:
        assert node.bridge is not None
        out = subprocess.run(
            [
                PIPECAST, "stop", "--wait", "1",
                "--control", node.control_endpoint,
                "--status", node.bridge.status_endpoint,
                "--sync", node.bridge.sync_endpoint,
                "--data-dir", str(tmp_path / "data"),
            ],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert out.returncode == 1, out.stderr
        assert "still running after 1 s" in out.stderr
        assert node.stop_requested.is_set()  # it was asked
    finally:
        node.stop()


@pytest.mark.parametrize("as_json", [False, True])
def test_stop_waits_for_the_final_heartbeat_and_says_stopped(running, as_json):
    out = running.run("stop", *(["--json"] if as_json else []))
    said = json.loads(out.stdout) if as_json else out.stdout.strip()
    assert (out.returncode, said) == (0, {"stopped": True} if as_json else "stopped")
    running.proc.wait(timeout=10)


def test_ctrl_c_in_watch_leaves_presence_and_exits_130(running):
    watcher = subprocess.Popen(
        [PIPECAST, "watch", *running.args, "--data-dir", str(running.data_dir), "ext/", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert json.loads(watcher.stdout.readline())["event"] == "reset"  # it is watching

        def watching() -> int:
            listed = json.loads(running.run("presence", "--json").stdout)
            return int(listed.get("ext/", {}).get("count", 0))

        assert wait_for(lambda: watching() == 1, 15)
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 130, err
    assert "interrupted" in err
    assert wait_for(lambda: watching() == 0, 10)


def _presence_stats(node: NodeProcess) -> dict:
    return json.loads(node.run("stats", "--json").stdout)["presence"]


def test_start_v_logs_what_changed_and_heartbeats_only_at_trace(tmp_path):
    quiet = RunningNode(tmp_path / "v")  # NodeProcess starts nodes with -v
    loud = NodeProcess(tmp_path / "vvv" / "data", "-vv")  # -v -vv: trace
    try:
        watchers = [
            subprocess.Popen(
                [PIPECAST, "watch", *node.args, "--data-dir", str(node.data_dir), "ext/"],
                stdout=subprocess.DEVNULL,
            )
            for node in (quiet, loud)
        ]
        for node in (quiet, loud):  # the watch renews its lease about every second
            assert wait_for(lambda n=node: _presence_stats(n)["heartbeats"] >= 2, 20)
        quiet.run("pause", "encode")
        for w in watchers:  # SIGTERM: the watch leaves on its way out, exit 143
            w.terminate()
            assert w.wait(timeout=20) == 143
        for node in (quiet, loud):
            assert wait_for(lambda n=node: _presence_stats(n)["leaves"] == 1, 10)
            assert _presence_stats(node)["expired"] == 0
        said = quiet.output()
        assert "presence join" in said
        assert "control pause by owner" in said
        assert "encode: pause, idle -> paused" in said
        assert "presence.heartbeat" not in said
        assert "control stats" not in said  # reads are -vv
        said = loud.output()
        assert "TRACE pipecast.control: control presence.heartbeat by owner" in said
        assert "DEBUG pipecast.control: control stats by owner" in said
    finally:
        quiet.close()
        loud.close()
