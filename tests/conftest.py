"""Shared fixtures: every test ends with no actor, thread, socket or process left behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from pipecast.actors import BridgeConfig, BridgeHandle, start_bridge
from pipecast.testing import PostgresServer, find_postgres, wait_for

LOOPBACK = "tcp://127.0.0.1:*"


def _fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def _fd_names() -> list[str]:
    out = []
    for p in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            out.append(f"{p.name}->{p.readlink()}")
    return out


def _children() -> dict[int, str]:
    """pid -> command line of this process's living children (zombies left out)."""
    me = str(os.getpid())
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            # the fields after the command name: state, ppid, ...
            state, ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if ppid == me and state != "Z":
                out[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    """Install the Debian packages the suite drives (tmux), where this machine lets us."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "ensure-test-packages"
    subprocess.run([str(script)], check=False, timeout=600)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Stop all actors after the test; fail it if threads, fds or child processes leaked."""
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    children_before = set(_children())
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)
    deadline = time.monotonic() + 5.0
    leaked = []
    for t in set(threading.enumerate()) - threads_before:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            leaked.append(t.name)
    assert not leaked, f"threads leaked: {leaked}"
    # An actor told to stop may still be closing its sockets' fds: give it a
    # moment (a condition with a deadline), then the count must be back.
    settled = wait_for(lambda: _fds() <= fds_before, 3.0)
    assert settled, f"file descriptors leaked: {fds_before} -> {_fds()}: {_fd_names()}"
    # a killed child may take a moment to exit
    gone = wait_for(lambda: not set(_children()) - children_before, 3.0)
    assert gone, f"processes leaked: {_children()}"


@pytest.fixture
def bridge_config() -> BridgeConfig:
    return BridgeConfig(LOOPBACK, LOOPBACK, heartbeat_interval=0.1)


@pytest.fixture
def bridge(bridge_config: BridgeConfig) -> Iterator[BridgeHandle]:
    handle = start_bridge(bridge_config)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster owned by an unprivileged user, for the session
    (`fresh_database()` per test); skipped with the reason only when it cannot run."""
    bin_dir, why = find_postgres()
    if bin_dir is None:
        pytest.skip(why)
    server = PostgresServer(bin_dir)
    yield server
    server.stop()
