"""`pipecast demo`: a sample clip through the media pipeline, watched live.

This is the README's main job: a newcomer's first look, so it shows the live
dashboard on a terminal (`--plain` and `--json` otherwise), keeps the file it
encoded, says where, and ends with a summary.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pipecast.transport import BindError, ClientSecurity, PipecastError, Subscriber, Update
from pipecast.web import new_token

from ._app import main
from ._client import DEFAULT_DATA_DIR
from ._errors import EXIT_CODES, BindFailed, CliError, UsageError
from ._web import UP, web_server
from .dashboard import Watching, duration_text

__all__: list[str] = []

_DEFAULTS = ("tcp://127.0.0.1:7701", "tcp://127.0.0.1:7702", "tcp://127.0.0.1:7703")
_ANY = "tcp://127.0.0.1:*"


@main.command(epilog=EXIT_CODES)
@click.option("--status", "status_ep", default=None, help=f"default {_DEFAULTS[0]}")
@click.option("--sync", "sync_ep", default=None, help=f"default {_DEFAULTS[1]}")
@click.option("--control", "control_ep", default=None, help=f"default {_DEFAULTS[2]}")
@click.option(
    "--seconds",
    type=click.FloatRange(1, 600),
    default=8.0,
    show_default=True,
    help="length of the sample clip",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR / "demo",
    show_default=True,
    help="where the sample and its encode are kept",
)
@click.option("--plain", is_flag=True, help="a line per visible change instead of the dashboard")
@click.option(
    "--json", "as_json", is_flag=True, help="print one JSON object per event (as `watch --json`)"
)
@click.option(
    "--web",
    is_flag=True,
    help="also serve the web pages (127.0.0.1:8765, or a free port) and keep them up "
    "after the encode until Ctrl-C",
)
def demo(
    status_ep: str | None,
    sync_ep: str | None,
    control_ep: str | None,
    seconds: float,
    keep: Path,
    plain: bool,
    as_json: bool,
    web: bool,
) -> None:
    """Make a sample clip, run it through the pipeline, and watch it live until it is encoded.

    In a library of its own, ffmpeg's lavfi sources make a clip (H.264 and an
    audio track); a temporary node analyzes it, searches its CRF for the
    target VMAF, encodes it to AV1, verifies it and commits it beside the
    original. The dashboard shows every stage as a remote subscriber applies
    its state. The sample and its encode are kept in --keep. Without
    endpoints it uses the default ports, or free ones if a node holds those.
    With --web, the same run is served to browsers too (its link printed).
    """
    if as_json and plain:
        raise UsageError("--json and --plain: choose one")
    mode = "json" if as_json else "plain" if plain or not sys.stdout.isatty() else "dashboard"
    console = Console(stderr=as_json)  # stdout is JSON's alone
    given = (status_ep, sync_ep, control_ep)
    with tempfile.TemporaryDirectory(prefix="pipecast-demo-") as tmp:
        library = Path(tmp) / "library"
        library.mkdir()
        clip = _clip(library, seconds)
        node = _start(given, Path(tmp), library, console)
        server = None
        try:
            if web:
                server = _serve(node, Path(tmp) / "data")
                click.echo(UP.format(url=server.url), err=as_json)
            job = _watch(node, clip, mode, console)
            kept = _keep(job, clip, keep)
            _summary(job, kept, console)
            if server is not None:
                console.print(f"the web pages stay up at {server.base}: Ctrl-C ends the demo")
                with contextlib.suppress(KeyboardInterrupt):  # the way a demo --web ends
                    threading.Event().wait()
        finally:
            if server is not None:
                server.stop()
            node.stop()


def _serve(node: Any, data_dir: Path) -> Any:
    """The web gateway beside the demo's node: the usual port, or any free one."""
    for http in ("127.0.0.1:8765", "127.0.0.1:0"):
        try:
            server = web_server(
                node.bridge.status_endpoint,
                node.bridge.sync_endpoint,
                node.control_endpoint,
                ClientSecurity.owner(data_dir),
                http,
                token=new_token(),
                images=data_dir / "images",
            )
        except UsageError:
            continue  # the port is taken
        server.start_in_thread()
        return server
    raise CliError("no port for the web pages")


