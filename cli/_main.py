"""The `pipecast` command: thin click commands that parse, call and print."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from typing import Any

import click

from pipecast.transport import BindError, PipecastError, Reset, Subscriber, Update

from ._errors import EXIT_CODES, BindFailed, CliError

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


@main.command(epilog=EXIT_CODES)
@click.option("--status", "status_ep", default="tcp://127.0.0.1:7701", show_default=True)
@click.option("--sync", "sync_ep", default="tcp://127.0.0.1:7702", show_default=True)
@click.option(
    "--size-mb",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="size of the sample file the demo job checksums",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object per update")
def demo(status_ep: str, sync_ep: str, size_mb: int, as_json: bool) -> None:
    """Run a node's bus and watch a real job's state live over it.

    The job checksums a freshly written sample file chunk by chunk and
    publishes its whole state (status and progress together) on
    `stage/checksum`; a remote subscriber on the status socket prints every
    update as it is applied, in order.
    """
    from pipecast.actors import BridgeConfig, start_bridge  # noqa: PLC0415

    try:
        bridge = start_bridge(BridgeConfig(status_ep, sync_ep))
    except BindError as exc:
        raise BindFailed(str(exc)) from None
    done = threading.Event()

    def show(ev: Any) -> None:
        if isinstance(ev, Update) and ev.topic == "stage/checksum":
            if as_json:
                click.echo(
                    json.dumps({"topic": ev.topic, "seq": ev.seq, "key": ev.key, "data": ev.data})
                )
            else:
                d = ev.data or {}
                click.echo(
                    f"[{ev.seq:>4}] {ev.topic} {d.get('status'):<8} "
                    f"{d.get('progress', 0):6.1%} {d.get('digest') or ''}"
                )
            if ev.data and ev.data.get("status") in ("idle", "failed"):
                done.set()
        elif not isinstance(ev, Reset | Update):
            click.echo(f"-- {ev}")

    try:
        with Subscriber(
            bridge.status_endpoint, bridge.sync_endpoint, ["stage/"], on_event=show
        ) as sub:
            sub.wait_synced(10)
            sub.wait_for(lambda s: s.statistics().received > 0, 10)
            _checksum_job(bridge, size_mb)
            if not done.wait(30):
                raise CliError("the final state never arrived")
    except PipecastError as exc:
        raise CliError(str(exc)) from None
    finally:
        bridge.stop()


def _checksum_job(bridge: Any, size_mb: int) -> None:
    chunk = 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="pipecast-demo-") as tmp:
        path = os.path.join(tmp, "sample.bin")  # noqa: PTH118
        with open(path, "wb") as f:  # noqa: PTH123
            for _ in range(size_mb):
                f.write(os.urandom(chunk))
        digest = hashlib.sha256()
        started = time.monotonic()
        with open(path, "rb") as f:  # noqa: PTH123
            for i in range(size_mb):
                digest.update(f.read(chunk))
                elapsed = time.monotonic() - started
                bridge.publish(
                    "stage/checksum",
                    "state",
                    {
                        "status": "running",
                        "file": path,
                        "progress": (i + 1) / size_mb,
                        "mb_per_s": (i + 1) / elapsed if elapsed > 0 else None,
                        "digest": None,
                    },
                )
        bridge.publish(
            "stage/checksum",
            "state",
            {
                "status": "idle",
                "file": path,
                "progress": 1.0,
                "mb_per_s": None,
                "digest": digest.hexdigest()[:16],
            },
        )
