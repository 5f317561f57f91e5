"""Clients that are not pipecast: a script written from the protocol page, and another
Unix user on the same machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import Node
from pipecast.testing import PIPECAST, start_test_node, wait_for
from pipecast.transport import allow_list, node_public_key

HERE = Path(__file__).parent
SCRIPT = HERE / "foreign_subscriber.py"


@pytest.fixture
def node(tmp_path: Path):
    n = start_test_node(tmp_path / "data", networks=())
    yield n
    n.stop()


def test_the_foreign_subscriber_uses_nothing_of_pipecast():
    source = SCRIPT.read_text()
    assert not re.search(r"^\s*(import|from)\s+pipecast", source, re.MULTILINE)


def key_file_made_by_the_cli(node: Node, folder: Path, name: str) -> Path:
    """`pipecast keys add NAME --role watch` against the node's data directory, saved."""
    made = subprocess.run(
        [PIPECAST, "keys", "add", name, "--role", "watch", "--data-dir", str(node.config.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    key_file = folder / f"{name}.key_secret"
    key_file.write_text(made.stdout)
    return key_file


def script_args(node: Node, key_file: Path, prefix: str, count: int, *more: str) -> list[str]:
    assert node.bridge is not None
    return [
        sys.executable,
        str(SCRIPT),
        node.bridge.status_endpoint,
        node.bridge.sync_endpoint,
        node_public_key(node.config.data_dir),
        str(key_file),
        prefix,
        str(count),
        *more,
    ]


def test_a_plain_pyzmq_client_authenticates_snapshots_and_follows_in_order(node, tmp_path):
    key_file = key_file_made_by_the_cli(node, tmp_path, "foreign")
    owner = node.client()
    owner.call("publish", topic="ext/foreign", key="before", data={"n": -1})
    script = subprocess.Popen(
        script_args(node, key_file, "ext/foreign", 30),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert script.stdout is not None
        first = json.loads(script.stdout.readline())
        assert first == {"snapshot": {"ext/foreign": {"before": {"n": -1}}}}
        for n in range(30):
            owner.call("publish", topic="ext/foreign", key="k", data={"n": n})
        out, err = script.communicate(timeout=30)
    finally:
        if script.poll() is None:
            script.kill()
            script.communicate()
    assert script.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["data"]["n"] for x in lines] == list(range(30))
    assert [x["seq"] for x in lines] == list(range(2, 32))


def test_a_plain_pyzmq_client_whose_key_is_not_allowed_gets_nothing(node, tmp_path):
    key_file = key_file_made_by_the_cli(node, tmp_path, "gone")
    allow_list(node.config.data_dir).revoke("gone")
    out = subprocess.run(
        script_args(node, key_file, "ext/", 1, "2"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert "no answer from the sync socket" in out.stderr


NOBODY = 65534


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


def _why_no_other_user() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run a client as another user (uid 65534)"
    if shutil.which("setpriv") is None:
        return "needs setpriv (util-linux)"
    probe = as_nobody(sys.executable, "-c", "import zmq, msgpack")
    if probe.returncode != 0:
        return f"uid {NOBODY} cannot run this Python: {probe.stderr.strip()[-200:]}"
    return None


_ATTACK = """
import sys, msgpack, zmq
control, node_public, owner_key = sys.argv[1:4]
try:
    open(owner_key).read()
    print("read: allowed")
except OSError as exc:
    print("read: denied", exc.errno)
ctx = zmq.Context()
for name, curve in (("null", False), ("curve", True)):
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    if curve:  # a key of its own, and the node's public key (which is no secret)
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
        s.curve_serverkey = node_public.encode()
    s.connect(control)
    for op in ("pause", "shutdown"):
        s.send_multipart([b"", msgpack.packb({"v": 2, "op": op, "stage": "encode"})])
    print(name + ":", "answered" if s.poll(2000) else "no answer")
"""


@pytest.fixture
def shared_node() -> Iterator[Node]:
    """A node whose data directory others may enter (0755, in a 0755 folder): only the
    keys folder's own 0700 keeps them out."""
    parent = Path(tempfile.mkdtemp(prefix="pipecast-shared-"))
    try:
        parent.chmod(0o755)
        n = start_test_node(parent / "data", networks=())
        try:
            (parent / "data").chmod(0o755)
            yield n
        finally:
            n.stop()
    finally:
        shutil.rmtree(parent)


def test_another_unix_user_cannot_read_the_keys_or_control_the_node(shared_node: Node):
    why = _why_no_other_user()
    if why is not None:
        pytest.skip(why)
    node = shared_node
    data = node.config.data_dir
    owner_key = str(data / "keys" / "owner.key_secret")
    out = as_nobody(
        sys.executable, "-c", _ATTACK, node.control_endpoint, node_public_key(data), owner_key
    )
    assert out.stdout.splitlines() == ["read: denied 13", "null: no answer", "curve: no answer"], (
        out.stderr
    )
    assert node.bridge is not None
    cli = ["--control", node.control_endpoint, "--status", node.bridge.status_endpoint]
    cli += ["--sync", node.bridge.sync_endpoint, "--timeout", "5"]
    denied = as_nobody(PIPECAST, "pause", "encode", *cli, "--data-dir", str(data))
    assert denied.returncode == 2
    assert "Permission denied" in denied.stderr
    insecure = as_nobody(PIPECAST, "pause", "encode", *cli, "--insecure")
    assert insecure.returncode == 3
    owner = node.client()
    assert wait_for(lambda: owner.call("status")["topics"].get("stage/encode") is not None, 5)
    assert owner.call("status")["topics"]["stage/encode"]["state"]["status"] != "paused"
    assert not node.stop_requested.is_set()