def _clip(library: Path, seconds: float) -> Path:
    from pipecast.actors import make_clip  # noqa: PLC0415 - PyAV and ffmpeg: only here

    try:
        return make_clip(library / "sample.mkv", seconds=seconds, size="640x360", rate=24)
    except PipecastError as exc:
        raise CliError(str(exc)) from None


def _start(given: tuple[str | None, ...], tmp: Path, library: Path, console: Console) -> Any:
    """A node on the given endpoints; with none given, the defaults, or free ports when
    another node holds those."""
    from pipecast.actors import MediaPolicy, Node, NodeConfig  # noqa: PLC0415

    def node_on(endpoints: tuple[str, str, str]) -> Any:
        status, sync, control = endpoints
        config = NodeConfig(
            status,
            sync,
            control,
            data_dir=tmp / "data",
            networks=(),
            media=MediaPolicy(roots=(str(library),)),  # its own library, nothing else
        )
        return Node(config).start()

    explicit = any(e is not None for e in given)
    status, sync, control = (e or d for e, d in zip(given, _DEFAULTS, strict=True))
    endpoints = (status, sync, control)
    try:
        return node_on(endpoints)
    except BindError as exc:
        if explicit:
            raise BindFailed(f"{exc} (is a node already running?)") from None
    console.print("[yellow]the default ports are taken (a node is running?): using free ones")
    try:
        return node_on((_ANY, _ANY, _ANY))
    except BindError as exc:
        raise BindFailed(str(exc)) from None


def _watch(node: Any, clip: Path, mode: str, console: Console) -> dict[str, Any]:
    """Enqueue the clip and show the pipeline until the clip has left it; its job."""
    watching: Watching

    def on_update(ev: Update) -> None:
        d = ev.data if ev.key == "state" else None
        if not isinstance(d, dict):
            return
        ended = (d.get("done") or 0) + (d.get("failed") or 0) + (d.get("skipped") or 0)
        if ev.topic == "stage/encode" and ended >= 1 and d.get("status") == "idle":
            watching.done.set()
        if ev.topic == "stage/analyze" and d.get("failed"):
            watching.done.set()

    watching = Watching(mode, console=console, on_update=on_update)
    bridge = node.bridge
    try:
        with Subscriber(
            bridge.status_endpoint,
            bridge.sync_endpoint,
            ["stage/"],
            on_event=watching.on_event,
            security=node.owner,
        ) as sub:
            sub.wait_synced(10)
            client = node.client()
            client.call("enqueue", paths=[str(clip)])
            watching.run(sub)
            (job,) = client.call("jobs")["jobs"]
    except PipecastError as exc:
        raise CliError(str(exc)) from None
    if job["state"] != "encoded":
        raise CliError(f"the sample ended {job['state']}: {job['failure'] or job['skip_reason']}")
    return dict(job)


def _keep(job: dict[str, Any], clip: Path, keep: Path) -> Path:
    """Copy the sample and its encode to `keep`; the encode's new path."""
    try:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy2(clip, keep / clip.name)
        out = Path(job["output_path"])
        shutil.copy2(out, keep / out.name)
    except OSError as exc:
        raise CliError(f"cannot keep the demo's files in {keep}: {exc.strerror}") from None
    return keep / out.name


def _summary(job: dict[str, Any], kept: Path, console: Console) -> None:
    search = job.get("search") or {}
    encode = job.get("encode") or {}
    table = Table(title="pipecast demo: done", show_header=False, box=None, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "size",
        f"{job['size']:,} \u2192 {job['output_size']:,} bytes "
        f"({job['output_size'] / job['size']:.0%})",
    )
    if "predicted_vmaf" in search:
        table.add_row(
            "quality",
            f"crf {job['crf']:g}, predicted VMAF {search['predicted_vmaf']:.2f} "
            f"({search['probes']} probes)",
        )
    else:
        table.add_row("quality", f"crf {job['crf']:g}")
    table.add_row(
        "time",
        f"encode {duration_text(encode.get('seconds'))}, "
        f"verify {duration_text(encode.get('verify_seconds'))}",
    )
    table.add_row("kept", str(kept))
    console.print(table)
    # one plain line scripts (and the tests) read
    console.print(
        f"encoded {Path(job['path']).name}: {job['size']:,} -> {job['output_size']:,} bytes, "
        f"verified and committed; kept in {kept.parent}",
        highlight=False,
        soft_wrap=True,
    )
