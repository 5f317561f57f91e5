"""A job's CRF search as an SVG chart: VMAF against CRF, the target line, the chosen CRF. Pure.

Drawn on the server, so the page shows it without scripts and tests can read
it. Probes are points (mean VMAF, with the worst-frame percentile below as a
thin line), joined in CRF order; the target is a dashed line; the chosen CRF
a marked point. Every text is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["probe_chart"]

W, H = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


def _num(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def probe_chart(probes: list[dict[str, Any]], search: dict[str, Any], chosen: Any) -> str:
    """The SVG (a string), or "" when there is no probe to draw."""
    points = sorted(
        (c, m, _num(p.get("p1")))
        for p in probes
        if (c := _num(p.get("crf"))) is not None and (m := _num(p.get("mean"))) is not None
    )
    if not points:
        return ""
    target = _num(search.get("target"))
    pick = _num(chosen)
    crfs = [c for c, _, _ in points] + ([pick] if pick is not None else [])
    lows = [m for _, m, _ in points] + [p for _, _, p in points if p is not None]
    vmafs = lows + ([target] if target is not None else [])
    x0, x1 = min(crfs) - 2, max(crfs) + 2
    y0, y1 = max(0.0, min(vmafs) - 2), min(100.0, max(vmafs) + 1)
    if y1 - y0 < 4:
        y0 = max(0.0, y1 - 4)

    def x(c: float) -> float:
        return LEFT + (c - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def y(v: float) -> float:
        return TOP + (y1 - v) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
        f'class="chart" aria-labelledby="chart-title">',
        '<title id="chart-title">VMAF against CRF for each probe of the search</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
        'class="plot"/>',
    ]
    for i in range(5):  # axes: five ticks each way
        v = y0 + (y1 - y0) * i / 4
        c = x0 + (x1 - x0) * i / 4
        out.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{v:.1f}</text>'
        )
        out.append(
            f'<text x="{x(c):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" class="tick">'
            f"{c:.1f}</text>"
        )
    out.append(f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" class="axis">CRF</text>')
    out.append(
        f'<text x="14" y="{H / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {H / 2})">VMAF</text>'
    )
    if target is not None:
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
            f'class="target"><title>target VMAF {target:g}</title></line>'
        )
    line = " ".join(f"{x(c):.1f},{y(m):.1f}" for c, m, _ in points)
    out.append(f'<polyline points="{line}" class="trail"/>')
    for c, m, p1 in points:
        if p1 is not None:
            out.append(
                f'<line x1="{x(c):.1f}" x2="{x(c):.1f}" y1="{y(m):.1f}" y2="{y(p1):.1f}" '
                'class="spread"/>'
            )
        label = escape(f"CRF {c:g}: VMAF {m:.2f}" + (f", 1% low {p1:.2f}" if p1 else ""))
        out.append(
            f'<circle cx="{x(c):.1f}" cy="{y(m):.1f}" r="5" class="probe">'
            f"<title>{label}</title></circle>"
        )
    if pick is not None:
        near = min(points, key=lambda p: abs(p[0] - pick))
        out.append(
            f'<circle cx="{x(pick):.1f}" cy="{y(near[1]):.1f}" r="9" class="chosen">'
            f"<title>chosen CRF {pick:g}</title></circle>"
        )
    out.append("</svg>")
    return "\n".join(out)
