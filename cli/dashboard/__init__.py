"""pipecast.cli.dashboard: what `pipecast watch` and `pipecast demo` show a person.

The pure `build_view` turns a replica's state into a `DashboardView`; the
rich `render` draws it to fit the terminal; `Watching` drives either from a
subscriber's events, as a live dashboard, `--plain` lines (one per visible
change) or JSON records.
"""

from ._events import event_record, note_text
from ._live import MODES, Watching
from ._model import (
    DashboardView,
    Marker,
    MarkerLog,
    NetworkRow,
    PlainLog,
    StageRow,
    Totals,
    build_view,
    duration_text,
    plain_lines,
    stage_line,
)
from ._render import render

__all__ = [
    "MODES",
    "DashboardView",
    "Marker",
    "MarkerLog",
    "NetworkRow",
    "PlainLog",
    "StageRow",
    "Totals",
    "Watching",
    "build_view",
    "duration_text",
    "event_record",
    "note_text",
    "plain_lines",
    "render",
    "stage_line",
]
