"""The node's config file: a typed schema; every problem named by its key path and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecast.actors import STAGE_KINDS
from pipecast.cli import UsageError
from pipecast.cli.config import STAGE_OPTIONS, load_config, load_node_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_node_config(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_limits_from_the_file_reach_the_node_config(tmp_path: Path) -> None:
    cfg = load_node_config(write(tmp_path, "[limits]\ndepth = 8\nvalue_bytes = 4096\n"))
    assert (cfg.limits.depth, cfg.limits.value_bytes) == (8, 4096)
    assert cfg.limits.request_bytes == 1024 * 1024  # the rest keep their defaults


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[limits]\ndeepness = 8\n", "limits.deepness: unknown key; allowed: request_bytes,"),
        ("[limits]\ndepth = 0\n", "limits.depth: input should be greater than or equal to 1"),
        ("[limits]\ndepth = 'deep'\n", "limits.depth: input should be a valid integer"),
        ("[limits]\nlive_topics = 10\nclient_topics = 20\n", "limits: limits must hold"),
        ("limits = 3\n", "limits: input should be"),
        ("[media]\nreplce = true\n", "media.replce: unknown key; allowed: roots, replace,"),
        ("[media]\nreplace = 1\n", "media.replace: input should be a valid boolean (got 1)"),
        ("[encode]\npreset = 99\n", "encode.preset: input should be less than or equal to 13"),
        ("[encode]\nencoder = 'x'\n", "encode.encoder: input should be 'libsvtav1',"),
        ("[node]\nheartbeat = '2'\n", "node.heartbeat: input should be a valid number"),
        ("[node]\nstatus = 'here'\n", "node.status: string should match pattern"),
        ("[nodes]\nstatus = 'x'\n", "nodes: unknown key; allowed: node, history, limits"),
        ("[[stages]]\nname = 'x'\nkind = 'teleport'\n", "stages[0].kind: unknown stage kind"),
        ("[[stages]]\nname = 'x'\n", "stages[0].kind: required key missing"),
        (
            "[[stages]]\nname='analyze'\nkind='analyze'\noptions={target=1}\n",
            "stages[0].options.target: unknown key",
        ),
        ("[stage.crf_search]\ntarget = 101\n", "stage.crf_search.target: input should be less"),
        ("[stage.crf_search]\ntargte = 93\n", "stage.crf_search.targte: unknown key; allowed:"),
        ("[stage.encoder]\npreset = 4\n", "stage.encoder: no stage of that name in the pipeline"),
        ("[[networks]]\nname = 'n'\nmodels = []\n", "networks[0].models: list should have at"),
        ("[[networks]]\nname='n'\nmodels=['paint']\nretries=11\n", "networks[0].retries: input"),
        (
            "[[networks]]\nname='n'\nmodels=['paint']\npace=[{until=5, delay=1}]\n",
            "networks[0]: pace needs steps ending with one without 'until'",
        ),
        ("[node]\ninsecure = true\nstatus = 'tcp://0.0.0.0:7701'\n", "insecure (no CURVE)"),
    ],
)
def test_a_bad_key_or_value_names_the_key_path_and_what_is_allowed(
    tmp_path: Path, text: str, says: str
) -> None:
    assert says in problems(tmp_path, text)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    message = problems(tmp_path, "[media]\nreplce = 1\n[encode]\npreset = 99\naudio = 'mute'\n")
    assert "3 problems" in message
    for path in ("media.replce", "encode.preset", "encode.audio"):
        assert f"\n  {path}: " in message


def test_a_stage_option_is_set_without_redeclaring_the_pipeline(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "[stage.crf_search]\ntarget = 93\n"))
    stages = {s.name: s for s in loaded.node.stages}
    assert list(stages) == ["analyze", "crf_search", "encode"]
    assert stages["crf_search"].options == {"target": 93}
    assert loaded.sources["stage.crf_search.target"] == f"file {loaded.path}"


def test_stage_tables_lay_options_over_a_declared_pipeline(tmp_path: Path) -> None:
    text = (
        "[[stages]]\nname='analyze'\nkind='analyze'\n"
        "[[stages]]\nname='search'\nkind='crf_search'\noptions={max_probes=3, target=90}\n"
        "[stage.search]\ntarget = 97.5\n"
    )
    (_, search) = load_config(write(tmp_path, text)).node.stages
    assert search.options == {"max_probes": 3, "target": 97.5}


def test_options_beat_the_environment_beats_the_file_beats_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, "[node]\nheartbeat = 2.0\nsync = 'tcp://127.0.0.1:9002'\n")
    loaded = load_config(
        path,
        options={
            "heartbeat": (3.0, "env PIPECAST_HEARTBEAT"),
            "status": ("tcp://127.0.0.1:9001", "option --status"),
        },
    )
    cfg = loaded.node
    assert (cfg.heartbeat_interval, cfg.status_endpoint) == (3.0, "tcp://127.0.0.1:9001")
    assert cfg.sync_endpoint == "tcp://127.0.0.1:9002"
    assert cfg.control_endpoint == "tcp://127.0.0.1:7703"
    assert loaded.sources["node.heartbeat"] == "env PIPECAST_HEARTBEAT"
    assert loaded.sources["node.status"] == "option --status"
    assert loaded.sources["node.sync"] == f"file {path}"
    assert loaded.sources["node.control"] == "default"


def test_a_bad_option_is_named_as_the_option(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"option --heartbeat: input should be less"):
        load_config(None, options={"heartbeat": (100.0, "option --heartbeat")})


def test_roots_given_as_options_replace_the_files(tmp_path: Path) -> None:
    path = write(tmp_path, "[media]\nroots = ['/srv/a']\n")
    loaded = load_config(path, roots=(tmp_path,))
    assert loaded.node.media.roots == (str(tmp_path.absolute()),)
    assert loaded.sources["media.roots"] == "option --root"


def test_the_schema_knows_every_option_of_every_stage_kind() -> None:
    for kind, cls in STAGE_KINDS.items():
        assert set(STAGE_OPTIONS[kind].model_fields) == set(cls.OPTIONS), kind


def test_a_file_that_is_not_toml_or_not_there_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not valid TOML"):
        load_node_config(write(tmp_path, "[node\n"))
    with pytest.raises(UsageError, match="cannot read config"):
        load_node_config(tmp_path / "missing.toml")
