"""A throwaway PostgreSQL cluster for tests: initdb, start, a DSN, stop.

The cluster lives in a folder of its own, owned by an unprivileged user
(`nobody` when the tests run as root: PostgreSQL refuses to run as root),
listens on 127.0.0.1 at a free port and on a unix socket inside that folder,
and lets in only its one role, `pipecast`, with a random password
(scram-sha-256): a client without the password is refused, as it would be on
a real deployment. `find_postgres` says where the Debian binaries are, or why
there are none (the tests that need them skip with that reason).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the one `free_endpoint` found)."""
    from . import free_endpoint  # noqa: PLC0415 - the package imports this module first

    return int(free_endpoint().rsplit(":", 1)[1])


__all__ = ["PostgresServer", "find_postgres"]


def find_postgres() -> tuple[Path | None, str]:
    """The folder holding initdb and pg_ctl, or None and why not."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent, ""
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent, ""
    return None, "PostgreSQL is not installed (scripts/ensure-test-packages installs it as root)"


class PostgresServer:
    """One running cluster (see module docstring). Blocks while it starts and stops."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="pipecast-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self._as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL never runs as root
            shutil.chown(self.folder, "nobody", "nogroup")
            self._as = ["runuser", "-u", "nobody", "--"]
        self.folder.chmod(0o700)
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password)
        if self._as:
            shutil.chown(pwfile, "nobody", "nogroup")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "pipecast",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.folder / "log"),
            "start",
        )
        self._run(
            "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "pipecast",
            "pipecast",
            env={"PGPASSWORD": self.password},
        )

    @property
    def dsn(self) -> str:
        return f"postgresql://pipecast:{self.password}@127.0.0.1:{self.port}/pipecast"

    def fresh_database(self) -> str:
        """A new, empty database of this cluster; its URL (blocks for the CREATE)."""
        import psycopg  # noqa: PLC0415 - an extra: pipecast[postgres]

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn.rsplit("/", 1)[0] + f"/{name}"

    def _run(self, tool: str, *args: str, env: dict[str, str] | None = None) -> None:
        command = [*self._as, str(self.bin_dir / tool), *args]
        done = subprocess.run(  # noqa: S603 - our own argument list
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, **(env or {})},
            cwd=self.folder,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")

    def restart(self) -> None:
        """Stop fast and start again on the same port (clients must reconnect)."""
        # its output to the log, as at start: a server holding our pipe would hang us
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.folder / "log"),
            "restart",
        )

    def stop(self) -> None:
        """Stop the cluster and remove its folder. Idempotent."""
        if self.data.exists():
            subprocess.run(  # noqa: S603
                [
                    *self._as,
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.folder, ignore_errors=True)
