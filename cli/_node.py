"""`pipecast start` and the client commands that talk to a running node."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pipecast.transport import (
    BindError,
    Ended,
    NodeUnreachable,
    PipecastError,
    RemoteError,
    Subscriber,
    Update,
)
from pipecast.transport._control import ControlClient

from ._app import main
from ._config import load_node_config
from ._errors import EXIT_CODES, BindFailed, CliError, UnreachableError, UsageError
from ._events import event_record, note_text
from ._logging import setup_logging

log = logging.getLogger("pipecast.cli")

# -- the node ---------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PIPECAST_CONFIG",
    help="TOML config file",
)
@click.option("--status", "status_ep", envvar="PIPECAST_STATUS", help="status PUB endpoint")
@click.option("--sync", "sync_ep", envvar="PIPECAST_SYNC", help="sync ROUTER endpoint")
@click.option("--control", "control_ep", envvar="PIPECAST_CONTROL", help="control endpoint")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PIPECAST_DATA_DIR",
    help="where the store lives",
)
@click.option("--heartbeat", type=float, envvar="PIPECAST_HEARTBEAT", help="seconds")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="PIPECAST_LOG_FORMAT",
    show_default=True,
)
def start(
    config_path: Path | None,
    status_ep: str | None,
    sync_ep: str | None,
    control_ep: str | None,
    data_dir: Path | None,
    heartbeat: float | None,
    verbose: int,
    log_format: str,
) -> None:
    """Run a node in the foreground until SIGINT, SIGTERM or `pipecast stop`."""
    from pipecast.actors import Node  # noqa: PLC0415

    setup_logging(verbose, log_format)
    cfg = load_node_config(
        config_path,
        status=status_ep,
        sync=sync_ep,
        control=control_ep,
        data_dir=data_dir,
        heartbeat=heartbeat,
    )
    node = Node(cfg)
    try:
        node.start()
    except BindError as exc:
        raise BindFailed(f"{exc} (is another node running on these endpoints?)") from None
    except PipecastError as exc:
        raise CliError(str(exc)) from None
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.stop_requested.set())
    assert node.bridge is not None
    # One parseable line: harnesses that bind port 0 read their endpoints here.
    click.echo(
        f"pipecast node up: status {node.bridge.status_endpoint}"
        f" sync {node.bridge.sync_endpoint} control {node.control_endpoint}",
        err=True,
    )
    try:
        node.wait()
    finally:
        node.stop()
    click.echo("pipecast node stopped", err=True)


@dataclass(frozen=True, slots=True)
class Endpoints:
    control: str
    status: str
    sync: str
    timeout: float


def _client_options(f: Any) -> Any:
    """Add --control/--status/--sync/--timeout, handed to `f` as one `ep: Endpoints`."""

    @functools.wraps(f)
    def wrapper(
        control_ep: str, status_ep: str, sync_ep: str, timeout: float, **kwargs: Any
    ) -> Any:
        return f(ep=Endpoints(control_ep, status_ep, sync_ep, timeout), **kwargs)

    wrapper = click.option(
        "--timeout",
        type=click.FloatRange(0.1, 3600),
        default=5.0,
        show_default=True,
        envvar="PIPECAST_TIMEOUT",
        help="seconds to wait for the node",
    )(wrapper)
    wrapper = click.option(
        "--sync",
        "sync_ep",
        default="tcp://127.0.0.1:7702",
        show_default=True,
        envvar="PIPECAST_SYNC",
    )(wrapper)
    wrapper = click.option(
        "--status",
        "status_ep",
        default="tcp://127.0.0.1:7701",
        show_default=True,
        envvar="PIPECAST_STATUS",
    )(wrapper)
    return click.option(
        "--control",
        "control_ep",
        default="tcp://127.0.0.1:7703",
        show_default=True,
        envvar="PIPECAST_CONTROL",
    )(wrapper)


def _call(ep: Endpoints, op: str, **args: Any) -> Any:
    try:
        return ControlClient(ep.control, ep.timeout).call(op, **args)
    except NodeUnreachable as exc:
        raise UnreachableError(str(exc)) from None
    except RemoteError as exc:
        if exc.wire_type in ("bad_request", "unknown_stage", "unknown_op", "unknown_network"):
            raise UsageError(str(exc)) from None
        ready_at = exc.details().get("ready_at")
        if isinstance(ready_at, int | float):
            when = time.strftime("%H:%M:%S", time.localtime(ready_at))
            left = max(0.0, ready_at - time.time())
            raise CliError(
                f"{exc} (prompts are accepted again at {when}, in {left:.1f} s)"
            ) from None
        raise CliError(str(exc)) from None


def _emit(result: Any, as_json: bool) -> None:
    click.echo(json.dumps(result, indent=None if as_json else 2, sort_keys=not as_json))


@main.command(epilog=EXIT_CODES)
@_client_options
def ping(ep: Endpoints) -> None:
    """Check that a node answers; prints its epoch and round-trip time."""
    t0 = time.monotonic()
    result = _call(ep, "ping")
    click.echo(f"pong from epoch {result['epoch']} in {(time.monotonic() - t0) * 1000:.1f} ms")


@main.command(epilog=EXIT_CODES)
@_client_options
@click.option("--prefix", default="", help="only topics starting with this")
@click.option("--json", "as_json", is_flag=True)
def status(ep: Endpoints, prefix: str, as_json: bool) -> None:
    """Every actor's current state."""
    result = _call(ep, "status", prefix=prefix)
    if as_json:
        _emit(result, True)
        return
    for topic, kv in sorted(result["topics"].items()):
        for key, value in sorted(kv.items()):
            click.echo(f"{topic} {key} {json.dumps(value, sort_keys=True)}")


