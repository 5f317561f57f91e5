"""Text rendering of a network's display for `pipecast watch --display`. Pure.

`render` turns what an `InvocationView` shows, plus the runner's `run` state,
into lines for a terminal: a header that counts down to `next_at` and
`ready_at` from the absolute times (so no countdown messages are ever sent;
`now` is passed in), then a grid of cells or the single invocation.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from pipecast.transport import DisplayMode, Grid

__all__ = ["describe_run", "render"]


def _snippet(inv: dict[str, Any] | None, width: int) -> list[str]:
    """A cell: `#seq model state` then the output (or input while invoking)."""
    if inv is None:
        return ["·".ljust(width), "".ljust(width)]
    head = f"#{inv['sequence']} {inv['model']} {inv['state']}"
    body = inv.get("output") if inv.get("state") == "completed" else inv.get("error") or "…"
    if isinstance(body, str) and body.endswith(".png") and "/" in body:
        body = f"[image {Path(body).name[:12]}]"
    text = str(body or "").replace("\n", " ")
    return [head[:width].ljust(width), text[:width].ljust(width)]


def describe_run(run: dict[str, Any] | None, now: float) -> str:
    """One line: run id, status, and the countdowns, computed from absolute times."""
    if not run or run.get("run") is None:
        return "no run yet"
    parts = [f"run {run['run']}", str(run.get("status"))]
    if run.get("status") == "idle" and run.get("reason"):
        parts.append(f"({run['reason']})")
    if run.get("next_at") is not None:
        parts.append(f"next in {max(0.0, run['next_at'] - now):.1f} s")
    if run.get("ready_at") is not None:
        left = run["ready_at"] - now
        parts.append(f"prompts in {left:.0f} s" if left > 0 else "accepting prompts")
    if run.get("error"):
        parts.append(f"error: {run['error']}")
    return " · ".join(parts)


def render(
    mode: DisplayMode, shown: Any, run: dict[str, Any] | None, now: float, width: int = 80
) -> list[str]:
    lines = [f"{mode} — {describe_run(run, now)}"[:width]]
    if isinstance(mode, Grid):
        cell = max(8, (width - (mode.cols - 1) * 3) // mode.cols)
        cells = list(shown or [None] * mode.cells)
        for r in range(mode.rows):
            row = [_snippet(cells[r * mode.cols + c], cell) for c in range(mode.cols)]
            for line in range(2):
                lines.append(" | ".join(part[line] for part in row).rstrip())
        return lines
    if shown is None:
        return [*lines, "(nothing to show yet)"]
    head, _ = _snippet(shown, width)
    lines.append(head.rstrip())
    body = shown.get("output") if shown.get("state") == "completed" else shown.get("input")
    if isinstance(body, str) and body.endswith(".png"):
        lines.append(f"image: {body}")
    else:
        lines += textwrap.wrap(str(body or ""), width) or [""]
    return lines
