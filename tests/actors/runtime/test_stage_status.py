"""The stage status table and the restart intensity rule (pure)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.actors import (
    Decision,
    RestartPolicy,
    RestartTracker,
    StageEvent,
    StageStatus,
    Velocity,
    transition,
)
from pipecast.transport import BadRequest

S, E = StageStatus, StageEvent


@pytest.mark.parametrize(("status", "event"), list(itertools.product(S, E)))
def test_every_status_event_pair_has_a_defined_outcome(status, event):
    after = transition(status, event)
    assert isinstance(after, StageStatus)
    if status in (S.STOPPING, S.FAILED):
        assert after is status
    elif event is E.STOP:
        assert after is S.STOPPING
    elif event is E.PAUSE:
        assert after.held
    elif event is E.RESUME:
        assert not after.held


def test_pause_drains_the_running_item_then_holds():
    assert transition(S.RUNNING, E.PAUSE) is S.PAUSING
    assert transition(S.PAUSING, E.ITEM_STARTED) is S.PAUSING
    assert transition(S.PAUSING, E.ITEM_ENDED) is S.PAUSED
    assert transition(S.IDLE, E.PAUSE) is S.PAUSED


def test_resume_while_pausing_keeps_running_the_item():
    assert transition(S.PAUSING, E.RESUME) is S.RUNNING
    assert transition(S.PAUSED, E.RESUME) is S.IDLE


@given(
    st.lists(
        st.sampled_from([E.PAUSE, E.RESUME, E.TOGGLE, E.ITEM_STARTED, E.ITEM_ENDED, E.QUEUE_EMPTY]),
        max_size=30,
    )
)
def test_toggle_always_flips_held_and_the_last_command_decides(events):
    status = S.IDLE
    held = False
    for ev in events:
        before = status
        status = transition(status, ev)
        if ev is E.TOGGLE:
            assert status.held != before.held
            held = status.held
        elif ev in (E.PAUSE, E.RESUME):
            held = ev is E.PAUSE
        assert status.held == held


def test_restart_intensity_allows_n_restarts_per_window_then_gives_up():
    t = RestartTracker(RestartPolicy(max_restarts=2, within=5.0))
    assert t.failed(0.0) is Decision.RESTART
    assert t.failed(1.0) is Decision.RESTART
    assert t.failed(2.0) is Decision.GIVE_UP
    t2 = RestartTracker(RestartPolicy(max_restarts=2, within=5.0))
    assert [t2.failed(x) for x in (0.0, 1.0, 6.0, 7.0)] == [Decision.RESTART] * 4


def test_restart_policy_is_validated():
    with pytest.raises(BadRequest):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(BadRequest):
        RestartPolicy(within=0)


def test_velocity_counts_items_per_hour_over_its_window():
    v = Velocity(window=600.0)
    assert v.per_hour(0.0) == 0.0
    v.started(0.0)
    for i in range(10):
        v.item_done(60.0 + i)
    assert v.per_hour(120.0) == pytest.approx(10 * 3600 / 120)
    assert v.per_hour(2000.0) == 0.0
