"""A node, a relay and a subscriber on three network namespaces; the link cut for 5 s.

Needs root and `ip netns` (iproute2); skipped with the reason elsewhere. The
node lives in `node`, the relay in `relay` (linked to both others), the
subscriber in `sub`; 10.77.1.0/24 joins node and relay, 10.77.2.0/24 relay
and sub. Taking the node-relay link down for 5 s (the fault, not a wait)
must show the upstream stale at the subscriber, then live again with the
node's exact state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pipecast.testing import PIPECAST, wait_for
from pipecast.transport import (
    Keypair,
    Role,
    allow_list,
    ensure_node_keys,
    node_public_key,
    write_keypair,
)

TAG = f"pc{os.getpid() % 100000}"
NS = {"node": f"{TAG}n", "relay": f"{TAG}r", "sub": f"{TAG}s"}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def _can_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    probe = subprocess.run(["ip", "netns", "add", f"{TAG}probe"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"ip netns is not permitted here: {probe.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", f"{TAG}probe"], capture_output=True, check=False)
    return None


@pytest.fixture
def namespaces():
    why = _can_netns()
    if why is not None:
        pytest.skip(why)
    for ns in NS.values():
        ip("netns", "add", ns)
    try:
        for a, b, net in (("node", "relay", "10.77.1"), ("relay", "sub", "10.77.2")):
            va, vb = f"{TAG}{a[0]}{b[0]}", f"{TAG}{b[0]}{a[0]}"
            ip(
                "link",
                "add",
                va,
                "netns",
                NS[a],
                "type",
                "veth",
                "peer",
                "name",
                vb,
                "netns",
                NS[b],
            )
            ip("-n", NS[a], "addr", "add", f"{net}.1/24", "dev", va)
            ip("-n", NS[b], "addr", "add", f"{net}.2/24", "dev", vb)
            ip("-n", NS[a], "link", "set", va, "up")
            ip("-n", NS[b], "link", "set", vb, "up")
        for ns in NS.values():
            ip("-n", ns, "link", "set", "lo", "up")
        yield
    finally:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def in_ns(ns: str, *cmd: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", NS[ns], *cmd], stdout=out, stderr=subprocess.STDOUT
        )


def test_a_cut_link_shows_stale_then_live_with_the_exact_state(namespaces, tmp_path: Path) -> None:
    node_dir, relay_dir = tmp_path / "node", tmp_path / "relay"
    ensure_node_keys(node_dir)
    keys = Keypair.new()
    allow_list(node_dir).allow("relay", keys.public, Role.WATCH)
    key_file = write_keypair(tmp_path, "relay", keys)
    node_eps = ("tcp://10.77.1.1:7701", "tcp://10.77.1.1:7702", "tcp://10.77.1.1:7703")
    procs = []
    try:
        procs.append(
            in_ns(
                "node",
                PIPECAST,
                "start",
                "--status",
                node_eps[0],
                "--sync",
                node_eps[1],
                "--control",
                node_eps[2],
                "--data-dir",
                str(node_dir),
                "--heartbeat",
                "0.2",
                "--root",
                str(tmp_path),
                log=tmp_path / "node.log",
            )
        )
        assert wait_for(lambda: "node up" in (tmp_path / "node.log").read_text(), 20)
        ensure_node_keys(relay_dir)
        procs.append(
            in_ns(
                "relay",
                PIPECAST,
                "relay",
                "--upstream",
                f"up={node_eps[0]},{node_eps[1]},{node_public_key(node_dir)}",
                "--key",
                str(key_file),
                "--status",
                "tcp://10.77.2.1:7711",
                "--sync",
                "tcp://10.77.2.1:7712",
                "--control",
                "tcp://10.77.2.1:7713",
                "--data-dir",
                str(relay_dir),
                "--heartbeat",
                "0.2",
                log=tmp_path / "relay.log",
            )
        )
        assert wait_for(lambda: "relay up" in (tmp_path / "relay.log").read_text(), 20)
        watch = in_ns(
            "sub",
            PIPECAST,
            "watch",
            "--json",
            "--status",
            "tcp://10.77.2.1:7711",
            "--sync",
            "tcp://10.77.2.1:7712",
            "--data-dir",
            str(relay_dir),
            "--control",
            "tcp://10.77.2.1:1",
            "up/ext/",
            "relay/",
            log=tmp_path / "watch.log",
        )
        procs.append(watch)

        def node_call(op: str, **args: object) -> str:
            out = subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    NS["node"],
                    PIPECAST,
                    op,
                    "--control",
                    node_eps[2],
                    "--data-dir",
                    str(node_dir),
                    *[f"{k}" for k in args.get("argv", [])],
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            return out.stdout

        def seen() -> list[dict]:
            lines = (tmp_path / "watch.log").read_text().splitlines()
            return [json.loads(x) for x in lines if x.startswith("{")]

        def state() -> dict:
            """What the watch holds: its reset, then every update since."""
            held: dict = {}
            for r in seen():
                if r.get("event") == "reset":
                    held.update({t: dict(kv) for t, kv in r["state"].items()})
                elif r.get("event") == "update":
                    kv = held.setdefault(r["topic"], {})
                    if r["data"] is None:
                        kv.pop(r["key"], None)
                    else:
                        kv[r["key"]] = r["data"]
            return held

        def status() -> str | None:
            return (state().get("relay/up", {}).get("upstream") or {}).get("status")

        assert wait_for(lambda: status() == "live", 20)  # the watch is synced through the relay
        node_call("publish", argv=["ext/a", "k", '{"v": 1}'])
        assert wait_for(lambda: state().get("up/ext/a") == {"k": {"v": 1}}, 20)
        link = f"{TAG}nr"
        ip("-n", NS["node"], "link", "set", link, "down")
        node_call("publish", argv=["ext/a", "k", '{"v": 2}'])  # made while the link is down
        assert wait_for(lambda: status() == "stale", 10)
        time.sleep(5)  # the fault lasts 5 s (this is the cut, not a wait for a result)
        ip("-n", NS["node"], "link", "set", link, "up")
        assert wait_for(lambda: status() == "live", 30), state()
        assert wait_for(lambda: state().get("up/ext/a") == {"k": {"v": 2}}, 20), state()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(10)
