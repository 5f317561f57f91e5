"""`pipecast config show|check` as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pipecast.testing import PIPECAST


def pipecast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPECAST, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_check_exits_0_for_a_valid_file_and_2_naming_each_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[stage.crf_search]\ntarget = 93\n")
    out = pipecast("config", "check", str(good))
    assert out.returncode == 0, out.stderr
    assert "valid (stages: analyze, crf_search, encode; networks: demo)" in out.stdout
    assert json.loads(pipecast("config", "check", str(good), "--json").stdout)["ok"] is True
    bad = tmp_path / "bad.toml"
    bad.write_text("[media]\nreplce = true\n[stage.crf_search]\ntarget = 200\n")
    out = pipecast("config", "check", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr
    assert "media.replce: unknown key" in out.stderr
    assert "stage.crf_search.target: input should be less than or equal to 100" in out.stderr
    assert pipecast("config", "check", str(tmp_path / "none.toml")).returncode == 2


def test_show_gives_every_value_and_its_source_from_file_env_and_options(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text("[encode]\npreset = 4\n")
    out = pipecast(
        "config",
        "show",
        "--json",
        "--config",
        str(cfg),
        "--status",
        "tcp://127.0.0.1:9101",
        env={"PIPECAST_HEARTBEAT": "2.5"},
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["config"]["encode"]["preset"] == 4
    assert shown["config"]["node"]["heartbeat"] == 2.5
    assert shown["sources"]["encode.preset"] == f"file {cfg}"
    assert shown["sources"]["node.heartbeat"] == "env PIPECAST_HEARTBEAT"
    assert shown["sources"]["node.status"] == "option --status"
    assert shown["sources"]["encode.crf"] == "default"
    text = pipecast("config", "show", "--config", str(cfg)).stdout
    assert "preset = 4" in text


def test_start_refuses_a_bad_config_before_binding_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[encode]\nreplce = 1\n")
    out = pipecast("start", "--config", str(bad), "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2
    assert "encode.replce: unknown key; allowed: encoder, preset" in out.stderr
    assert not (tmp_path / "d").exists()
