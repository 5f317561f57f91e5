"""A `DashboardView` drawn with rich: a table of stages with bars, then the rest.

Pure apart from building rich renderables (no console, no I/O): `render(view,
width)` fits the width it is given, 80 columns and up in full, and drops the
least needed columns below that, so a narrow terminal gets a smaller table
rather than wrapped rows. The caller's thread; never blocks.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._model import DashboardView, StageRow, duration_text

__all__ = ["render"]

_STATUS_STYLE = {
    "running": "bold green",
    "idle": "dim",
    "paused": "yellow",
    "pausing": "yellow",
    "suspended": "yellow",
    "failed": "bold red",
    "restarting": "bold red",
}


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _what(row: StageRow) -> str:
    parts = []
    if row.status == "running" and row.phase:
        parts.append(row.phase)
    if row.crf is not None:
        parts.append(f"crf {row.crf:g}")
    if row.probes:
        parts.append(" ".join(f"{c:g}\u2192{v:.1f}" for c, v in row.probes))
    if row.file:
        parts.append(row.file)
    if row.status == "failed" and row.last_error:
        parts.append(row.last_error)
    return "  ".join(parts)


def _stages(view: DashboardView, width: int) -> Table:
    """The stage table: the name, status and counts always whole; the bar takes what is
    left, with fps and eta when there is room for them."""
    name_w = max(5, *(len(r.name) for r in view.stages))
    status_w = max(6, *(len(r.status) for r in view.stages))
    counts = [f"{r.queue}/{r.done}/{r.failed}" for r in view.stages]
    wide = width >= 78
    counts_w = max(len("queue/done/failed") if wide else len("q/d/f"), *(len(c) for c in counts))
    timing = width >= 60
    columns = 5 + (2 if timing else 0)
    padding = 2 * columns - 2  # one space each side of every column, none at the edges
    fixed = name_w + status_w + counts_w + 4 + (5 + 6 if timing else 0) + padding
    bar_w = max(4, min(30, width - fixed))
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 1))
    table.add_column("stage", no_wrap=True, width=name_w)
    table.add_column("status", no_wrap=True, width=status_w)
    table.add_column("progress", no_wrap=True, width=bar_w)
    table.add_column("%", justify="right", no_wrap=True, width=4)
    if timing:
        table.add_column("fps", justify="right", no_wrap=True, width=5)
        table.add_column("eta", justify="right", no_wrap=True, width=6)
    table.add_column(
        "queue/done/failed" if wide else "q/d/f", justify="right", no_wrap=True, width=counts_w
    )
    for row, count in zip(view.stages, counts, strict=True):
        running = row.status == "running"
        cells: list[RenderableType] = [
            Text(row.name, style="bold"),
            Text(row.status, style=_STATUS_STYLE.get(row.status, "")),
            ProgressBar(total=1.0, completed=row.progress if running else 0.0, width=bar_w),
            Text(f"{row.progress * 100:.0f}" if running else ""),
        ]
        if timing:
            cells.append(Text(f"{row.fps:.0f}" if row.fps else ""))
            cells.append(Text(duration_text(row.eta) if running else ""))
        cells.append(Text(count, style="red" if row.failed else ""))
        table.add_row(*cells)
    return table


def _details(view: DashboardView) -> list[RenderableType]:
    """A line under the table for each stage at work (or failed): what it is doing."""
    out: list[RenderableType] = []
    for row in view.stages:
        if row.status in ("running", "failed") and (what := _what(row)):
            line = Text(f"{row.name}: ", style="bold")
            line.append(what)
            out.append(Text.assemble("  ", line, overflow="ellipsis", no_wrap=True))
    return out


def render(view: DashboardView, width: int = 80) -> RenderableType:
    """The whole dashboard for a terminal `width` columns wide."""
    parts: list[RenderableType] = []
    title = Text("pipecast", style="bold")
    if view.stale:
        title.append("  STALE: the node is silent", style="bold red")
    parts.append(title)
    if view.stages:
        parts.append(_stages(view, width))
        parts.extend(_details(view))
    summary = []
    if view.totals is not None and view.totals.encoded:
        t = view.totals
        summary.append(
            f"encoded {t.encoded}: {_size(t.bytes_before)} \u2192 {_size(t.bytes_after)}"
            f" (saved {_size(t.saved)})"
        )
    velocity = sum(r.velocity for r in view.stages if r.name == "encode")
    if velocity:
        summary.append(f"{velocity:.1f} files/min")
    if view.presence:
        watching = ", ".join(f"{t} {n}" for t, n in view.presence if n)
        summary.append(f"watching: {watching or 'nobody'}")
    if summary:
        parts.append(Text("  ".join(summary), overflow="ellipsis", no_wrap=True))
    for net in view.networks:
        parts.append(Text(f"{net.network} run {net.run}: {net.status}", style="bold"))
        for line in net.latest:
            parts.append(Text(f"  {line}", overflow="ellipsis", no_wrap=True))
    for topic, key, value in view.others[-5:]:
        parts.append(Text(f"{topic} {key} {value}", overflow="ellipsis", no_wrap=True))
    for marker in view.markers:
        parts.append(Text(f"-- {marker.text} (at {marker.at:.1f} s)", style="magenta"))
    return Group(*parts)
