"""`pipecast demo`: a node, a real job, watched live: the README's main job."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import click

from pipecast.transport import BindError, PipecastError, Reset, Subscriber, Update
from pipecast.transport._control import ControlClient

from ._app import main
from ._errors import EXIT_CODES, BindFailed, CliError


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
