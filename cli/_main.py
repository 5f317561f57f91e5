"""The `pipecast` command: thin click commands that parse, call and print."""

from __future__ import annotations

import functools
import json
import os
import signal
import tempfile
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
    Recovered,
    RemoteError,
    Reset,
    Stale,
    Subscriber,
    Update,
)
from pipecast.transport._control import ControlClient

from ._config import load_node_config
from ._errors import EXIT_CODES, BindFailed, CliError, UnreachableError, UsageError
from ._logging import setup_logging

__all__ = ["main"]


@click.group(epilog=EXIT_CODES)
@click.version_option(package_name="pipecast")
def main() -> None:
    """pipecast: long-running media and model pipelines, watched live."""


@main.group(epilog=EXIT_CODES)
def bench() -> None:
    """Benchmarks that print figures and ratios against raw baselines."""


@bench.command("bus", epilog=EXIT_CODES)
@click.option(
    "--count",
    type=click.IntRange(1000, 10_000_000),
    default=200_000,
    show_default=True,
    help="updates per throughput run",
)
@click.option(
    "--rate",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="updates per second for the latency run",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.5, 600),
    default=5.0,
    show_default=True,
    help="length of the latency run",
)
@click.option(
    "--repeats",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="alternating raw/pipecast throughput runs; medians are reported",
)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_bus(count: int, rate: int, seconds: float, repeats: int, as_json: bool) -> None:
    """The status bus against raw pyzmq PUB->SUB, in one run, across processes."""
    from pipecast.bench import run_bus_bench  # noqa: PLC0415 - heavy, only here

    r = run_bus_bench(count=count, rate=rate, seconds=seconds, repeats=repeats)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(f"throughput   (median of {r.repeats} alternating runs of {r.count:,} updates)")
    click.echo(f"             raw pyzmq {r.raw_throughput:>10,.0f} /s")
    click.echo(
        f"             pipecast  {r.pipecast_throughput:>10,.0f} /s   "
        f"ratio {r.ratio:.2f} (target >= 0.80)"
    )
    click.echo(
        f"latency at {r.latency_rate}/s  pipecast p50 {r.latency_p50_ms:.3f} ms  "
        f"p99 {r.latency_p99_ms:.3f} ms  p99.9 {r.latency_p999_ms:.3f} ms"
    )
    click.echo(
        f"             raw pyzmq p50 {r.raw_latency_p50_ms:.3f} ms  "
        f"p99 {r.raw_latency_p99_ms:.3f} ms"
    )
    click.echo(
        f"CPU per update   raw pub {r.raw_pub_cpu_us:.1f} us  sub {r.raw_sub_cpu_us:.1f} us;"
        f"  pipecast pub {r.pipecast_pub_cpu_us:.1f} us  sub {r.pipecast_sub_cpu_us:.1f} us"
    )
    click.echo(f"replay of {r.replay_count} missed updates: {r.replay_ms:.1f} ms (median of 5)")
    click.echo(f"unrecovered gaps: {r.unrecovered_gaps}")


@bench.command("supervision", epilog=EXIT_CODES)
@click.option("--crashes", type=click.IntRange(5, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_supervision(crashes: int, as_json: bool) -> None:
    """Time from an actor's crash to its death applied by a remote watcher."""
    from pipecast.bench import run_supervision_bench  # noqa: PLC0415

    r = run_supervision_bench(crashes)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(f"actor death -> published -> applied by a remote subscriber, {r.crashes} crashes")
    click.echo(
        f"  median {r.median_ms:.2f} ms  p95 {r.p95_ms:.2f} ms  max {r.max_ms:.2f} ms"
        f"  (target: all <= 100 ms)  restarts seen {r.restarts_seen}/{r.crashes}"
    )


@main.command(epilog=EXIT_CODES)
@click.option("--status", "status_ep", default="tcp://127.0.0.1:7701", show_default=True)
@click.option("--sync", "sync_ep", default="tcp://127.0.0.1:7702", show_default=True)
@click.option("--control", "control_ep", default="tcp://127.0.0.1:7703", show_default=True)
@click.option(
    "--size-mb",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="size of the sample file the demo checksums",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object per update")
def demo(status_ep: str, sync_ep: str, control_ep: str, size_mb: int, as_json: bool) -> None:
    """Start a node, give it a real job, and watch it live until it is done.

    A temporary node (its store in a temp directory) runs the `checksum`
    stage; the demo writes a sample file, enqueues it through the control
    socket, and prints every update of `stage/` and `actor/` topics as a
    remote subscriber applies them, in order, until the file's SHA-256 is in.
    """
    from pipecast.actors import Node, NodeConfig, StageConfig  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="pipecast-demo-") as tmp:
        sample = Path(tmp) / "sample.bin"
        with sample.open("wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1024 * 1024))
        node = Node(
            NodeConfig(
                status_ep,
                sync_ep,
                control_ep,
                data_dir=Path(tmp) / "data",
                stages=(StageConfig("checksum", "checksum", {"step_bytes": 1024 * 1024}),),
            )
        )
        try:
            node.start()
        except BindError as exc:
            raise BindFailed(f"{exc} (is a node already running?)") from None
        try:
            _demo_watch(node, sample, as_json)
        finally:
            node.stop()


def _demo_watch(node: Any, sample: Path, as_json: bool) -> None:
    done = threading.Event()

    def show(ev: Any) -> None:
        if not isinstance(ev, Update):
            if not isinstance(ev, Reset):
                click.echo(f"-- {ev}")
            return
        d = ev.data or {}
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "topic": ev.topic,
                        "seq": ev.seq,
                        "key": ev.key,
                        "data": ev.data,
                        "cid": ev.cid,
                    }
                )
            )
        elif ev.topic.startswith("stage/"):
            click.echo(
                f"[{ev.seq:>4}] {ev.topic:<16} {d.get('status', ''):<8} "
                f"{d.get('progress', 0):6.1%}  done {d.get('done')}  "
                f"queue {d.get('queue')}"
            )
        else:
            click.echo(f"[{ev.seq:>4}] {ev.topic:<16} {d.get('status', '')}")
        if ev.topic == "stage/checksum" and d.get("done") == 1 and d.get("status") == "idle":
            done.set()

    bridge = node.bridge
    try:
        with Subscriber(
            bridge.status_endpoint, bridge.sync_endpoint, ["stage/", "actor/"], on_event=show
        ) as sub:
            sub.wait_synced(10)
            (item_id,) = ControlClient(node.control_endpoint).call("enqueue", paths=[str(sample)])[
                "ids"
            ]
            if not done.wait(600):
                raise CliError("the job did not finish within 10 minutes")
    except PipecastError as exc:
        raise CliError(str(exc)) from None
    _, result, _ = node.store.result(item_id)
    click.echo(f"sha256 {result['sha256']} of {result['bytes']:,} bytes", err=as_json)


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
    click.echo(f"pipecast node up: control {node.control_endpoint}", err=True)
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
        if exc.wire_type in ("bad_request", "unknown_stage", "unknown_op"):
            raise UsageError(str(exc)) from None
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


