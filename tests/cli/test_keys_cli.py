"""`pipecast keys` and the key options of every client command, against a real node."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from pipecast.testing import PIPECAST, NodeProcess
from pipecast.transport import read_keypair


def pipecast(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPECAST, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def running(tmp_path: Path):
    node = NodeProcess(tmp_path / "data")
    yield node
    node.close()


def endpoints(node: NodeProcess) -> list[str]:
    return ["--control", node.control, "--status", node.status, "--sync", node.sync]


def test_keys_node_prints_the_public_key_the_node_serves_with(running):
    out = pipecast("keys", "node", "--data-dir", str(running.data_dir), "--json")
    assert out.returncode == 0, out.stderr
    public = json.loads(out.stdout)["public"]
    assert public == read_keypair(running.data_dir / "keys" / "node.key").public
    plain = pipecast("keys", "node", "--data-dir", str(running.data_dir))
    assert plain.stdout.strip() == public


def test_a_key_made_by_keys_add_works_the_moment_the_command_returns(running, tmp_path):
    data = ["--data-dir", str(running.data_dir)]
    for role in ("watch", "operate"):
        made = pipecast("keys", "add", f"{role}-key", "--role", role, *data)
        assert made.returncode == 0, made.stderr
        key_file = tmp_path / f"{role}.key_secret"
        key_file.write_text(made.stdout)
        # no data dir of the node: the key file and the node's public key, as elsewhere
        node_key = pipecast("keys", "node", *data).stdout.strip()
        client = [*endpoints(running), "--key", str(key_file), "--node-key", node_key]
        client += ["--data-dir", str(tmp_path / "nowhere")]
        assert "pong" in pipecast("ping", *client).stdout
        paused = pipecast("pause", "encode", *client)
        if role == "watch":
            assert paused.returncode == 1
            assert "unauthorized" in paused.stderr
            assert "pause" in paused.stderr
        else:
            assert paused.returncode == 0, paused.stderr
    listed = json.loads(pipecast("keys", "list", "--json", *data).stdout)
    assert {(k["name"], k["role"]) for k in listed} == {
        ("owner", "operate"),
        ("watch-key", "watch"),
        ("operate-key", "operate"),
    }


def test_keys_add_json_gives_name_role_and_both_keys(tmp_path):
    out = pipecast("keys", "add", "bot", "--role", "operate", "--json", "--data-dir", str(tmp_path))
    doc = json.loads(out.stdout)
    assert set(doc) == {"name", "role", "public", "secret"}
    assert (doc["name"], doc["role"]) == ("bot", "operate")
    assert len(doc["public"]) == len(doc["secret"]) == 40


def test_a_public_key_that_begins_with_a_dash_is_allowed_after_a_double_dash(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    dashed = "-" + "a" * 39  # 40 Z85 characters
    out = pipecast("keys", "allow", "dash", "--role", "watch", "--json", *data, "--", dashed)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"name": "dash", "role": "watch", "public": dashed}
    listed = json.loads(pipecast("keys", "list", "--json", *data).stdout)
    assert {"name": "dash", "role": "watch", "public": dashed} in listed
    out = pipecast("keys", "revoke", "dash", "--json", *data)
    assert json.loads(out.stdout) == {"revoked": "dash"}
    after = json.loads(pipecast("keys", "list", "--json", *data).stdout)
    assert [g for g in listed if g["name"] != "dash"] == after


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["allow", "x", "not-a-key", "--role", "watch"], "not a public key"),
        (["allow", "bad name", "a" * 40, "--role", "watch"], "key name"),
        (["allow", "x", "a" * 40, "--role", "admin"], "admin"),
        (["revoke", "nobody"], "no key called 'nobody'"),
    ],
)
def test_bad_key_commands_exit_2_and_change_nothing(tmp_path, args, message):
    data = ["--data-dir", str(tmp_path)]
    before = pipecast("keys", "list", "--json", *data).stdout
    out = pipecast("keys", *args, *data)
    assert out.returncode == 2
    assert message in out.stderr
    assert pipecast("keys", "list", "--json", *data).stdout == before


def test_a_revoked_key_is_refused_at_its_next_command(running, tmp_path):
    data = ["--data-dir", str(running.data_dir)]
    made = pipecast("keys", "add", "temp", "--role", "operate", *data)
    key_file = tmp_path / "temp.key_secret"
    key_file.write_text(made.stdout)
    client = [*endpoints(running), *data, "--key", str(key_file)]
    assert pipecast("ping", *client).returncode == 0
    assert pipecast("keys", "revoke", "temp", *data).returncode == 0
    t0 = time.monotonic()
    out = pipecast("ping", *client, "--timeout", "20")
    assert out.returncode == 3
    assert "refused this key" in out.stderr
    assert time.monotonic() - t0 < 10  # refused, not timed out
    assert pipecast("ping", *endpoints(running), *data).returncode == 0  # the owner goes on


def test_a_client_with_no_key_file_is_told_where_it_looked_with_exit_2(running, tmp_path):
    out = pipecast("ping", *endpoints(running), "--data-dir", str(tmp_path / "empty"))
    assert out.returncode == 2
    assert "empty/keys/node.key" in out.stderr
    assert "--data-dir" in out.stderr


def test_an_insecure_client_of_a_secure_node_is_refused_clearly(running):
    out = pipecast("ping", *endpoints(running), "--insecure", "--timeout", "20")
    assert out.returncode == 3
    assert "does not speak CURVE" in out.stderr


def test_an_insecure_node_starts_only_on_loopback_and_says_so(tmp_path):
    out = pipecast(
        "start",
        *("--control", "tcp://0.0.0.0:*", "--status", "tcp://127.0.0.1:*"),
        *("--sync", "tcp://127.0.0.1:*", "--data-dir", str(tmp_path / "d"), "--insecure"),
    )
    assert out.returncode == 2
    assert "loopback or ipc" in out.stderr
    assert "tcp://0.0.0.0:*" in out.stderr
    node = NodeProcess(tmp_path / "data", "--insecure")
    try:
        assert "INSECURE" in node.output()
        status = pipecast("status", "--json", *endpoints(node), "--insecure")
        assert json.loads(status.stdout)["security"] == "insecure"
        assert "INSECURE" in pipecast("status", *endpoints(node), "--insecure").stderr
        assert not (tmp_path / "data" / "keys").exists()
    finally:
        node.close()
