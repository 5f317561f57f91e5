"""`ClusterNodes`: node processes sharing one library store, for tests and benchmarks.

Each node is `pipecast start --name NAME` (a `NodeProcess`) with its own data
directory and config file, the store given as `PIPECAST_STORE` (a
`postgresql://` URL, or `sqlite:///PATH` for nodes of one machine) and one
library folder below `root`. Read what the nodes did from their logs
(`commits`, `deaths`) and what is left on disk (`ours`). Blocks as the
processes and the store do; every wait has a timeout.
"""

from __future__ import annotations

import re
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from pipecast.transport import ControlClient, RemoteError

from ._process import NodeProcess

__all__ = ["ALL_STAGES", "ClusterNodes"]

ALL_STAGES = ("analyze", "crf", "encode")


class ClusterNodes:
    """See module docstring. `lease` and the encode's `preset`/`crf` go in every config;
    `replace` chooses the commit mode."""

    def __init__(
        self, root: Path, url: str, lease: float = 3.0, replace: bool = True, crf: int = 40
    ) -> None:
        self.root, self.url, self.lease, self.replace, self.crf = root, url, lease, replace, crf
        self.library = root / "library"
        self.library.mkdir(parents=True, exist_ok=True)
        self.nodes: dict[str, NodeProcess] = {}

    def start(
        self,
        name: str,
        stages: tuple[str, ...] = ALL_STAGES,
        preset: int = 12,
        extra: str = "",
        **env: str,
    ) -> ControlClient:
        """Start node `name` running `stages` (kinds; crf is the fixed-CRF stage), with
        `extra` TOML after its config and `env` in its environment; its client."""
        config = self.root / f"{name}.toml"
        tables = "".join(
            f'[[stages]]\nname = "{"crf_search" if kind == "crf" else kind}"\nkind = "{kind}"\n'
            for kind in stages
        )
        config.write_text(
            textwrap.dedent(
                f"""
                [node]
                lease = {self.lease}

                [media]
                replace = {"true" if self.replace else "false"}
                min_bytes = 1024
                max_output_ratio = 10.0

                [encode]
                preset = {preset}
                crf = {self.crf}
                """
            )
            + tables
            + extra
        )
        node = NodeProcess(
            self.root / f"data-{name}",
            "--config",
            str(config),
            "--name",
            name,
            env={"PIPECAST_STORE": self.url, **env},
        )
        self.nodes[name] = node
        return node.client(10)

    def client(self, name: str) -> ControlClient:
        return self.nodes[name].client(10)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal node `name` (a stopped one is continued first) and reap it."""
        node = self.nodes.pop(name)
        if sig != signal.SIGKILL:
            node.proc.send_signal(signal.SIGCONT)
        node.proc.send_signal(sig)
        try:
            node.proc.wait(30)
        except subprocess.TimeoutExpired:  # one that will not stop is killed
            node.proc.kill()
        node.close()

    def jobs(self, via: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The shared store's jobs, read through a node; while the store is down the node
        says so (`store_unavailable`) and this asks again, for at most `timeout`."""
        from . import wait_for  # noqa: PLC0415 - the facade's, defined beside this module

        answer: list[dict[str, Any]] = []

        def read() -> bool:
            try:
                answer[:] = self.client(via).call("jobs")["jobs"]
            except RemoteError as exc:
                if exc.wire_type != "store_unavailable":
                    raise
                return False
            return True

        if not wait_for(read, timeout, 0.2):
            raise TimeoutError(f"the store stayed unavailable for {timeout} s")
        return answer

    def commits(self) -> dict[int, list[str]]:
        """job id -> the nodes whose logs say they committed it."""
        out: dict[int, list[str]] = {}
        for log in sorted(self.root.glob("data-*-node.log")):
            name = log.name[len("data-") : -len("-node.log")]
            for m in re.finditer(r"job (\d+) committed to", log.read_text(errors="replace")):
                out.setdefault(int(m.group(1)), []).append(name)
        return out

    def deaths(self) -> list[str]:
        """Lines of the node logs that say an actor died or raised unhandled."""
        return [
            line
            for log in self.root.glob("data-*-node.log")
            for line in log.read_text(errors="replace").splitlines()
            if "Unhandled exception" in line or " died (" in line
        ]

    def ours(self) -> list[str]:
        """Our temp files in the library and in the work folders of the running nodes."""
        folders = [self.library, *(n.data_dir / "work" for n in self.nodes.values())]
        return [
            p.name for f in folders if f.exists() for p in f.iterdir() if ".pipecast-" in p.name
        ]

    def close(self) -> None:
        """Stop every node still running (SIGTERM; kill if it will not)."""
        for name in list(self.nodes):
            self.kill(name, signal.SIGTERM)
