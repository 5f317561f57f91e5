"""The node's config file: every section validated, a bad value a usage error naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecast.cli import UsageError
from pipecast.cli._config import load_node_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_limits_from_the_file_reach_the_node_config(tmp_path: Path) -> None:
    cfg = load_node_config(write(tmp_path, "[limits]\ndepth = 8\nvalue_bytes = 4096\n"))
    assert (cfg.limits.depth, cfg.limits.value_bytes) == (8, 4096)
    assert cfg.limits.request_bytes == 1024 * 1024  # the rest keep their defaults


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[limits]\ndeepness = 8\n", "accepts"),
        ("[limits]\ndepth = 0\n", "depth"),
        ("[limits]\ndepth = 'deep'\n", "depth"),
        ("[limits]\nlive_topics = 10\nclient_topics = 20\n", "client_topics"),
        ("limits = 3\n", "limits"),
    ],
)
def test_a_bad_limit_is_a_usage_error_naming_the_file(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError, match=says) as info:
        load_node_config(path)
    assert str(path) in str(info.value)
