"""Display modes for invocation streams: what a live screen shows. Pure.

An `InvocationView` is fed the ordered updates of one `invocation/<network>`
topic (key = invocation id, value = the invocation: run, sequence, state,
...) and keeps what its display shows, with PANIC!'s semantics:

* `grid(rows, cols)`: a ring of rows*cols cells; invocation `seq` lives in
  cell `seq mod (rows*cols)`; a newer invocation overwrites the cell of the one
  rows*cols before it; every state is shown, `invoking` included.
* `single(offset, stride, show_invoking)`: one item; only invocations with
  `seq mod stride == offset` are shown, `invoking` ones only if
  `show_invoking`; a run's genesis (seq 0) is always shown.

Run isolation: a genesis resets the view to its run (the run id is the
genesis id); updates of any other run are dropped, and so are late updates
of a run the view has moved on from, its genesis included. A watcher joining mid-run
builds its view from the topic's snapshot, which holds the current run's
genesis and invocations, so it needs no database and nothing to retry.

No threads, no clock; not thread-safe (one owner feeds it).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import BadRequest

__all__ = ["DisplayMode", "Grid", "InvocationView", "Single", "parse_display"]


@dataclass(frozen=True, slots=True)
class Grid:
    rows: int
    cols: int

    def __post_init__(self) -> None:
        for name, v in (("rows", self.rows), ("cols", self.cols)):
            if type(v) is not int or v < 1:
                raise BadRequest(f"grid {name} must be an int >= 1, not {v!r}")

    @property
    def cells(self) -> int:
        return self.rows * self.cols

    def __str__(self) -> str:
        return f"grid:{self.rows}x{self.cols}"


@dataclass(frozen=True, slots=True)
class Single:
    offset: int
    stride: int
    show_invoking: bool = False

    def __post_init__(self) -> None:
        if type(self.stride) is not int or self.stride < 1:
            raise BadRequest(f"single stride must be an int >= 1, not {self.stride!r}")
        if type(self.offset) is not int or not 0 <= self.offset < self.stride:
            raise BadRequest(
                f"single offset must be an int with 0 <= offset < stride ({self.stride}), "
                f"not {self.offset!r}"
            )

    def __str__(self) -> str:
        return f"single:{self.offset}:{self.stride}" + (":invoking" if self.show_invoking else "")


DisplayMode = Grid | Single

_GRID = re.compile(r"grid:(\d{1,4})x(\d{1,4})")
_SINGLE = re.compile(r"single:(\d{1,6}):(\d{1,6})(:invoking)?")


def parse_display(text: str) -> DisplayMode:
    """`grid:ROWSxCOLS` or `single:OFFSET:STRIDE[:invoking]`; `BadRequest` otherwise."""
    if m := _GRID.fullmatch(text):
        return Grid(int(m[1]), int(m[2]))
    if m := _SINGLE.fullmatch(text):
        return Single(int(m[1]), int(m[2]), m[3] is not None)
    raise BadRequest(f"display {text!r} is not grid:ROWSxCOLS or single:OFFSET:STRIDE[:invoking]")


def _invocation(value: Any) -> tuple[Any, int] | None:
    """(run, sequence) of a well-formed invocation value, else None (not one)."""
    if type(value) is not dict:
        return None
    run, seq = value.get("run"), value.get("sequence")
    if run is None or type(seq) is not int or seq < 0:
        return None
    return run, seq


class InvocationView:
    """What one display shows of one network's invocations (see module docstring)."""

    def __init__(self, mode: DisplayMode) -> None:
        self.mode = mode
        self.run: Any = None
        # runs this view has moved on from: their late updates (even of their
        # genesis, e.g. marked failed as the next run starts) are never shown
        self._retired: deque[Any] = deque(maxlen=64)
        # every invocation of the current run we know: id -> value
        self._known: dict[str, dict[str, Any]] = {}
        self._cells: dict[int, str] = {}  # grid: cell -> invocation id
        self._shown: str | None = None  # single: the invocation id on screen

    # -- reading ---------------------------------------------------------------

    def grid(self) -> list[dict[str, Any] | None]:
        """The grid's cells in order (grid mode)."""
        assert isinstance(self.mode, Grid)
        return [
            dict(self._known[self._cells[i]]) if i in self._cells else None
            for i in range(self.mode.cells)
        ]

    def single(self) -> dict[str, Any] | None:
        """The one invocation on screen (single mode)."""
        return dict(self._known[self._shown]) if self._shown is not None else None

    def shown(self) -> Any:
        return self.grid() if isinstance(self.mode, Grid) else self.single()

    # -- feeding ---------------------------------------------------------------

    def reset(self, state: Mapping[str, Any]) -> bool:
        """Rebuild from a topic's whole state (join or recovery); True if shown changed."""
        before = self.shown()
        previous = self.run
        self.run, self._known, self._cells, self._shown = None, {}, {}, None
        invocations = [(k, v, _invocation(v)) for k, v in state.items()]
        genesis = [(k, v) for k, v, rs in invocations if rs is not None and rs[1] == 0]
        if genesis:
            # the live topic holds one run; if more, the genesis with the newest run wins
            self.run = max(genesis, key=lambda kv: str(kv[1].get("run")))[1]["run"]
        elif invocations:
            runs = [rs[0] for _, _, rs in invocations if rs is not None]
            self.run = runs[-1] if runs else None
        if previous is not None and previous != self.run:
            self._retired.append(previous)
        for key, value, _ in sorted(
            ((k, v, rs) for k, v, rs in invocations if rs is not None and rs[0] == self.run),
            key=lambda t: t[2][1] if t[2] else 0,
        ):
            self._place(key, value)
        return bool(self.shown() != before)

    def apply(self, key: str, value: Any) -> bool:
        """Apply one update of the topic; True if what is shown changed."""
        if value is None:
            return self._forget(key)
        rs = _invocation(value)
        if rs is None:
            return False  # not an invocation (e.g. the `run` key): nothing to show
        run, seq = rs
        if seq == 0:
            if run != self.run:
                if run in self._retired:
                    return False
                if self.run is not None:
                    self._retired.append(self.run)
                before = self.shown()
                self.run, self._known, self._cells, self._shown = run, {}, {}, None
                self._place(key, value)
                return bool(self.shown() != before)
        elif run != self.run:
            return False  # another run's straggler: never shown
        before = self.shown()
        self._place(key, value)
        return bool(self.shown() != before)

    def _place(self, key: str, value: dict[str, Any]) -> None:
        self._known[key] = value
        seq = value["sequence"]
        mode = self.mode
        if isinstance(mode, Grid):
            cell = seq % mode.cells
            occupant = self._cells.get(cell)
            if occupant is None or self._known[occupant]["sequence"] <= seq:
                self._cells[cell] = key
            return
        if seq != 0:
            if seq % mode.stride != mode.offset:
                return
            if value.get("state") == "invoking" and not mode.show_invoking:
                return
        shown = self._shown
        if shown is None or self._known[shown]["sequence"] <= seq:
            self._shown = key

    def _forget(self, key: str) -> bool:
        if key not in self._known:
            return False
        before = self.shown()
        del self._known[key]
        # rare (a deleted key of the current run): rebuild what is shown
        self._cells, self._shown = {}, None
        for k, v in sorted(self._known.items(), key=lambda kv: kv[1]["sequence"]):
            self._place(k, v)
        return bool(self.shown() != before)
