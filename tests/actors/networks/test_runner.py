"""Network runners in a real node: runs on the bus and in the store, the PANIC! race, faults."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipecast.actors import Node, Pace, RunRules, model
from pipecast.testing import Collector, NodeProcess, start_test_node, wait_for
from pipecast.transport import ControlClient, RemoteError

GATE = threading.Event()  # the `gated` model waits for it
ME = __name__


@model(input="text", output="text")
def plus(text: str) -> str:
    return text + "+"


@model(input="text", output="text")
def gated(text: str) -> str:
    GATE.wait(10)
    return text + "!"


@model(input="text", output="text")
def broken(text: str) -> str:
    raise ValueError(f"cannot digest {text!r}")


FAST = Pace(((None, 0.01),))


@pytest.fixture(autouse=True)
def open_gate_at_the_end() -> Iterator[None]:
    GATE.clear()
    yield
    GATE.set()  # a model still waiting must finish, or its thread leaks


def node_with(tmp_path: Path, *networks: RunRules) -> tuple[Node, ControlClient]:
    node = start_test_node(tmp_path / "data", stages=(), networks=networks)
    client = node.client(5.0)
    return node, client


def run_state(c: Collector, network: str) -> dict[str, Any]:
    return c.subscriber.topic(f"invocation/{network}").get("run") or {}


def runner_stats(client: ControlClient, network: str) -> dict[str, Any]:
    stats: dict[str, Any] = client.call("stats")[f"network/{network}"]
    return stats


def test_a_run_goes_round_the_ring_in_order_on_the_bus_and_in_the_store(tmp_path: Path) -> None:
    rules = RunRules("ring", (f"{ME}:plus", "echo"), pace=FAST, max_invocations=5)
    node, client = node_with(tmp_path, rules)
    watch = Collector(node, ("invocation/ring",)).start()
    try:
        genesis = client.call("run", network="ring", prompt="seed")
        assert (genesis["sequence"], genesis["run"], genesis["state"]) == (
            0,
            genesis["id"],
            "invoking",
        )
        assert watch.wait_for(lambda c: run_state(c, "ring").get("reason") == "max_invocations", 10)
        stored = client.call("invocations", network="ring")
        assert stored["run"] == genesis["id"]
        rows = stored["invocations"]
        assert [(r["sequence"], r["model"], r["input"], r["output"], r["state"]) for r in rows] == [
            (0, f"{ME}:plus", "seed", "seed+", "completed"),
            (1, "echo", "seed+", "seed+", "completed"),
            (2, f"{ME}:plus", "seed+", "seed++", "completed"),
            (3, "echo", "seed++", "seed++", "completed"),
            (4, f"{ME}:plus", "seed++", "seed+++", "completed"),
        ]
        # every invocation was seen invoking, then completed, in order
        states = [
            (u.data["sequence"], u.data["state"])
            for u in watch.updates()
            if u.key != "run" and u.data
        ]
        assert states == [(k, s) for k in range(5) for s in ("invoking", "completed")]
        final = run_state(watch, "ring")
        assert final["status"] == "idle"
        assert final["ready_at"] is None
        assert client.call("runs", network="ring")[0]["invocations"] == 5
    finally:
        watch.stop()
        node.stop()


def test_a_prompt_within_the_lockout_is_refused_with_its_ready_time(tmp_path: Path) -> None:
    node, client = node_with(
        tmp_path, RunRules("n", ("echo",), lockout=30.0, pace=Pace(((None, 60.0),)))
    )
    try:
        genesis = client.call("run", network="n", prompt="first")
        with pytest.raises(RemoteError) as info:
            client.call("run", network="n", prompt="second")
        assert info.value.wire_type == "locked_out"
        assert info.value.details()["ready_at"] == pytest.approx(genesis["started_at"] + 30.0)
        assert client.call("invocations", network="n")["run"] == genesis["id"]
        assert runner_stats(client, "n")["locked_out"] == 1
    finally:
        node.stop()


def test_a_stop_during_the_wait_never_lets_the_old_chain_continue(tmp_path: Path) -> None:
    node, client = node_with(tmp_path, RunRules("n", ("echo",), pace=Pace(((None, 0.3),))))
    watch = Collector(node, ("invocation/n",)).start()
    try:
        genesis = client.call("run", network="n", prompt="p")
        assert watch.wait_for(lambda c: run_state(c, "n").get("status") == "waiting", 5)
        assert client.call("run.stop", network="n") == {"stopped": True, "run": genesis["id"]}
        # the continuation scheduled before the stop comes due and is dropped
        assert wait_for(lambda: runner_stats(client, "n")["stale"] >= 1, 5)
        rows = client.call("invocations", network="n", run=genesis["id"])["invocations"]
        assert [r["sequence"] for r in rows] == [0]
        assert run_state(watch, "n")["reason"] == "stopped"
    finally:
        watch.stop()
        node.stop()


def test_a_new_run_during_the_wait_never_lets_the_old_chain_continue(tmp_path: Path) -> None:
    node, client = node_with(
        tmp_path, RunRules("n", ("echo",), lockout=0.0, pace=Pace(((None, 0.3),)))
    )
    watch = Collector(node, ("invocation/n",)).start()
    try:
        old = client.call("run", network="n", prompt="old")
        assert watch.wait_for(lambda c: run_state(c, "n").get("status") == "waiting", 5)
        new = client.call("run", network="n", prompt="new")
        assert wait_for(lambda: runner_stats(client, "n")["stale"] >= 1, 5)
        assert watch.wait_for(lambda c: (run_state(c, "n").get("sequence") or 0) >= 2, 5)
        client.call("run.stop", network="n")
        old_rows = client.call("invocations", network="n", run=old["id"])["invocations"]
        assert [r["sequence"] for r in old_rows] == [0]
        new_rows = client.call("invocations", network="n", run=new["id"])["invocations"]
        assert new_rows[1]["input"] == "new"
        assert {r["run"] for r in new_rows} == {new["id"]}
        # the old run's keys left the live topic: a late joiner sees only the new run
        late = Collector(node, ("invocation/n",)).start()
        try:
            keys = set(late.subscriber.topic("invocation/n")) - {"run"}
            assert keys == {str(r["id"]) for r in new_rows}
        finally:
            late.stop()
    finally:
        watch.stop()
        node.stop()


def test_a_failing_model_fails_its_invocation_and_ends_the_run_saying_why(tmp_path: Path) -> None:
    node, client = node_with(tmp_path, RunRules("n", (f"{ME}:broken",)))
    watch = Collector(node, ("invocation/n",)).start()
    try:
        genesis = client.call("run", network="n", prompt="p")
        assert watch.wait_for(lambda c: run_state(c, "n").get("reason") == "failed", 5)
        state = run_state(watch, "n")
        assert state["status"] == "idle"
        assert "cannot digest 'p'" in state["error"]
        (row,) = client.call("invocations", network="n")["invocations"]
        assert row["id"] == genesis["id"]
        assert row["state"] == "failed"
        assert client.call("ping")["pong"]
        client.call("run", network="n", prompt="again")  # idle after a failure: no lockout
    finally:
        watch.stop()
        node.stop()


def test_a_model_past_its_timeout_fails_and_its_late_result_is_dropped(tmp_path: Path) -> None:
    node, client = node_with(tmp_path, RunRules("n", (f"{ME}:gated",), timeout=0.2))
    watch = Collector(node, ("invocation/n",)).start()
    try:
        client.call("run", network="n", prompt="p")
        assert watch.wait_for(lambda c: run_state(c, "n").get("reason") == "failed", 5)
        assert run_state(watch, "n")["error"] == "timeout after 0.2 s"
        GATE.set()
        assert wait_for(lambda: runner_stats(client, "n")["stale"] >= 1, 5)
        (row,) = client.call("invocations", network="n")["invocations"]
        assert (row["state"], row["output"]) == ("failed", None)
    finally:
        watch.stop()
        node.stop()


def test_stop_answers_at_once_while_a_model_works_and_fails_the_invocation(tmp_path: Path) -> None:
    node, client = node_with(tmp_path, RunRules("n", (f"{ME}:gated",)))
    try:
        genesis = client.call("run", network="n", prompt="p")
        quick = node.client(1.0)
        assert quick.call("run.stop", network="n")["stopped"] is True
        (row,) = client.call("invocations", network="n")["invocations"]
        assert (row["id"], row["state"], row["error"]) == (genesis["id"], "failed", "stopped")
        GATE.set()
        assert wait_for(lambda: runner_stats(client, "n")["models_in_flight"] == 0, 5)
        assert client.call("invocations", network="n")["invocations"][0]["state"] == "failed"
    finally:
        node.stop()


def test_an_unwatched_run_waits_for_a_viewer(tmp_path: Path) -> None:
    rules = RunRules("n", ("echo",), pace=FAST, only_when_watched=True)
    node, client = node_with(tmp_path, rules)
    watch = Collector(node, ("invocation/n",)).start()  # a plain subscriber is not a viewer
    try:
        client.call("run", network="n", prompt="p")
        assert watch.wait_for(lambda c: run_state(c, "n").get("status") == "held", 5)
        client.call("presence.join", watcher="screen-1", topic="invocation/n", meta={}, ttl=30)
        assert watch.wait_for(lambda c: (run_state(c, "n").get("sequence") or 0) >= 3, 5)
        client.call("presence.leave", watcher="screen-1")
        assert watch.wait_for(lambda c: run_state(c, "n").get("status") == "held", 5)
        held_at = run_state(watch, "n")["sequence"]
        assert client.call("invocations", network="n")["invocations"][-1]["sequence"] == held_at
    finally:
        watch.stop()
        node.stop()


@pytest.mark.parametrize(
    ("op", "args", "wire_type"),
    [
        ("run", {"network": "nope", "prompt": "p"}, "unknown_network"),
        ("run", {"network": "n", "prompt": ""}, "bad_request"),
        ("run", {"network": "n", "prompt": 7}, "bad_request"),
        ("run", {"prompt": "p"}, "bad_request"),
        ("run.stop", {"network": 3}, "bad_request"),
        ("invocations", {"network": "n", "run": -1}, "bad_request"),
        ("invocations", {"network": "n", "limit": 0}, "bad_request"),
        ("runs", {"network": "n", "limit": "x"}, "bad_request"),
    ],
)
def test_bad_network_requests_get_typed_errors_and_change_nothing(
    tmp_path: Path, op: str, args: dict[str, Any], wire_type: str
) -> None:
    node, client = node_with(tmp_path, RunRules("n", ("echo",)))
    try:
        with pytest.raises(RemoteError) as info:
            client.call(op, **args)
        assert info.value.wire_type == wire_type
        assert client.call("runs", network="n") == []
        assert runner_stats(client, "n")["model_calls"] == 0
    finally:
        node.stop()


def test_networks_lists_each_network_with_its_live_state_and_viewers(tmp_path: Path) -> None:
    node, client = node_with(
        tmp_path, RunRules("a", ("echo",)), RunRules("b", ("paint", "caption"))
    )
    try:
        client.call("presence.join", watcher="w", topic="invocation/b", meta={}, ttl=30)
        assert wait_for(lambda: client.call("networks")["b"]["viewers"] == 1, 5)
        out = client.call("networks")
        assert sorted(out) == ["a", "b"]
        assert out["b"]["models"] == ["paint", "caption"]
        assert out["b"]["lockout"] == 30.0
        assert out["a"]["state"]["status"] == "idle"
        assert out["a"]["viewers"] == 0
    finally:
        node.stop()


def test_the_demo_network_paints_captions_and_remixes_offline(tmp_path: Path) -> None:
    rules = RunRules("demo", ("paint", "caption", "remix"), pace=FAST, max_invocations=4)
    node, client = node_with(tmp_path, rules)
    watch = Collector(node, ("invocation/demo",)).start()
    try:
        client.call("run", network="demo", prompt="a lantern over the harbour")
        assert watch.wait_for(lambda c: run_state(c, "demo").get("reason") == "max_invocations", 20)
        rows = client.call("invocations", network="demo")["invocations"]
        image = Path(rows[0]["output"])
        assert image.parent == tmp_path / "data" / "images"
        assert image.stat().st_size > 1000
        assert rows[1]["input"] == str(image)
        assert "field" in rows[1]["output"]
        assert rows[3]["model"] == "paint"
        assert rows[3]["input"] == rows[2]["output"]
    finally:
        watch.stop()
        node.stop()


def test_a_graceful_restart_mid_run_reports_the_run_as_stopped_by_the_node(tmp_path: Path) -> None:
    rules = RunRules("n", (f"{ME}:gated",))
    node, client = node_with(tmp_path, rules)
    genesis = client.call("run", network="n", prompt="p")
    node.stop()
    GATE.set()
    node, client = node_with(tmp_path, rules)
    watch = Collector(node, ("invocation/n",)).start()
    try:
        assert watch.wait_for(lambda c: run_state(c, "n").get("run") == genesis["id"], 5)
        state = run_state(watch, "n")
        assert (state["status"], state["reason"]) == ("idle", "node stopped")
        shown = watch.subscriber.topic("invocation/n")[str(genesis["id"])]
        assert (shown["state"], shown["error"]) == ("failed", "node stopped")
    finally:
        watch.stop()
        node.stop()


def test_a_crash_mid_run_is_reported_as_interrupted_after_the_restart(tmp_path: Path) -> None:
    """kill -9 of a node process during an invocation; the next node tells the truth."""
    models = tmp_path / "mods"
    models.mkdir()
    (models / "slowmodels.py").write_text(
        textwrap.dedent(
            """
            import time
            from pipecast.actors import model

            @model(input="text", output="text")
            def slow(text):
                time.sleep(30)
                return text
            """
        )
    )
    config = tmp_path / "node.toml"
    config.write_text('[[networks]]\nname = "n"\nmodels = ["slowmodels:slow"]\n')
    env = {"PYTHONPATH": f"{models}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = NodeProcess(tmp_path / "data", "--config", str(config), env=env)
    try:
        genesis = proc.client().call("run", network="n", prompt="p")
    finally:
        proc.close()  # SIGKILL
    sys.path.insert(0, str(models))
    try:
        node, client = node_with(tmp_path, RunRules("n", ("slowmodels:slow",)))
    finally:
        sys.path.remove(str(models))
    watch = Collector(node, ("invocation/n",)).start()
    try:
        assert watch.wait_for(lambda c: run_state(c, "n").get("run") == genesis["id"], 5)
        assert run_state(watch, "n")["reason"] == "interrupted"
        (row,) = client.call("invocations", network="n")["invocations"]
        assert row["state"] == "failed"
        assert row["error"].startswith("interrupted")
    finally:
        watch.stop()
        node.stop()
