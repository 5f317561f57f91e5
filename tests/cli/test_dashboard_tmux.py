"""The dashboard as a person sees it: `pipecast watch` in a real 80x24 terminal (tmux)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import make_clip
from pipecast.testing import PIPECAST, NodeProcess, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="needs tmux (the test run installs it where it can)"
)


class Pane:
    """A detached tmux session of one window, `width` x `height`, running `command`;
    bash writes the command's exit status to `status` when it ends."""

    def __init__(self, command: list[str], folder: Path, width: int = 80, height: int = 24):
        self.name = f"pipecast-{uuid.uuid4().hex[:8]}"
        self.status = folder / f"{self.name}.status"
        script = f"{shlex.join(command)}; echo $? > {shlex.quote(str(self.status))}; sleep 60"
        self.tmux(
            "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
            "-e", "TERM=xterm-256color", shlex.join(["bash", "-c", script]),
        )  # fmt: skip

    @staticmethod
    def tmux(*args: str) -> str:
        done = subprocess.run(
            ["tmux", *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", self.name).splitlines()

    def exit_status(self) -> int | None:
        text = self.status.read_text() if self.status.exists() else ""
        return int(text) if text.strip() else None

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, check=False)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    config = tmp_path / "node.toml"
    config.write_text("[media]\nmin_bytes = 1024\n\n[encode]\npreset = 12\n")
    n = NodeProcess(tmp_path / "data", "--config", str(config))
    yield n
    n.close()


def test_watch_draws_a_dashboard_that_fits_80x24_and_follows_an_encode(node, tmp_path):
    clip = make_clip(tmp_path / "film.mkv", seconds=3)
    pane = Pane(
        [PIPECAST, "watch", *node.args, "--data-dir", str(node.data_dir), "stage/"], tmp_path
    )
    try:
        assert wait_for(lambda: any(x.startswith("encode") for x in pane.screen()), 15), (
            pane.screen()
        )
        assert node.run("enqueue", str(clip)).returncode == 0
        seen_running: list[list[str]] = []

        def encoded() -> bool:
            screen = pane.screen()
            if any("running" in x for x in screen):
                seen_running.append(screen)
            return any(x.startswith("encode") and x.rstrip().endswith("0/1/0") for x in screen)

        assert wait_for(encoded, 120, 0.1), pane.screen()
        screen = pane.screen()
        assert len(screen) <= 24
        assert all(len(x) <= 80 for x in screen)
        assert "queue/done/failed" in screen[1]
        assert any("saved" in x for x in screen), screen
        running = "\n".join(line for s in seen_running for line in s)
        assert "━" in running  # a bar was drawn while a stage ran
        assert "Traceback" not in "\n".join(screen)
        pane.tmux("send-keys", "-t", pane.name, "C-c")
        assert wait_for(lambda: pane.exit_status() is not None, 15)
        assert pane.exit_status() == 130
    finally:
        pane.close()
