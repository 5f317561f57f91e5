"""The CLI's client layer: the endpoint options, one control call, printing.

Every client command takes `--control/--status/--sync/--timeout` through
`client_options` and reaches the node through `call`, which turns the node's
errors into CLI errors with their exit codes (a bad request is a usage
error, exit 2; an unreachable node exit 3). `RemotePresence` makes a
watching command a remote watcher in the node's presence. All of it runs in
the command's (main) thread and blocks at most the `--timeout` per call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pipecast.transport import (
    KEYS_DIR,
    OWNER_KEY,
    ClientSecurity,
    ControlClient,
    ErrorType,
    KeyFileError,
    NodeUnreachable,
    PipecastError,
    RemoteError,
    read_keypair,
)

from ._errors import CliError, UnreachableError, UsageError

__all__ = ["Endpoints", "RemotePresence", "call", "client_options", "emit", "on_node"]

log = logging.getLogger("pipecast.cli")

# the node's answers that mean the command line asked for something wrong (exit 2)
_USAGE_ERRORS = frozenset(
    {
        ErrorType.BAD_REQUEST,
        ErrorType.UNKNOWN_STAGE,
        ErrorType.UNKNOWN_OP,
        ErrorType.UNKNOWN_NETWORK,
        ErrorType.OUTSIDE_ROOTS,
    }
)


DEFAULT_DATA_DIR = Path.home() / ".local/share/pipecast"


@dataclass(frozen=True)  # not slotted: `security` is computed once, on first use
class Endpoints:
    """Where the node is, how long to wait, and the keys to present (see `security`)."""

    control: str
    status: str
    sync: str
    timeout: float
    data_dir: Path = DEFAULT_DATA_DIR
    key: Path | None = None
    node_key: str | None = None
    insecure: bool = False

    @functools.cached_property
    def security(self) -> ClientSecurity | None:
        """The client's CURVE keys: none with --insecure; --key (with --node-key, or the
        node's public key from the data directory); else the owner's key from the data
        directory. `UsageError` (exit 2) naming the file when a key cannot be read."""
        if self.insecure:
            return None
        try:
            if self.key is None:
                return ClientSecurity.owner(self.data_dir)
            node = self.node_key or read_keypair(self.data_dir / KEYS_DIR / "node.key").public
            return ClientSecurity.from_key_file(self.key, node)
        except KeyFileError as exc:
            raise UsageError(
                f"{exc} (give --data-dir of the node, or --key FILE and --node-key KEY, "
                "or --insecure for a node started so)"
            ) from None


def client_options(f: Any) -> Any:
    """Add --control/--status/--sync/--timeout and the key options, handed to `f` as
    one `ep: Endpoints`."""

    @functools.wraps(f)
    def wrapper(
        control_ep: str,
        status_ep: str,
        sync_ep: str,
        timeout: float,
        data_dir: Path | None,
        key_file: Path | None,
        node_key: str | None,
        insecure: bool,
        **kwargs: Any,
    ) -> Any:
        ep = Endpoints(
            control_ep,
            status_ep,
            sync_ep,
            timeout,
            data_dir or DEFAULT_DATA_DIR,
            key_file,
            node_key,
            insecure,
        )
        return f(ep=ep, **kwargs)

    wrapper = click.option(
        "--insecure",
        is_flag=True,
        envvar="PIPECAST_INSECURE",
        help="no CURVE: for a node started with --insecure",
    )(wrapper)
    wrapper = click.option(
        "--node-key",
        envvar="PIPECAST_NODE_KEY",
        help="the node's public key (Z85), with --key (default: from the data directory)",
    )(wrapper)
    wrapper = click.option(
        "--key",
        "key_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="PIPECAST_KEY",
        help="this client's key file (ZeroMQ certificate); default: the owner's",
    )(wrapper)
    wrapper = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="PIPECAST_DATA_DIR",
        help="the node's data directory, where the owner's key is",
    )(wrapper)
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


def call(ep: Endpoints, op: str, **args: Any) -> Any:
    try:
        return ControlClient(ep.control, ep.timeout, ep.security).call(op, **args)
    except NodeUnreachable as exc:
        raise UnreachableError(str(exc)) from None
    except RemoteError as exc:
        if exc.wire_type in _USAGE_ERRORS:
            raise UsageError(str(exc)) from None
        ready_at = exc.details().get("ready_at")
        if isinstance(ready_at, int | float):
            when = time.strftime("%H:%M:%S", time.localtime(ready_at))
            left = max(0.0, ready_at - time.time())
            raise CliError(
                f"{exc} (prompts are accepted again at {when}, in {left:.1f} s)"
            ) from None
        raise CliError(str(exc)) from None


def on_node(ep: Endpoints, name: str) -> Endpoints:
    """The endpoints of the cluster's node `name`, found through the node `ep` names (its
    `nodes` op), with the same client key (yours: it must be allowed on that node too).
    `UsageError` (exit 2) if the cluster has no node of that name."""
    known = {n["name"]: n for n in call(ep, "nodes")["nodes"]}
    node = known.get(name)
    if node is None:
        raise UsageError(
            f"no node {name!r} in this library's store (known: {', '.join(known) or 'none'})"
        )
    return dataclasses.replace(
        ep,
        control=node["control"],
        status=node["status"],
        sync=node["sync"],
        key=ep.key or ep.data_dir / KEYS_DIR / f"{OWNER_KEY}.key_secret",
        node_key=node["public_key"],
    )


def emit(result: Any, as_json: bool) -> None:
    click.echo(json.dumps(result, indent=None if as_json else 2, sort_keys=not as_json))


class RemotePresence:
    """`watch` is a remote watcher: it joins presence, heartbeats, and leaves.

    Presence is best effort here: a node without a control socket in reach
    still gets watched, and the lease ends by itself if we vanish.
    """

    interval = 1.0

    def __init__(self, ep: Endpoints, topic: str, display: str = "lines") -> None:
        self.client = ControlClient(ep.control, min(ep.timeout, 2.0), ep.security)
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