@main.command(epilog=EXIT_CODES)
@_client_options
@click.option("--json", "as_json", is_flag=True)
def stats(ep: Endpoints, as_json: bool) -> None:
    """Counters and timings of the node's components (telemetry, not status)."""
    _emit(_call(ep, "stats"), as_json)


def _stage_command(op: str, doc: str) -> Any:
    @_client_options
    @click.argument("stage")
    @click.option("--json", "as_json", is_flag=True)
    def command(ep: Endpoints, stage: str, as_json: bool, suspend: bool = False) -> None:
        result = _call(ep, "suspend" if suspend else op, stage=stage)
        if as_json:
            _emit(result, True)
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
@_client_options
@click.argument("topic")
@click.argument("key")
@click.argument("data")
def publish(ep: Endpoints, topic: str, key: str, data: str) -> None:
    """Publish KEY of TOPIC (which starts with ext/) as the JSON map DATA (null deletes)."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise UsageError(f"DATA is not JSON: {exc}") from None
    if value is not None and not isinstance(value, dict):
        raise UsageError("DATA must be a JSON object or null")
    result = _call(ep, "publish", topic=topic, key=key, data=value)
    click.echo(f"{result['topic']} seq {result['seq']}")


@main.command(epilog=EXIT_CODES)
@_client_options
def stop(ep: Endpoints) -> None:
    """Ask a node to shut down gracefully."""
    _call(ep, "shutdown")
    click.echo("stopping")


@main.command(epilog=EXIT_CODES)
@_client_options
@click.argument("prefixes", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
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
    exit_on_end: bool,
    count: int | None,
    display: str | None,
) -> None:
    """Follow topics live: the current state, then every update in order.

    Recoveries (gap, history_gone, epoch, stale) are shown as lines of their
    own, never hidden. With --display, show what that display shows instead,
    redrawn on every change (count = changes).
    """
    if display is not None:
        from ._networks import watch_display  # noqa: PLC0415 - it imports this module

        watch_display(ep, prefixes, display, as_json, exit_on_end, count)
        return
    done = threading.Event()
    seen = [0]

    def show(ev: Any) -> None:
        line = event_record(ev)
        if line is None:
            return
        if isinstance(ev, Update):
            seen[0] += 1
        if as_json:
            click.echo(json.dumps(line))
        elif line["event"] == "update":
            click.echo(f"[{ev.seq}] {ev.topic} {ev.key} {json.dumps(ev.data, sort_keys=True)}")
        elif line["event"] == "reset":
            click.echo(f"-- state of epoch {line['epoch']} ({line['reason'] or 'join'})")
            for topic, kv in sorted(line["state"].items()):
                for key, value in sorted(kv.items()):
                    click.echo(f"   {topic} {key} {json.dumps(value, sort_keys=True)}")
        else:
            click.echo(note_text(line))
        if (count is not None and seen[0] >= count) or (exit_on_end and isinstance(ev, Ended)):
            done.set()

    sub = Subscriber(ep.status, ep.sync, prefixes, on_event=show)
    with sub:
        try:
            sub.wait_synced(ep.timeout)
        except NodeUnreachable as exc:
            raise UnreachableError(str(exc)) from None
        presence = RemotePresence(ep, prefixes[0] if len(prefixes) == 1 else "*")
        try:
            while not done.wait(presence.interval):
                presence.beat()
        except KeyboardInterrupt:
            pass
        finally:
            presence.leave()


class RemotePresence:
    """`watch` is a remote watcher: it joins presence, heartbeats, and leaves.

    Presence is best effort here: a node without a control socket in reach
    still gets watched, and the lease ends by itself if we vanish.
    """

    interval = 1.0

    def __init__(self, ep: Endpoints, topic: str, display: str = "lines") -> None:
        self.client = ControlClient(ep.control, min(ep.timeout, 2.0))
        self.watcher = f"cli-{socket.gethostname()}-{os.getpid()}"
        self.topic = topic
        self.display = display
        self.joined = False
        self._join()

    def _join(self) -> None:
        try:
            self.client.call(
                "presence.join",
                watcher=self.watcher,
                topic=self.topic,
                meta={"host": socket.gethostname(), "display": self.display},
                ttl=2.5,  # beats every 1 s: one may be lost, a vanished watcher is gone in 3 s
            )
            self.joined = True
        except PipecastError as exc:
            log.info("watch: presence join failed: %s", exc)

    def beat(self) -> None:
        if not self.joined:
            self._join()
            return
        try:
            known = self.client.call("presence.heartbeat", watcher=self.watcher)["known"]
        except PipecastError:
            return
        if not known:  # our lease ended (the node restarted, or we were away): rejoin
            self._join()

    def leave(self) -> None:
        if self.joined:
            with contextlib.suppress(PipecastError):
                self.client.call("presence.leave", watcher=self.watcher)


@main.command(epilog=EXIT_CODES)
@_client_options
@click.argument("topic", required=False)
@click.option("--json", "as_json", is_flag=True)
def presence(ep: Endpoints, topic: str | None, as_json: bool) -> None:
    """Who watches what: viewer counts and each watcher's metadata."""
    result = _call(ep, "presence.list", **({"topic": topic} if topic else {}))
    if as_json:
        _emit(result, True)
        return
    for name, entry in result.items():
        click.echo(f"{name}: {entry['count']} watching")
        for watcher, meta in sorted(entry["watchers"].items()):
            click.echo(f"   {watcher} {json.dumps(meta, sort_keys=True)}")
