"""`pipecast start` and the client commands that talk to a running node."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from pipecast.transport import (
    BadRequest,
    BindError,
    ClientSecurity,
    Ended,
    NodeUnreachable,
    PipecastError,
    Subscriber,
)

from ._app import main
from ._client import Endpoints, RemotePresence, call, client_options, emit, on_node
from ._config_cli import node_config, node_options
from ._errors import EXIT_CODES, INTERRUPTED, BindFailed, CliError, UnreachableError, UsageError
from ._logging import setup_logging
from ._networks import watch_display
from ._web import UP, http_options, read_token, web_server
from .dashboard import Watching, build_view, plain_lines

log = logging.getLogger("pipecast.cli")

# -- the node ---------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@node_options
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="-v what changes (jobs, stages, watchers), -vv every request, -vvv heartbeats too",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="PIPECAST_LOG_FORMAT",
    show_default=True,
)
@click.option(
    "--http",
    default=None,
    help="also serve the web pages on HOST:PORT (see `pipecast web`), in this process",
)
@http_options
def start(
    verbose: int,
    log_format: str,
    http: str | None,
    token_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure_http: bool,
    **params: Any,
) -> None:
    """Run a node in the foreground until SIGINT, SIGTERM or `pipecast stop`.

    Its configuration: options, then PIPECAST_* variables, then --config,
    then the defaults (`pipecast config show` prints the result). With
    --http, the web gateway runs beside it (its up line on stdout).
    """
    from pipecast.actors import Node  # noqa: PLC0415

    setup_logging(verbose, log_format)
    cfg = node_config(params).node
    node = Node(cfg)
    try:
        node.start()
    except BindError as exc:
        raise BindFailed(f"{exc} (is another node running on these endpoints?)") from None
    except BadRequest as exc:  # a library root that is not a folder
        raise UsageError(str(exc)) from None
    except PipecastError as exc:
        raise CliError(str(exc)) from None
    interrupted: list[int] = []

    def on_signal(sig: int, _frame: object) -> None:
        interrupted.append(sig)
        node.stop_requested.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    assert node.bridge is not None
    web = None
    try:
        if http is not None:
            web = web_server(
                node.bridge.status_endpoint,
                node.bridge.sync_endpoint,
                node.control_endpoint,
                None if cfg.insecure else ClientSecurity.owner(cfg.data_dir),
                http,
                token=read_token(token_file),
                tls_cert=tls_cert,
                tls_key=tls_key,
                insecure_http=insecure_http,
                images=cfg.data_dir / "images",
            )
            url = web.start_in_thread()
        # One parseable line: harnesses that bind port 0 read their endpoints here.
        click.echo(
            f"pipecast node up: status {node.bridge.status_endpoint}"
            f" sync {node.bridge.sync_endpoint} control {node.control_endpoint}",
            err=True,
        )
        if web is not None:
            click.echo(UP.format(url=url))
        node.wait()
    finally:
        if web is not None:
            web.stop()
        node.stop()
    click.echo("pipecast node stopped", err=True)
    if signal.SIGINT in interrupted:  # Ctrl-C: 130 as everywhere; SIGTERM or stop: 0
        sys.exit(INTERRUPTED)


@main.command(epilog=EXIT_CODES)
@client_options
@click.option("--json", "as_json", is_flag=True, help='print {"epoch", "ms"}')
def ping(ep: Endpoints, as_json: bool) -> None:
    """Check that a node answers; prints its epoch and round-trip time."""
    t0 = time.monotonic()
    result = call(ep, "ping")
    ms = (time.monotonic() - t0) * 1000
    if as_json:
        emit({"epoch": result["epoch"], "ms": round(ms, 3)}, True)
    else:
        click.echo(f"pong from epoch {result['epoch']} in {ms:.1f} ms")


@main.command(epilog=EXIT_CODES)
@client_options
@click.option("--prefix", default="", help="only topics starting with this")
@click.option("--json", "as_json", is_flag=True)
def status(ep: Endpoints, prefix: str, as_json: bool) -> None:
    """The node's state now: its stages, what the library saved, who watches, its
    networks and its actors (--json: every topic's every key)."""
    result = call(ep, "status", prefix=prefix)
    if as_json:
        emit(result, True)
        return
    if result.get("security") == "insecure":
        click.echo("INSECURE: this node runs without CURVE (started with --insecure)", err=True)
    click.echo(f"epoch {result['epoch']}")
    relay = result.get("relay")
    if isinstance(relay, dict):  # a relay answered: control stays with the node
        for up in relay.get("upstreams") or []:
            where = up.get("node_control") or "not known yet"
            click.echo(f"relay of {up.get('label')}: control stays with the node at {where}")
    for line in plain_lines(build_view(result["topics"])).values():
        click.echo(line)
    actors = {
        t.removeprefix("actor/"): kv.get("state") or {}
        for t, kv in sorted(result["topics"].items())
        if t.startswith(("actor/", "relay/actor/"))
    }
    if actors:
        well = [name for name, s in actors.items() if s.get("status") == "running"]
        click.echo(f"actors running: {', '.join(well) or '-'}")
        for name, s in actors.items():
            if s.get("status") != "running":
                why = f": {s['error']}" if s.get("error") else ""
                click.echo(f"actor {name} {s.get('status')} (restarts {s.get('restarts')}){why}")


@main.command(epilog=EXIT_CODES)
@client_options
@click.option("--json", "as_json", is_flag=True)
def stats(ep: Endpoints, as_json: bool) -> None:
    """Counters and timings of the node's components (telemetry, not status)."""
    result = call(ep, "stats")
    if as_json:
        emit(result, True)
        return
    for part, figures in sorted(result.items()):
        click.echo(f"{part}:")
        for name, value in _flatten(figures):
            click.echo(f"  {name} {value}")


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested maps as dotted names and plain values, for reading."""
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for key, inner in sorted(value.items()):
            out.extend(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, float):
        return [(prefix, f"{value:g}")]
    if isinstance(value, list | tuple):
        return [(prefix, ", ".join(map(str, value)) or "-")]
    return [(prefix, str(value))]


def _stage_command(op: str, doc: str) -> Any:
    @client_options
    @click.argument("stage")
    @click.option(
        "--node",
        "node_name",
        default=None,
        help="the node of the cluster whose stage this is (found through the node asked)",
    )
    @click.option("--json", "as_json", is_flag=True)
    def command(
        ep: Endpoints, stage: str, node_name: str | None, as_json: bool, suspend: bool = False
    ) -> None:
        if node_name is not None:
            ep = on_node(ep, node_name)
        result = call(ep, "suspend" if suspend else op, stage=stage)
        if as_json:
            emit(result, True)
        else:
            click.echo(f"{stage}: {result['status']}")

    command.__doc__ = doc
    if op == "pause":
        command = click.option(
            "--suspend",
            is_flag=True,
            help="stop the current job where it is (SIGSTOP of its processes) instead of "
            "letting it finish",
        )(command)
    return main.command(op, epilog=EXIT_CODES)(command)


_stage_command(
    "pause",
    "Pause a stage: it finishes its current job (pausing -> paused) and starts no new one.",
)
_stage_command("resume", "Resume a paused or suspended stage; prints its new state.")
_stage_command("toggle", "Pause a running stage or resume a paused one.")


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("topic")
@click.argument("key")
@click.argument("data")
@click.option("--json", "as_json", is_flag=True, help='print {"topic", "seq"}')
def publish(ep: Endpoints, topic: str, key: str, data: str, as_json: bool) -> None:
    """Publish KEY of TOPIC (which starts with ext/) as the JSON map DATA (null deletes)."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise UsageError(f"DATA is not JSON: {exc}") from None
    if value is not None and not isinstance(value, dict):
        raise UsageError("DATA must be a JSON object or null")
    result = call(ep, "publish", topic=topic, key=key, data=value)
    if as_json:
        emit(result, True)
    else:
        click.echo(f"{result['topic']} seq {result['seq']}")


@main.command(epilog=EXIT_CODES)
@client_options
@click.option(
    "--wait",
    type=click.FloatRange(0, 3600),
    default=30.0,
    show_default=True,
    help="seconds to wait until the node has stopped (0: ask, and do not wait)",
)
@click.option("--json", "as_json", is_flag=True, help='print {"stopped": true|false}')
def stop(ep: Endpoints, wait: float, as_json: bool) -> None:
    """Ask a node to shut down gracefully, and wait until it has.

    The node's last word is a final heartbeat, sent once everything else has
    stopped: this waits for it and says if it did not come (exit 1).
    """
    ended = threading.Event()
    sub = Subscriber(
        ep.status,
        ep.sync,
        ["actor/bridge"],
        security=ep.security,
        on_event=lambda ev: ended.set() if isinstance(ev, Ended) else None,
    )
    with sub:
        try:
            sub.wait_synced(ep.timeout)
            watching = True
        except NodeUnreachable:
            watching = False  # its status socket is out of reach: it cannot be watched
        call(ep, "shutdown")
        if wait == 0:
            click.echo(json.dumps({"stopped": False}) if as_json else "stopping")
            return
        if not watching:
            raise CliError(
                "asked the node to stop, but cannot tell whether it has: its status "
                f"socket {ep.status} did not answer"
            )
        if not ended.wait(wait):
            raise CliError(
                f"the node said it would stop, but it was still running after {wait:g} s"
            )
    click.echo(json.dumps({"stopped": True}) if as_json else "stopped")


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("prefixes", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per event")
@click.option(
    "--plain",
    is_flag=True,
    help="one line per change of what the dashboard shows (the default when not a terminal)",
)
@click.option(
    "--max-fps",
    type=click.FloatRange(0.2, 30),
    default=4.0,
    show_default=True,
    help="redraws (or --plain lines per stage) a second at most",
)
@click.option(
    "--max-rate",
    type=click.FloatRange(0.1, 1000),
    default=None,
    help="each key's updates at most this many a second, the latest winning "
    "(--json records then carry `skipped`, the updates superseded so far)",
)
@click.option("--exit-on-end", is_flag=True, help="exit when the node stops")
@click.option("--count", type=click.IntRange(1), default=None, help="exit after this many updates")
@click.option(
    "--display",
    default=None,
    help="with one invocation/NETWORK topic: show a display, grid:ROWSxCOLS or "
    "single:OFFSET:STRIDE[:invoking]",
)
def watch(
    ep: Endpoints,
    prefixes: tuple[str, ...],
    as_json: bool,
    plain: bool,
    max_fps: float,
    max_rate: float | None,
    exit_on_end: bool,
    count: int | None,
    display: str | None,
) -> None:
    """Follow topics live: a dashboard on a terminal, else a line per visible change.

    The dashboard redraws the latest state at most --max-fps times a second:
    stages with bars, fps, eta, the file and the CRF search's probes; what
    the library saved; who watches; the latest invocations. Recoveries (gap,
    history_gone, epoch, stale) are shown the moment they happen, never
    hidden. --json prints every event as it comes. --max-rate N tells each
    key's updates at most N times a second, the latest winning. With --display, show what
    that display shows instead, redrawn on every change (count = changes).
    """
    if display is not None:
        watch_display(ep, prefixes, display, as_json, exit_on_end, count)
        return
    if as_json and plain:
        raise UsageError("--json and --plain: choose one")
    mode = "json" if as_json else "plain" if plain or not sys.stdout.isatty() else "dashboard"
    sub: Subscriber | None = None
    watching = Watching(
        mode,
        max_fps=max_fps,
        count=count,
        skipped=None if max_rate is None else lambda: sub.statistics().skipped if sub else 0,
    )

    def on_event(ev: Any) -> None:
        watching.on_event(ev)
        if exit_on_end and isinstance(ev, Ended):
            watching.done.set()

    sub = Subscriber(
        ep.status,
        ep.sync,
        prefixes,
        on_event=on_event,
        security=ep.security,
        max_rate=max_rate,
    )
    with sub:
        try:
            sub.wait_synced(ep.timeout)
        except NodeUnreachable as exc:
            raise UnreachableError(str(exc)) from None
        presence = RemotePresence(ep, prefixes[0] if len(prefixes) == 1 else "*")
        try:
            watching.run(sub, tick=presence.beat)
        finally:  # Ctrl-C included: leave, then the group exits 130
            presence.leave()


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("topic", required=False)
@click.option("--json", "as_json", is_flag=True)
def presence(ep: Endpoints, topic: str | None, as_json: bool) -> None:
    """Who watches what: viewer counts and each watcher's metadata."""
    result = call(ep, "presence.list", **({"topic": topic} if topic else {}))
    if as_json:
        emit(result, True)
        return
    for name, entry in result.items():
        click.echo(f"{name}: {entry['count']} watching")
        for watcher, meta in sorted(entry["watchers"].items()):
            click.echo(f"   {watcher} {json.dumps(meta, sort_keys=True)}")
