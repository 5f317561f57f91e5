"""`pipecast web` and `start --http` as programs: the up line, the token, who may listen where."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from pipecast.testing import PIPECAST, NodeProcess, WebClient, wait_for

UP = re.compile(r"^pipecast web up: (http://127\.0\.0\.1:(\d+))/\?token=(\S+)$")


@pytest.fixture
def running(tmp_path: Path):
    node = NodeProcess(tmp_path / "data")
    yield node
    node.close()


def web(node: NodeProcess, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PIPECAST, "web", *node.args, "--data-dir", str(node.data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_web_prints_one_up_line_with_the_token_from_its_file_and_serves_it(
    running, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("a-token-from-a-file-0123\n")
    token.chmod(0o600)
    proc = web(running, "--http", "127.0.0.1:0", "--token-file", str(token))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        up = UP.match(line)
        assert up is not None, line
        assert up.group(3) == "a-token-from-a-file-0123"
        client = WebClient(up.group(1), up.group(3))
        status, snap = client.get_json("/api/snapshot")
        assert status == 200
        assert "stage/encode" in snap["state"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert out == ""  # one line, and only one
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--http", "0.0.0.0:0"], "reachable from other machines"),
        (["--http", "nowhere"], "is not HOST:PORT"),
        (["--http", "127.0.0.1:0", "--tls-cert", "/x"], "go together"),
        (["--http", "127.0.0.1:0", "--token-file", "OPEN"], "may be read by others"),
        (["--http", "127.0.0.1:0", "--token-file", "SHORT"], "at least 16"),
    ],
)
def test_web_refuses_what_would_expose_it_with_exit_2(
    running, tmp_path: Path, args: list[str], says: str
) -> None:
    (tmp_path / "OPEN").write_text("x" * 32)
    (tmp_path / "OPEN").chmod(0o644)
    (tmp_path / "SHORT").write_text("x" * 8)
    (tmp_path / "SHORT").chmod(0o600)
    args = [str(tmp_path / a) if a in ("OPEN", "SHORT") else a for a in args]
    proc = web(running, *args)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert says in err
    assert out == ""


def test_a_non_loopback_address_is_served_with_insecure_http(running) -> None:
    proc = web(running, "--http", "0.0.0.0:0", "--insecure-http")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("pipecast web up: http://0.0.0.0:")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_web_without_a_node_exits_3(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data")
    args = node.args
    node.close()
    proc = subprocess.run(
        [
            PIPECAST,
            "web",
            *args,
            "--data-dir",
            str(node.data_dir),
            "--timeout",
            "1",
            "--http",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "pipecast web up" not in proc.stdout


def test_start_http_runs_the_gateway_in_the_node(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data", "--http", "127.0.0.1:0")
    try:

        def up_line() -> re.Match[str] | None:
            return next((m for line in node.output().splitlines() if (m := UP.match(line))), None)

        assert wait_for(lambda: up_line() is not None, 10), node.output()
        up = up_line()
        assert up is not None
        client = WebClient(up.group(1), up.group(3))
        status, doc = client.control("pause", stage="encode")
        assert status == 200
        assert doc["result"]["status"] == "paused"
    finally:
        node.close()
