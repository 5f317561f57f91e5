"""A node in a subprocess (`pipecast start`), and the CLI run against it.

For harnesses that drive the real command line: the node runs on free
loopback endpoints with its own data directory; `run(cmd, ...)` runs
`pipecast cmd` with those endpoints and returns the completed process.
Start-up waits on the node answering `ping` (at most 20 s); `close()` kills
the process (if it is still running) and reaps it. `env` adds variables
to the node's environment (e.g. PIPECAST_CRASH_AT for fault injection).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import free_endpoint, wait_for

__all__ = ["PIPECAST", "NodeProcess"]

PIPECAST = str(Path(sys.executable).parent / "pipecast")


class NodeProcess:
    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        heartbeat: float = 0.2,
        env: dict[str, str] | None = None,
    ) -> None:
        self.status, self.sync, self.control = free_endpoint(), free_endpoint(), free_endpoint()
        self.args = ["--status", self.status, "--sync", self.sync, "--control", self.control]
        self.proc = subprocess.Popen(  # noqa: S603 - our own command, argument list
            [
                PIPECAST,
                "start",
                *self.args,
                "--data-dir",
                str(data_dir),
                "--heartbeat",
                str(heartbeat),
                "-v",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=None if env is None else {**os.environ, **env},
        )
        up = wait_for(
            lambda: (
                self.run("ping", "--timeout", "0.5").returncode == 0 or self.proc.poll() is not None
            ),
            20,
        )
        if not up or self.proc.poll() is not None:
            self.close()
            raise RuntimeError(f"the node did not come up: {self.proc.stderr}")

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """`pipecast args[0] <endpoints> args[1:]`, captured as text; never raises on exit codes."""
        endpoints = ["--control", self.control, "--status", self.status, "--sync", self.sync]
        return subprocess.run(  # noqa: S603 - our own command, argument list
            [PIPECAST, args[0], *endpoints, *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)