def _stage_command(op: str) -> Any:
    @_client_options
    @click.argument("stage")
    @click.option("--json", "as_json", is_flag=True)
    def command(ep: Endpoints, stage: str, as_json: bool) -> None:
        result = _call(ep, op, stage=stage)
        if as_json:
            _emit(result, True)
        else:
            click.echo(f"{stage}: {result['status']}")

    command.__doc__ = f"{op.capitalize()} a stage; prints its new state."
    return main.command(op, epilog=EXIT_CODES)(command)


for _op in ("pause", "resume", "toggle"):
    _stage_command(_op)


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
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--stage", default=None, help="the stage to give them to (default: the first)")
def enqueue(
    ep: Endpoints,
    paths: tuple[Path, ...],
    stage: str | None,
) -> None:
    """Queue files for a stage; prints the ids of the work items."""
    args: dict[str, Any] = {"paths": [str(p.resolve()) for p in paths]}
    if stage:
        args["stage"] = stage
    result = _call(ep, "enqueue", **args)
    click.echo(" ".join(str(i) for i in result["ids"]))


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
def watch(
    ep: Endpoints,
    prefixes: tuple[str, ...],
    as_json: bool,
    exit_on_end: bool,
    count: int | None,
) -> None:
    """Follow topics live: the current state, then every update in order.

    Recoveries (gap, history_gone, epoch, stale) are shown as lines of their
    own, never hidden.
    """
    done = threading.Event()
    seen = [0]

    def show(ev: Any) -> None:
        line: dict[str, Any]
        if isinstance(ev, Update):
            line = {
                "event": "update",
                "topic": ev.topic,
                "key": ev.key,
                "seq": ev.seq,
                "data": ev.data,
                "cid": ev.cid,
            }
            seen[0] += 1
        elif isinstance(ev, Reset):
            line = {
                "event": "reset",
                "epoch": ev.epoch,
                "reason": ev.reason.value if ev.reason else None,
                "state": {t: dict(kv) for t, kv in ev.state.items()},
            }
        elif isinstance(ev, Recovered):
            line = {
                "event": "recovered",
                "reason": ev.reason.value,
                "topic": ev.topic,
                "replayed": ev.replayed,
                "snapshot": ev.snapshot,
                "skipped": ev.skipped,
            }
        elif isinstance(ev, Stale):
            line = {"event": "stale", "silent_for": round(ev.silent_for, 3)}
        elif isinstance(ev, Ended):
            line = {"event": "ended", "epoch": ev.epoch}
        else:
            return
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
            click.echo(
                "-- "
                + " ".join(f"{k}={v}" for k, v in line.items() if k != "event")
                + f" ({line['event']})"
            )
        if (count is not None and seen[0] >= count) or (exit_on_end and isinstance(ev, Ended)):
            done.set()

    sub = Subscriber(ep.status, ep.sync, prefixes, on_event=show)
    with sub:
        try:
            sub.wait_synced(ep.timeout)
        except NodeUnreachable as exc:
            raise UnreachableError(str(exc)) from None
        try:
            while not done.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
