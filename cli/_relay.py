"""`pipecast relay`: follow upstream nodes, serve their topics downstream as a node would.

Runs in the foreground until SIGINT or SIGTERM, like `start`; prints one
line `pipecast relay up: status EP sync EP` on stderr when it serves. Its
data directory (default ~/.local/share/pipecast/relay) holds its own keys:
`pipecast keys node|add|allow|list|revoke --data-dir DIR` work on it.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from pipecast.actors import Relay, RelayConfig, parse_upstream
from pipecast.transport import BadRequest, BindError, KeyFileError, PipecastError

from ._app import main
from ._client import DEFAULT_DATA_DIR
from ._errors import EXIT_CODES, INTERRUPTED, BindFailed, CliError, UsageError
from ._logging import setup_logging

__all__ = ["relay"]


@main.command(epilog=EXIT_CODES)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    required=True,
    help="[NAME=]STATUS_EP,SYNC_EP[,NODE_PUBLIC_KEY] (repeatable; named: topics go under NAME/)",
)
@click.option("--status", "status_ep", default="tcp://127.0.0.1:7711", show_default=True)
@click.option("--sync", "sync_ep", default="tcp://127.0.0.1:7712", show_default=True)
@click.option(
    "--control",
    "control_ep",
    default="tcp://127.0.0.1:7713",
    show_default=True,
    help="ping, status and presence for watchers (forwarded to the nodes)",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR / "relay",
    show_default=True,
    help="the relay's own keys and allow-list",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="this relay's client certificate, allowed by the upstream nodes",
)
@click.option("--heartbeat", type=click.FloatRange(0.01, 60), default=1.0, show_default=True)
@click.option("--insecure", is_flag=True, help="no CURVE downstream (loopback or ipc only)")
@click.option("-v", "--verbose", count=True)
def relay(
    upstreams: tuple[str, ...],
    status_ep: str,
    sync_ep: str,
    control_ep: str,
    data_dir: Path,
    key_file: Path | None,
    heartbeat: float,
    insecure: bool,
    verbose: int,
) -> None:
    """Serve one or more nodes' topics to many subscribers, as a node would.

    Each upstream is followed through its own replica (it recovers by
    itself); downstream, the relay has its own epoch, sequence, history and
    keys, so subscribers, `watch` and other relays cannot tell it from a node.
    How each upstream is doing is topic `relay/<name>`. Control stays with
    the node: the relay's --control answers ping, status and presence, and
    forwards its watchers' presence to the node whose topics they watch.
    """
    setup_logging(verbose, "text")
    try:
        cfg = RelayConfig(
            tuple(parse_upstream(u) for u in upstreams),
            data_dir,
            status_ep,
            sync_ep,
            control_ep,
            key_file,
            insecure,
            heartbeat,
        )
    except BadRequest as exc:
        raise UsageError(str(exc)) from None
    node = Relay(cfg)
    try:
        node.start()
    except BindError as exc:
        raise BindFailed(str(exc)) from None
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    except PipecastError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(sig: int, _frame: object) -> None:
        signals.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    assert node.bridge is not None
    click.echo(
        f"pipecast relay up: status {node.bridge.status_endpoint} sync "
        f"{node.bridge.sync_endpoint} control {node.control_endpoint}",
        err=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        node.stop()
    click.echo("pipecast relay stopped", err=True)
    if signal.SIGINT in signals:
        sys.exit(INTERRUPTED)
