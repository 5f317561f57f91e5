"""`pipecast installations` against a node process: add, list, switch, remove, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

from pipecast.testing import NodeProcess


def test_installations_are_managed_from_the_command_line(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data")
    try:
        out = node.run("installations", "add", "hall", "--network", "demo", "--display", "grid:2x3")
        assert (out.returncode, out.stdout.strip()) == (0, "added hall: demo as grid:2x3")
        out = node.run("installations", "switch", "hall", "--display", "single:1:2", "--json")
        assert json.loads(out.stdout)["display"] == "single:1:2"
        out = node.run("installations", "list")
        assert out.stdout.strip() == "hall: demo as single:1:2"
        bad = node.run("installations", "add", "x", "--network", "nope", "--display", "grid:1x1")
        assert bad.returncode == 2  # the node says the argument is bad
        assert "no network named 'nope'" in bad.stderr
        assert node.run("installations", "switch", "hall").returncode == 2
        out = node.run("installations", "remove", "hall")
        assert (out.returncode, out.stdout.strip()) == (0, "removed hall")
        out = node.run("installations", "list", "--json")
        assert json.loads(out.stdout) == []
    finally:
        node.close()
