"""The CLI's one record shape for subscriber events (cli/_events.py)."""

from __future__ import annotations

import json

import pytest

from pipecast.cli.dashboard import event_record, note_text
from pipecast.transport import Ended, Reason, Recovered, Reset, Stale, Update

EVENTS = [
    Update("stage/encode", "state", {"status": "running"}, 7, "e1", 1.5, None),
    Reset("e1", None, {"stage/encode": {"state": {"status": "idle"}}}),
    Reset("e2", Reason.EPOCH, {}),
    Recovered(Reason.GAP, "stage/encode", 3, False),
    Recovered(Reason.HISTORY_GONE, None, 0, True, skipped=40),
    Stale(3.21456),
    Ended("e1"),
]


@pytest.mark.parametrize("ev", EVENTS, ids=lambda ev: type(ev).__name__)
def test_every_subscriber_event_is_one_json_line_naming_its_kind(ev: object) -> None:
    record = event_record(ev)
    assert record is not None
    line = json.dumps(record)
    assert "\n" not in line
    back = json.loads(line)
    kind = "update" if isinstance(ev, Update) else type(ev).__name__.lower()
    assert back["event"] == kind
    assert back == record


def test_an_update_record_carries_topic_key_seq_and_data() -> None:
    record = event_record(EVENTS[0])
    assert record == {
        "event": "update",
        "topic": "stage/encode",
        "key": "state",
        "seq": 7,
        "data": {"status": "running"},
        "cid": None,
    }


def test_a_recovery_names_its_reason_as_text_not_an_enum() -> None:
    record = event_record(Recovered(Reason.GAP, "stage/encode", 3, False))
    assert record is not None
    assert record["reason"] == "gap"
    assert note_text(record) == (
        "-- reason=gap topic=stage/encode replayed=3 snapshot=False skipped=0 (recovered)"
    )


def test_anything_else_has_no_record() -> None:
    assert event_record(object()) is None
    assert event_record({"event": "update"}) is None
