"""`pipecast web`: the live state in a browser, served by a gateway that is a client of a node.

The gateway is a remote client like `watch` (its key: the owner's from the
data directory, or `--key`); its token comes from `--token-file` (mode 0600
or stricter) or is made at start, and the one line
`pipecast web up: http://HOST:PORT/?token=TOKEN` says it is serving (scripts
read it). `web_server` builds the same server for `start --http` and
`demo --web`. Runs in the CLI's main thread; uvicorn handles its signals.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import click

from pipecast.transport import (
    BadRequest,
    ClientSecurity,
    KeyRefused,
    NodeUnreachable,
)
from pipecast.web import GatewayConfig, WebServer, gateway_server, new_token, parse_http

from ._app import main
from ._client import Endpoints, client_options
from ._errors import EXIT_CODES, CliError, UnreachableError, UsageError
from ._logging import setup_logging

__all__ = ["http_options", "read_token", "web_server"]

UP = "pipecast web up: {url}"


def read_token(path: Path | None) -> str:
    """The token in `path` (None: a new one). `UsageError` if others may read the file."""
    if path is None:
        return new_token()
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --token-file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"--token-file {path} may be read by others: chmod 600 it")
    if len(text) < 16 or not text.isprintable() or " " in text:
        raise UsageError(f"--token-file {path}: a token is at least 16 printable characters")
    return str(text)


def web_server(
    status: str,
    sync: str,
    control: str,
    security: ClientSecurity | None,
    http: str,
    *,
    token: str,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    insecure_http: bool = False,
    images: Path | None = None,
    timeout: float = 5.0,
) -> WebServer:
    """A gateway for the node at these endpoints, listening on `http` (HOST:PORT);
    `UsageError` (exit 2) for what `gateway_server` refuses."""
    try:
        return gateway_server(
            GatewayConfig(status, sync, control, security, timeout=timeout),
            parse_http(http),
            token=token,
            tls_cert=tls_cert,
            tls_key=tls_key,
            insecure=insecure_http,
            images=images,
        )
    except BadRequest as exc:
        raise UsageError(str(exc)) from None


def http_options(f: Any) -> Any:
    """--token-file, --tls-cert, --tls-key, --insecure-http (shared with start --http)."""
    for decorate in reversed(
        [
            click.option(
                "--token-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="the web token (file mode 0600); default: a new one, printed",
            ),
            click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path)),
            click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path)),
            click.option(
                "--insecure-http",
                is_flag=True,
                help="serve plain HTTP on a non-loopback address (anyone on the path sees "
                "the token)",
            ),
        ]
    ):
        f = decorate(f)
    return f


@main.command(epilog=EXIT_CODES)
@client_options
@click.option(
    "--http",
    default="127.0.0.1:8765",
    show_default=True,
    help="HOST:PORT to serve on (port 0: any free one)",
)
@http_options
@click.option("-v", "--verbose", count=True, help="-v what changes, -vv every request")
def web(
    ep: Endpoints,
    http: str,
    token_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure_http: bool,
    verbose: int,
) -> None:
    """Serve the node's live state and controls to browsers.

    Pages: overview (stages, library, watchers, actors, every other topic),
    jobs (and one job's CRF search as a chart), networks. Controls appear only
    when this gateway's key has role operate. Prints one line,
    `pipecast web up: URL?token=TOKEN`, once it holds the node's state.
    """
    setup_logging(verbose, "text")
    server = web_server(
        ep.status,
        ep.sync,
        ep.control,
        ep.security,
        http,
        token=read_token(token_file),
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure_http=insecure_http,
        images=ep.data_dir / "images",
        timeout=ep.timeout,
    )
    try:
        server.serve(on_up=lambda url: click.echo(UP.format(url=url), err=False))
    except NodeUnreachable as exc:
        raise UnreachableError(str(exc)) from None
    except KeyRefused as exc:
        raise CliError(f"the node refused this gateway's key: {exc}") from None
