"""`pipecast demo`: a sample clip through the media pipeline, watched live.

This is the README's main job.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import click

from pipecast.transport import BindError, PipecastError, Reset, Subscriber, Update

from ._app import main
from ._errors import EXIT_CODES, BindFailed, CliError
from ._events import event_record, note_text


@main.command(epilog=EXIT_CODES)
@click.option("--status", "status_ep", default="tcp://127.0.0.1:7701", show_default=True)
@click.option("--sync", "sync_ep", default="tcp://127.0.0.1:7702", show_default=True)
@click.option("--control", "control_ep", default="tcp://127.0.0.1:7703", show_default=True)
@click.option(
    "--seconds",
    type=click.FloatRange(1, 600),
    default=8.0,
    show_default=True,
    help="length of the sample clip",
)
@click.option(
    "--json", "as_json", is_flag=True, help="print one JSON object per event (as `watch --json`)"
)
def demo(status_ep: str, sync_ep: str, control_ep: str, seconds: float, as_json: bool) -> None:
    """Make a sample clip, run it through the pipeline, and watch it live until it is encoded.

    In a temporary library, ffmpeg's lavfi sources make a clip (H.264 and an
    audio track); a temporary node (its store in a temp directory) analyzes
    it, gives it a CRF, encodes it to AV1, verifies it and commits it beside
    the original. Every update of the `stage/` topics is printed as a remote
    subscriber applies it, in order, until the file is encoded.
    """
    from pipecast.actors import MediaPolicy, Node, NodeConfig, make_clip  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="pipecast-demo-") as tmp:
        library = Path(tmp) / "library"
        library.mkdir()
        try:
            clip = make_clip(library / "sample.mkv", seconds=seconds, size="640x360", rate=24)
        except PipecastError as exc:
            raise CliError(str(exc)) from None
        node = Node(
            NodeConfig(
                status_ep,
                sync_ep,
                control_ep,
                data_dir=Path(tmp) / "data",
                networks=(),
                media=MediaPolicy(roots=(str(library),)),  # its own library, nothing else
            )
        )
        try:
            node.start()
        except BindError as exc:
            raise BindFailed(f"{exc} (is a node already running?)") from None
        try:
            _demo_watch(node, clip, as_json)
        finally:
            node.stop()


def _line(ev: Update) -> str:
    d = ev.data or {}
    detail = d.get("detail") or {}
    item = d.get("item") or {}
    name = Path(item["path"]).name if item.get("path") else ""
    extra = ""
    if "probe" in detail and detail.get("crf") is not None:
        done = detail.get("probes") or []
        last = f" | last crf {done[-1]['crf']:g} VMAF {done[-1]['mean']:.2f}" if done else ""
        extra = (
            f" probe {detail['probe']} crf {detail['crf']:g} {detail['phase']} "
            f"{detail['sample']}{last}"
        )
    elif "fps" in detail:
        eta = detail.get("eta")
        extra = (
            f" {detail.get('phase', '')} frame {detail['frames']}/{detail['total_frames']}"
            f" {detail['fps']:.1f} fps eta {'-' if eta is None else f'{eta:.1f} s'}"
        )
    return (
        f"[{ev.seq:>4}] {ev.topic:<16} {d.get('status', ''):<9} {100 * d.get('progress', 0):5.1f} %"
        f" {name}{extra}  done {d.get('done')} queue {d.get('queue')} failed {d.get('failed')}"
    )


def _demo_watch(node: Any, clip: Path, as_json: bool) -> None:
    done = threading.Event()

    def show(ev: Any) -> None:
        # --json prints every event as `watch --json` does (a recovery or a
        # stale spell on a loaded machine is a line of its own, never text
        # in the middle of the JSON stream); the text form skips the join.
        record = event_record(ev)
        if record is None:
            return
        if as_json:
            click.echo(json.dumps(record))
        elif isinstance(ev, Update):
            click.echo(_line(ev))
        elif not isinstance(ev, Reset):
            click.echo(note_text(record))
        if not isinstance(ev, Update):
            return
        d = ev.data or {}
        ended = (d.get("done") or 0) + (d.get("failed") or 0) + (d.get("skipped") or 0)
        if ev.topic == "stage/encode" and ended >= 1 and d.get("status") == "idle":
            done.set()
        if ev.topic == "stage/analyze" and d.get("failed"):
            done.set()

    bridge = node.bridge
    try:
        with Subscriber(
            bridge.status_endpoint,
            bridge.sync_endpoint,
            ["stage/"],
            on_event=show,
            security=node.owner,
        ) as sub:
            sub.wait_synced(10)
            client = node.client()
            client.call("enqueue", paths=[str(clip)])
            if not done.wait(600):
                raise CliError("the clip was not encoded within 10 minutes")
            (job,) = client.call("jobs")["jobs"]
    except PipecastError as exc:
        raise CliError(str(exc)) from None
    if job["state"] != "encoded":
        raise CliError(f"the sample ended {job['state']}: {job['failure'] or job['skip_reason']}")
    ratio = job["output_size"] / job["size"]
    search = job.get("search") or {}
    how = (
        f" (search: {search['probes']} probes, predicted VMAF {search['predicted_vmaf']:.2f})"
        if "predicted_vmaf" in search
        else ""
    )
    click.echo(
        f"encoded {clip.name}: {job['size']:,} -> {job['output_size']:,} bytes "
        f"({ratio:.0%}) at crf {job['crf']:g}{how}, verified and committed",
        err=as_json,
    )
