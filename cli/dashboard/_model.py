"""What a person watching a node sees, computed from a replica's state. Pure.

`build_view(state, markers, stale)` turns the topics a subscriber holds into
a `DashboardView`: one `StageRow` per `stage/<name>` (status, progress, fps,
eta, the file, the CRF search's probe trail), the library's totals, presence
counts, the latest invocations of each network, and the recovery and stale
markers. `stage_line` and `PlainLog` make the `--plain` text of it: one line
per change of what a person sees, never two identical lines in a row. No
I/O, no clock: times come in as arguments.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

__all__ = [
    "DashboardView",
    "Marker",
    "MarkerLog",
    "NetworkRow",
    "PlainLog",
    "StageRow",
    "Totals",
    "build_view",
    "duration_text",
    "plain_lines",
    "stage_line",
]

_LATEST = 4  # invocations shown per network


@dataclass(frozen=True, slots=True)
class StageRow:
    name: str
    status: str
    progress: float  # 0 to 1 of the current item
    phase: str
    file: str  # the current item's file name ("" when idle)
    fps: float | None
    eta: float | None  # seconds
    crf: float | None  # the CRF being probed or encoded
    probes: tuple[tuple[float, float], ...]  # the search's trail: (crf, VMAF)
    queue: int
    done: int
    failed: int
    skipped: int
    velocity: float  # items a minute
    last_error: str


@dataclass(frozen=True, slots=True)
class Totals:
    encoded: int
    bytes_before: int
    bytes_after: int

    @property
    def saved(self) -> int:
        return self.bytes_before - self.bytes_after


@dataclass(frozen=True, slots=True)
class NetworkRow:
    network: str
    status: str
    run: int | None
    latest: tuple[str, ...]  # "#3 caption completed: a lantern ..."


@dataclass(frozen=True, slots=True)
class Marker:
    at: float  # seconds since the view began
    text: str


@dataclass(frozen=True, slots=True)
class DashboardView:
    stages: tuple[StageRow, ...]
    totals: Totals | None
    presence: tuple[tuple[str, int], ...]  # (watched topic, watchers)
    networks: tuple[NetworkRow, ...]
    others: tuple[tuple[str, str, str], ...]  # (topic, key, compact value) of other topics
    markers: tuple[Marker, ...]
    stale: bool


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if type(value) in (int, float) else default


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _maybe(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def _stage(name: str, state: Mapping[str, Any]) -> StageRow:
    detail = state.get("detail") if isinstance(state.get("detail"), dict) else {}
    assert isinstance(detail, dict)
    item = state.get("item") if isinstance(state.get("item"), dict) else {}
    assert isinstance(item, dict)
    path = item.get("path")
    probes = tuple(
        (_num(p.get("crf")), _num(p.get("mean")))
        for p in detail.get("probes") or ()
        if isinstance(p, dict)
    )
    return StageRow(
        name=name,
        status=str(state.get("status") or "?"),
        progress=min(1.0, max(0.0, _num(state.get("progress")))),
        phase=str(detail.get("phase") or ""),
        file=PurePath(path).name if isinstance(path, str) else "",
        fps=_maybe(detail.get("fps")),
        eta=_maybe(detail.get("eta")),
        crf=_maybe(detail.get("crf")),
        probes=probes,
        queue=_int(state.get("queue")),
        done=_int(state.get("done")),
        failed=_int(state.get("failed")),
        skipped=_int(state.get("skipped")),
        velocity=_num(state.get("velocity")),
        last_error=str(state.get("last_error") or ""),
    )


def _invocation_text(inv: Mapping[str, Any]) -> str:
    output = inv.get("output") or inv.get("error") or ""
    text = str(output).replace("\n", " ")
    return f"#{inv.get('sequence')} {inv.get('model')} {inv.get('state')}: {text}"


def _network(name: str, kv: Mapping[str, Any]) -> NetworkRow:
    run = kv.get("run") if isinstance(kv.get("run"), dict) else {}
    assert isinstance(run, dict)
    invocations = sorted(
        (v for k, v in kv.items() if k != "run" and isinstance(v, dict)),
        key=lambda v: _num(v.get("sequence")),
    )
    return NetworkRow(
        network=name,
        status=str(run.get("status") or "?"),
        run=run.get("run") if type(run.get("run")) is int else None,
        latest=tuple(_invocation_text(v) for v in invocations[-_LATEST:]),
    )


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _endpoints(ep: Mapping[str, Any]) -> str:
    """Where a node (or a relay, and the node behind it) listens, in words."""
    words = [f"{name} {ep[name]}" for name in ("status", "sync", "control") if ep.get(name)]
    if ep.get("node_control"):
        words.append(f"(a relay; the node's control {ep['node_control']})")
    return "  ".join(words)


def build_view(
    state: Mapping[str, Mapping[str, Any]], markers: Iterable[Marker] = (), stale: bool = False
) -> DashboardView:
    """The view of `state` (topic -> key -> value, as a replica holds it)."""
    stages: list[StageRow] = []
    presence: list[tuple[str, int]] = []
    networks: list[NetworkRow] = []
    others: list[tuple[str, str, str]] = []
    totals = None
    for topic in sorted(state):
        kv = state[topic]
        if topic.startswith("stage/"):
            if isinstance(kv.get("state"), dict):
                stages.append(_stage(topic.removeprefix("stage/"), kv["state"]))
            lib = kv.get("library")
            if isinstance(lib, dict):
                totals = Totals(
                    _int(lib.get("encoded")),
                    _int(lib.get("bytes_before")),
                    _int(lib.get("bytes_after")),
                )
        elif topic.startswith("presence/"):
            presence.append((topic.removeprefix("presence/"), len(kv)))
        elif topic.startswith("invocation/"):
            networks.append(_network(topic.removeprefix("invocation/"), kv))
        elif (topic == "node" or topic.endswith("/node")) and isinstance(kv.get("endpoints"), dict):
            others.append((topic, "at", _endpoints(kv["endpoints"])))
        elif not topic.startswith(("actor/", "relay/actor/")):
            others.extend((topic, key, _compact(value)) for key, value in sorted(kv.items()))
    return DashboardView(
        stages=tuple(stages),
        totals=totals,
        presence=tuple(presence),
        networks=tuple(networks),
        others=tuple(others),
        markers=tuple(markers),
        stale=stale,
    )


def duration_text(seconds: float | None) -> str:
    """12 s, 3m05s, 2h07m; "-" when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def stage_line(row: StageRow) -> str:
    """One line of what a person sees of a stage; it changes only when that does.

    Progress is shown to the whole percent and fps to the whole frame, so a line
    is not printed again for a change nobody can see.
    """
    counts = f"queue {row.queue} done {row.done} failed {row.failed}"
    if row.status != "running":
        error = f" ({row.last_error})" if row.last_error and row.status == "failed" else ""
        return f"{row.name}: {row.status}{error}  {counts}"
    parts = [f"{row.name}: {row.phase or row.status} {row.file}", f"{row.progress * 100:.0f} %"]
    if row.crf is not None:
        parts.append(f"crf {row.crf:g}")
    if row.probes:
        parts.append("probes " + " ".join(f"{c:g}->{v:.1f}" for c, v in row.probes))
    if row.fps:
        parts.append(f"{row.fps:.0f} fps")
    if row.eta is not None:
        parts.append(f"eta {duration_text(row.eta)}")
    return "  ".join([*parts, counts])


