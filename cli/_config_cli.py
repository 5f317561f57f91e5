"""`pipecast config show|check`, and the node options `start` shares with them.

`node_options` declares the options that configure a node (each also read
from a `PIPECAST_*` variable); `node_config` merges them with the file the
way `start` does, noting for each whether it came from the command line or
the environment. Runs in the CLI's thread; a bad value is a `UsageError`
(exit 2) that names the key path and the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ._app import main
from ._errors import EXIT_CODES
from .config import LoadedConfig, as_toml, document, load_config, sources

__all__ = ["node_config", "node_options"]

F = TypeVar("F", bound=Callable[..., Any])

# [node] key -> (click parameter, option, environment variable)
_NODE_OPTIONS = {
    "status": ("status_ep", "--status", "PIPECAST_STATUS"),
    "sync": ("sync_ep", "--sync", "PIPECAST_SYNC"),
    "control": ("control_ep", "--control", "PIPECAST_CONTROL"),
    "data_dir": ("data_dir", "--data-dir", "PIPECAST_DATA_DIR"),
    "heartbeat": ("heartbeat", "--heartbeat", "PIPECAST_HEARTBEAT"),
    "insecure": ("insecure", "--insecure", "PIPECAST_INSECURE"),
    "name": ("name", "--name", "PIPECAST_NAME"),
    "store": ("store", "--store", "PIPECAST_STORE"),
}


def node_options(f: F) -> F:
    """The options that configure a node: --config, endpoints, data dir, heartbeat, roots."""
    decorators = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="PIPECAST_CONFIG",
            help="TOML config file (docs/config.md)",
        ),
        click.option("--status", "status_ep", envvar="PIPECAST_STATUS", help="status PUB endpoint"),
        click.option("--sync", "sync_ep", envvar="PIPECAST_SYNC", help="sync ROUTER endpoint"),
        click.option("--control", "control_ep", envvar="PIPECAST_CONTROL", help="control endpoint"),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="PIPECAST_DATA_DIR",
            help="where the store and keys live",
        ),
        click.option("--heartbeat", type=float, envvar="PIPECAST_HEARTBEAT", help="seconds"),
        click.option(
            "--root",
            "roots",
            multiple=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="a library root: the node enqueues from, reads and replaces in these only "
            "(repeatable; replaces [media] roots)",
        ),
        click.option(
            "--name",
            envvar="PIPECAST_NAME",
            help="this node's name in a shared store (default: local)",
        ),
        click.option(
            "--store",
            envvar="PIPECAST_STORE",
            help="postgresql://... : share the library with the other nodes of a cluster "
            "(default: this node's own SQLite); a password is best left to PGPASSWORD or "
            "~/.pgpass, out of the process list",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            default=None,
            envvar="PIPECAST_INSECURE",
            help="no CURVE (only with loopback or ipc endpoints): any local user may "
            "watch and steer",
        ),
    ]
    for decorate in reversed(decorators):
        f = decorate(f)
    return f


def node_config(params: dict[str, Any]) -> LoadedConfig:
    """The effective config from `node_options`' values (in the current click context)."""
    ctx = click.get_current_context()
    given: dict[str, tuple[Any, str]] = {}
    for key, (param, option, env) in _NODE_OPTIONS.items():
        value = params.get(param)
        if value is None or (key == "insecure" and not value):
            continue
        from_env = ctx.get_parameter_source(param) is ParameterSource.ENVIRONMENT
        given[key] = (
            str(value) if key == "data_dir" else value,
            f"env {env}" if from_env else f"option {option}",
        )
    return load_config(params.get("config_path"), tuple(params.get("roots") or ()), given)


@main.group()
def config() -> None:
    """The node's configuration: what it is, and whether a file is valid."""


@config.command(epilog=EXIT_CODES)
@node_options
@click.option("--json", "as_json", is_flag=True, help='print {"config": ..., "sources": ...}')
def show(as_json: bool, **params: Any) -> None:
    """Print the effective configuration and where each value came from.

    Reads the file, options and environment as `pipecast start` would (same
    options), without starting anything. The text is itself a config file.
    """
    loaded = node_config(params)
    doc = document(loaded)
    where = sources(loaded, doc)
    if as_json:
        click.echo(json.dumps({"config": doc, "sources": where}, indent=2))
    else:
        click.echo(as_toml(doc, where))


@config.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help='print {"file", "ok"} when valid')
def check(file: Path, as_json: bool) -> None:
    """Check a config file: exit 0 if a node would start with it, else 2 with every problem."""
    loaded = load_config(file)
    if as_json:
        click.echo(json.dumps({"file": str(file), "ok": True}))
        return
    stages = ", ".join(s.name for s in loaded.node.stages) or "none"
    networks = ", ".join(n.network for n in loaded.node.networks) or "none"
    click.echo(f"{file}: valid (stages: {stages}; networks: {networks})")
