"""A node in a subprocess (`pipecast start`), and the CLI run against it.

For harnesses that drive the real command line: the node binds ephemeral
loopback ports itself (no pick-then-bind race with other processes) and
announces them on its "node up" line, which this harness reads from the
node's log file (`log`, beside the data directory; a file, not a pipe, so
a chatty node can never block on a full pipe). `run(cmd, ...)` runs
`pipecast cmd` with those endpoints and the node's data directory (so the
owner's key) and returns the completed process.
Start-up waits for that line (at most 30 s); `close()` kills the process
(if it is still running) and reaps it. `env` adds variables to the node's
environment (e.g. PIPECAST_CRASH_AT for fault injection). The library root is
the data directory's parent unless `extra` has a `--root`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pipecast.transport import ClientSecurity, ControlClient

from . import wait_for

__all__ = ["PIPECAST", "NodeProcess"]

PIPECAST = str(Path(sys.executable).parent / "pipecast")
ANY_PORT = "tcp://127.0.0.1:*"
_UP = re.compile(r"pipecast node up: status (\S+) sync (\S+) control (\S+)")


_GROUPS = frozenset({"installations"})  # client command groups: `run` puts endpoints after


class NodeProcess:
    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        heartbeat: float = 0.2,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}-node.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own command, argument list
                [
                    PIPECAST,
                    "start",
                    "--status",
                    ANY_PORT,
                    "--sync",
                    ANY_PORT,
                    "--control",
                    ANY_PORT,
                    "--data-dir",
                    str(data_dir),
                    "--heartbeat",
                    str(heartbeat),
                    "-v",
                    *([] if "--root" in extra else ["--root", str(data_dir.parent.absolute())]),
                    *extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=None if env is None else {**os.environ, **env},
            )
        wait_for(
            lambda: _UP.search(self.output()) is not None or self.proc.poll() is not None,
            startup_timeout,
        )
        up = _UP.search(self.output())
        if up is None or self.proc.poll() is not None:
            self.close()
            tail = self.output()[-4000:]
            raise RuntimeError(f"the node did not come up (exit {self.proc.returncode}):\n{tail}")
        self.status, self.sync, self.control = up.groups()
        self.args = ["--status", self.status, "--sync", self.sync, "--control", self.control]

    @property
    def owner(self) -> ClientSecurity:
        """The owner's client keys, from the node's data directory (made at start-up)."""
        return ClientSecurity.owner(self.data_dir)

    def client(self, timeout: float = 5.0) -> ControlClient:
        """A control client of this node with the owner's key."""
        return ControlClient(self.control, timeout, self.owner)

    def output(self) -> str:
        """Everything the node has written to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """`pipecast args[0] <endpoints> args[1:]` (for a group, after its subcommand),
        captured as text; never raises on exit codes."""
        endpoints = [
            *("--control", self.control, "--status", self.status, "--sync", self.sync),
            *("--data-dir", str(self.data_dir)),
        ]
        head = 2 if args[0] in _GROUPS else 1  # a group's options follow its subcommand
        return subprocess.run(  # noqa: S603 - our own command, argument list
            [PIPECAST, *args[:head], *endpoints, *args[head:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        """Kill the node if it still runs and reap it; blocks at most ~10 s."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