def plain_lines(view: DashboardView) -> dict[str, str]:
    """The `--plain` lines of a view, by what they describe."""
    lines = {f"stage/{row.name}": stage_line(row) for row in view.stages}
    if view.totals is not None and view.totals.encoded:
        t = view.totals
        lines["library"] = (
            f"library: {t.encoded} encoded, {t.bytes_before:,} -> {t.bytes_after:,} bytes "
            f"({t.saved:,} saved)"
        )
    for topic, count in view.presence:
        lines[f"presence/{topic}"] = f"watching {topic}: {count}"
    for net in view.networks:
        latest = net.latest[-1] if net.latest else "-"
        lines[f"invocation/{net.network}"] = f"{net.network} run {net.run}: {net.status}  {latest}"
    for topic, key, value in view.others:
        lines[f"{topic} {key}"] = f"{topic} {key} {value}"
    return lines


class PlainLog:
    """Which `--plain` lines to print: those that changed since they were last printed."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def changes(self, view: DashboardView) -> list[str]:
        out = []
        for key, line in plain_lines(view).items():
            if self._last.get(key) != line:
                self._last[key] = line
                out.append(line)
        return out


class MarkerLog:
    """The latest recovery and stale markers, at most `keep`."""

    def __init__(self, keep: int = 3) -> None:
        self._markers: deque[Marker] = deque(maxlen=keep)

    def add(self, at: float, text: str) -> Marker:
        marker = Marker(at, text)
        self._markers.append(marker)
        return marker

    def __iter__(self) -> Any:
        return iter(tuple(self._markers))
