"""`pipecast keys`: the node's public key and who may watch or steer it.

Edits `<data dir>/keys/allowed.json` directly (no node needed): a running
node reads the list again at its next handshake and its next request, so a
key allowed here is honoured by the time the command returns, and a revoked
one is refused at its next request. Runs in the CLI's thread; every failure
is a `UsageError` (exit 2) naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pipecast.transport import (
    KeyFileError,
    Keypair,
    PipecastError,
    Role,
    allow_list,
    check_public_key,
    node_public_key,
)

from ._app import main
from ._client import DEFAULT_DATA_DIR
from ._errors import EXIT_CODES, UsageError

__all__ = ["keys"]

_ROLE = click.Choice([r.value for r in Role])


def _data_dir_option(f: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="PIPECAST_DATA_DIR",
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help="the node's data directory (its keys are in keys/)",
    )(f)


def _certificate(keys: Keypair, name: str, role: str) -> str:
    """A ZeroMQ certificate with the secret key: what `--key FILE` reads."""
    return (
        f"#   ZeroMQ CURVE certificate for pipecast client {name!r} (role {role})\n"
        "#   keep it secret: whoever holds this file can act as this client\n"
        "metadata\n"
        "curve\n"
        f'    public-key = "{keys.public}"\n'
        f'    secret-key = "{keys.secret}"\n'
    )


@main.group(epilog=EXIT_CODES)
def keys() -> None:
    """The node's public key, and the client keys it allows (watch or operate).

    A public key that begins with '-' goes after `--`:
    pipecast keys allow alice --role watch -- -AbC...
    """


@keys.command("node")
@_data_dir_option
@click.option("--json", "as_json", is_flag=True, help='print {"public": KEY}')
def node_key(data_dir: Path, as_json: bool) -> None:
    """Print the node's public key (Z85): what a client needs besides its own key."""
    try:
        public = node_public_key(data_dir)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    click.echo(json.dumps({"public": public}) if as_json else public)


@keys.command("add")
@_data_dir_option
@click.argument("name")
@click.option("--role", type=_ROLE, required=True, help="watch: read only; operate: everything")
@click.option("--json", "as_json", is_flag=True, help="print {name, role, public, secret}")
def add(data_dir: Path, name: str, role: str, as_json: bool) -> None:
    """Make a client keypair called NAME and allow it.

    Prints the client's certificate (save it, 0600, and pass it as --key FILE),
    or with --json the keys themselves. The secret is shown once, never stored.
    """
    made = Keypair.new()
    _allow(data_dir, name, made.public, role)
    if as_json:
        doc = {"name": name, "role": role, "public": made.public, "secret": made.secret}
        click.echo(json.dumps(doc))
    else:
        click.echo(_certificate(made, name, role), nl=False)


@keys.command("allow")
@_data_dir_option
@click.argument("name")
@click.argument("public")
@click.option("--role", type=_ROLE, required=True, help="watch: read only; operate: everything")
@click.option("--json", "as_json", is_flag=True, help='print {"name", "role", "public"}')
def allow(data_dir: Path, name: str, public: str, role: str, as_json: bool) -> None:
    """Allow the public key PUBLIC (Z85, made elsewhere) as NAME."""
    try:
        check_public_key(public)
    except PipecastError as exc:
        raise UsageError(str(exc)) from None
    _allow(data_dir, name, public, role)
    if as_json:
        click.echo(json.dumps({"name": name, "role": role, "public": public}))
    else:
        click.echo(f"allowed {name} ({role})")


@keys.command("list")
@_data_dir_option
@click.option("--json", "as_json", is_flag=True, help="print a JSON list")
def list_keys(data_dir: Path, as_json: bool) -> None:
    """List the allowed keys: name, role and public key."""
    try:
        allowed = allow_list(data_dir)
        grants = allowed.grants()
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    if allowed.error is not None:
        raise UsageError(allowed.error)
    if as_json:
        rows = [{"name": g.name, "role": g.role.value, "public": g.public} for g in grants]
        click.echo(json.dumps(rows))
        return
    for g in grants:
        click.echo(f"{g.name:<24} {g.role.value:<8} {g.public}")


@keys.command("revoke")
@_data_dir_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help='print {"revoked": NAME}')
def revoke(data_dir: Path, name: str, as_json: bool) -> None:
    """Stop allowing the key called NAME (its next request is refused)."""
    try:
        removed = allow_list(data_dir).revoke(name)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    if not removed:
        raise UsageError(f"no key called {name!r} is allowed")
    click.echo(json.dumps({"revoked": name}) if as_json else f"revoked {name}")


def _allow(data_dir: Path, name: str, public: str, role: str) -> None:
    try:
        allow_list(data_dir).allow(name, public, Role(role))
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
