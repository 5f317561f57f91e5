"""The gateway's stream log: bounded, and resumed exactly or reloaded, never partly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.web import ResumeKind, StreamLog, parse_event_id


def filled(n: int, **bounds: int) -> StreamLog:
    log = StreamLog("g1", **bounds)
    for i in range(1, n + 1):
        log.append(f'"e{i}"')
    return log


def test_events_are_numbered_from_one_and_ids_name_the_epoch() -> None:
    log = filled(3)
    assert (log.head, log.oldest, len(log)) == (3, 1, 3)
    assert log.event_id(3) == "g1:3"
    assert parse_event_id("g1:3") == ("g1", 3)


def test_a_reconnect_with_a_held_id_replays_exactly_what_followed() -> None:
    log = filled(5)
    resume = log.resume("g1:2")
    assert resume.kind is ResumeKind.REPLAY
    assert resume.at == 2
    assert resume.entries == ((3, '"e3"'), (4, '"e4"'), (5, '"e5"'))
    assert log.resume("g1:5").entries == ()


@pytest.mark.parametrize(
    ("last_id", "why"),
    [
        ("g0:2", "the gateway restarted"),
        ("g1:99", "ahead of the stream"),
        ("nonsense", "unreadable event id"),
        ("g1:-1", "unreadable event id"),
        ("g1:" + "9" * 40, "unreadable event id"),
    ],
)
def test_an_id_that_cannot_be_resumed_gives_a_reload_saying_why(last_id: str, why: str) -> None:
    resume = filled(5).resume(last_id)
    assert resume.kind is ResumeKind.RELOAD
    assert resume.why == why


def test_no_id_is_a_fresh_start() -> None:
    assert filled(2).resume(None).kind is ResumeKind.FRESH
    assert filled(2).resume("").kind is ResumeKind.FRESH


def test_the_log_keeps_the_newest_within_count_and_bytes() -> None:
    log = filled(10, max_entries=4)
    assert (log.oldest, log.head, log.trimmed) == (7, 10, 6)
    assert log.resume("g1:5").why == "history gone"
    assert log.resume("g1:6").kind is ResumeKind.REPLAY  # 7.. are all held
    small = filled(10, max_bytes=20)  # each event is 4-5 bytes
    assert sum(len(t) for _, t in small.since(small.oldest - 1) or ()) <= 20


def test_a_client_too_far_behind_is_behind() -> None:
    log = filled(10)
    assert not log.behind(5, max_lag=5)
    assert log.behind(4, max_lag=5)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 20),  # max_entries
    st.integers(0, 60),  # events appended
    st.integers(-3, 65),  # the n a client saw
)
def test_a_replay_is_always_exactly_the_events_after_the_id_or_a_reload(
    max_entries: int, count: int, seen: int
) -> None:
    log = filled(count, max_entries=max_entries)
    assert len(log) == min(count, max_entries)
    resume = log.resume(f"g1:{seen}")
    if resume.kind is ResumeKind.REPLAY:
        assert [n for n, _ in resume.entries] == list(range(seen + 1, count + 1))
        assert [t for _, t in resume.entries] == [f'"e{n}"' for n in range(seen + 1, count + 1)]
    else:
        assert resume.kind is ResumeKind.RELOAD
        assert seen < 0 or seen > count or seen < count - max_entries


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(0, 40), st.integers(1, 10))
def test_reading_in_batches_gives_every_event_once_in_order(
    max_entries: int, count: int, batch: int
) -> None:
    log = filled(count, max_entries=max(max_entries, count))
    cursor, got = 0, []
    while chunk := log.since(cursor, batch):
        got += [n for n, _ in chunk]
        cursor = chunk[-1][0]
    assert got == list(range(1, count + 1))
