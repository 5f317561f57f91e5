"""The `pipecast` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import zmq

PIPECAST = str(Path(sys.executable).parent / "pipecast")


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPECAST, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def free_endpoint() -> str:
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUB)
    s.bind("tcp://127.0.0.1:*")
    ep = s.get_string(zmq.LAST_ENDPOINT)
    s.close()
    ctx.term()
    return ep


def test_help_documents_the_exit_codes():
    out = run("--help")
    assert out.returncode == 0
    assert "Exit codes" in out.stdout
    assert "4  an endpoint could not be bound" in out.stdout


def test_demo_streams_every_update_in_order_as_json_and_ends_with_the_digest():
    out = run(
        "demo", "--size-mb", "3", "--json", "--status", free_endpoint(), "--sync", free_endpoint()
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4]
    assert [x["data"]["status"] for x in lines] == ["running"] * 3 + ["idle"]
    assert len(lines[-1]["data"]["digest"]) == 16


def test_demo_on_an_endpoint_in_use_exits_4_with_a_clear_message():
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUB)
    s.linger = 0
    s.bind("tcp://127.0.0.1:*")
    try:
        out = run("demo", "--status", s.get_string(zmq.LAST_ENDPOINT), "--sync", free_endpoint())
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
