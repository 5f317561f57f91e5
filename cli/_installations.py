"""`pipecast installations`: named screens, each a network in a display mode, switched live.

A thin client of the node's `installations.*` ops (docs/PROTOCOL.md,
"Networks"): the node keeps them in its store and publishes each on
`installation/<name>`, which kiosk pages (`/display/NAME` of `pipecast web`)
follow. Runs in the CLI's thread; a request the node refuses (an unknown
network, a bad display) exits 2 with its message, like bad options.
"""

from __future__ import annotations

import json

import click

from ._app import main
from ._client import Endpoints, call, client_options
from ._errors import EXIT_CODES

__all__ = ["installations"]

_DISPLAY = "grid:ROWSxCOLS or single:OFFSET:STRIDE[:invoking]"


def _line(inst: dict[str, object]) -> str:
    return f"{inst['name']}: {inst['network']} as {inst['display']}"


@main.group(epilog=EXIT_CODES)
def installations() -> None:
    """Named screens: which network each shows, and how; switched live."""


@installations.command("add", epilog=EXIT_CODES)
@client_options
@click.argument("name")
@click.option("--network", required=True, help="the network it shows")
@click.option("--display", required=True, help=_DISPLAY)
@click.option("--json", "as_json", is_flag=True)
def add(ep: Endpoints, name: str, network: str, display: str, as_json: bool) -> None:
    """Add the installation NAME."""
    result = call(ep, "installations.add", name=name, network=network, display=display)
    click.echo(json.dumps(result) if as_json else f"added {_line(result)}")


@installations.command("list", epilog=EXIT_CODES)
@client_options
@click.option("--json", "as_json", is_flag=True)
def list_installations(ep: Endpoints, as_json: bool) -> None:
    """The installations: name, network, display."""
    result = call(ep, "installations.list")["installations"]
    if as_json:
        click.echo(json.dumps(result))
        return
    for inst in result:
        click.echo(_line(inst))
    if not result:
        click.echo("no installations (pipecast installations add NAME --network N --display D)")


@installations.command("switch", epilog=EXIT_CODES)
@client_options
@click.argument("name")
@click.option("--network", default=None, help="the network it shows from now on")
@click.option("--display", default=None, help=_DISPLAY)
@click.option("--json", "as_json", is_flag=True)
def switch(
    ep: Endpoints, name: str, network: str | None, display: str | None, as_json: bool
) -> None:
    """Switch NAME to another network and/or display; its screens follow at once."""
    if network is None and display is None:
        raise click.UsageError("give --network, --display or both")
    args = {k: v for k, v in (("network", network), ("display", display)) if v is not None}
    result = call(ep, "installations.switch", name=name, **args)
    click.echo(json.dumps(result) if as_json else f"switched {_line(result)}")


@installations.command("remove", epilog=EXIT_CODES)
@client_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def remove(ep: Endpoints, name: str, as_json: bool) -> None:
    """Remove the installation NAME (its screens show that it is gone)."""
    result = call(ep, "installations.remove", name=name)
    click.echo(json.dumps(result) if as_json else f"removed {result['removed']}")
