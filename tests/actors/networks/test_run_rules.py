"""The pure run machine: PANIC!'s rules, its race closed, and invariants under any schedule."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors import DEFAULT_PACE, LockedOut, Pace, RunMachine, RunRules, RunStatus
from pipecast.actors.networks import (
    Call,
    Effect,
    EndRun,
    Forget,
    Record,
    Schedule,
    Token,
)
from pipecast.transport import BadRequest

T0 = 1_000_000.0


def machine(**kw: Any) -> RunMachine:
    rules = RunRules(kw.pop("network", "net"), kw.pop("models", ("a", "b", "c")), **kw)
    return RunMachine(rules, itertools.count(1).__next__)


def records(effects: list[Effect]) -> list[Record]:
    return [e for e in effects if isinstance(e, Record)]


def next_token(effects: list[Effect]) -> Token:
    (s,) = [e for e in effects if isinstance(e, Schedule) and e.token.kind == "next"]
    return s.token


def complete(m: RunMachine, output: str, now: float) -> list[Effect]:
    assert m.run is not None
    cur = m.run.current
    return m.completed(cur.id, cur.attempt, output, now)


def test_a_prompt_starts_a_run_whose_id_is_its_genesis_id() -> None:
    m = machine()
    effects = m.start("hello", T0)
    (rec,) = records(effects)
    g = rec.invocation
    assert (g.sequence, g.run, g.model, g.input, g.state) == (0, g.id, "a", "hello", "invoking")
    assert rec.new_run_prompt == "hello"
    assert Call(g) in effects
    assert Schedule(T0 + 60.0, Token("timeout", g.id, 1)) in effects
    assert m.status is RunStatus.INVOKING
    assert m.value()["ready_at"] == T0 + 30.0


def test_each_invocation_takes_the_next_model_and_the_previous_output() -> None:
    m = machine(pace=Pace(((None, 2.0),)))
    m.start("p", T0)
    now = T0
    seen = []
    for k in range(7):
        now += 1
        effects = complete(m, f"out{k}", now)
        token = next_token(effects)
        assert m.status is RunStatus.WAITING
        assert m.next_at == now + 2.0
        now += 2
        (rec,) = records(m.due(token, now))
        inv = rec.invocation
        seen.append((inv.sequence, inv.model, inv.input))
    assert seen == [(k + 1, "abc"[(k + 1) % 3], f"out{k}") for k in range(7)]


@pytest.mark.parametrize(
    ("age", "delay"),
    [(0, 1.0), (599.9, 1.0), (600, 15.0), (3599, 15.0), (3600, 600.0), (1e9, 600.0)],
)
def test_the_default_pace_is_panics_gradual_backoff(age: float, delay: float) -> None:
    assert DEFAULT_PACE.delay(age) == delay


@pytest.mark.parametrize(
    "steps",
    [
        (),
        ((10.0, 1.0),),
        ((10.0, 1.0), (5.0, 1.0), (None, 1.0)),
        ((None, -1.0),),
        ((None, float("nan")),),
    ],
)
def test_a_bad_pace_is_refused(steps: Any) -> None:
    with pytest.raises(BadRequest):
        Pace(steps)


def test_a_prompt_within_the_lockout_is_refused_with_when_it_will_be_accepted() -> None:
    m = machine(lockout=30.0)
    m.start("first", T0)
    before = m.value()
    with pytest.raises(LockedOut) as info:
        m.start("second", T0 + 29.9)
    assert info.value.ready_at == T0 + 30.0
    assert info.value.details() == {"ready_at": T0 + 30.0}
    assert m.value() == before
    assert m.locked_out == 1


def test_after_the_lockout_a_prompt_ends_the_run_and_fails_its_invocation() -> None:
    m = machine(lockout=30.0)
    first = records(m.start("first", T0))[0].invocation
    effects = m.start("second", T0 + 31)
    recs = records(effects)
    failed, genesis = recs[0].invocation, recs[1].invocation
    assert failed.id == first.id
    assert failed.state == "failed"
    assert failed.error == "superseded by a new run"
    assert EndRun(first.run, "superseded", T0 + 31) in effects
    assert genesis.sequence == 0
    assert genesis.run == genesis.id != first.run
    # the old run's keys leave the live topic after the new genesis is out
    assert effects.index(Forget((first.id,))) > effects.index(recs[1])


def test_after_a_stop_a_prompt_is_accepted_at_once() -> None:
    m = machine(lockout=30.0)
    m.start("first", T0)
    assert m.stop(T0 + 1)
    assert m.value()["ready_at"] is None
    assert m.status is RunStatus.IDLE
    m.start("second", T0 + 2)  # no LockedOut
    assert m.stop(T0 + 3)
    assert not m.stop(T0 + 4)


def test_a_stop_during_the_wait_never_lets_the_old_chain_continue() -> None:
    m = machine()
    m.start("p", T0)
    token = next_token(complete(m, "x", T0 + 1))
    m.stop(T0 + 1.5)
    assert m.due(token, T0 + 2) == []
    assert m.stale == 1
    assert m.status is RunStatus.IDLE


def test_a_new_run_during_the_wait_never_lets_the_old_chain_continue() -> None:
    m = machine(lockout=0.0)
    m.start("old", T0)
    old_token = next_token(complete(m, "x", T0 + 1))
    new = records(m.start("new", T0 + 1.2))[-1].invocation
    assert m.due(old_token, T0 + 2) == []  # PANIC!'s untagged timer continued here
    assert m.run is not None
    assert m.run.current.id == new.id
    assert m.stale == 1
    token = next_token(complete(m, "y", T0 + 3))
    (rec,) = records(m.due(token, T0 + 4))
    assert (rec.invocation.run, rec.invocation.sequence, rec.invocation.input) == (new.id, 1, "y")


def test_a_late_result_of_an_old_run_is_dropped() -> None:
    m = machine(lockout=0.0)
    old = records(m.start("old", T0))[0].invocation
    m.start("new", T0 + 1)
    assert m.completed(old.id, 1, "late", T0 + 2) == []
    assert m.failed(old.id, 1, "late", T0 + 2) == []
    assert m.status is RunStatus.INVOKING
    assert m.stale == 2


def test_a_model_failure_fails_the_invocation_ends_the_run_and_says_why() -> None:
    m = machine()
    g = records(m.start("p", T0))[0].invocation
    effects = m.failed(g.id, 1, "ModelError: boom", T0 + 1)
    (rec,) = records(effects)
    assert rec.invocation.state == "failed"
    assert rec.invocation.error == "ModelError: boom"
    assert EndRun(g.run, "failed", T0 + 1) in effects
    value = m.value()
    assert (value["status"], value["reason"], value["error"]) == (
        "idle",
        "failed",
        "ModelError: boom",
    )


def test_a_failure_is_retried_when_configured_and_late_results_of_the_first_attempt_drop() -> None:
    m = machine(retries=1)
    g = records(m.start("p", T0))[0].invocation
    effects = m.failed(g.id, 1, "flaky", T0 + 1)
    (rec,) = records(effects)
    assert rec.invocation.attempt == 2
    assert rec.invocation.state == "invoking"
    assert Call(rec.invocation) in effects
    assert m.completed(g.id, 1, "late", T0 + 2) == []
    assert records(m.completed(g.id, 2, "ok", T0 + 2))[0].invocation.state == "completed"


def test_a_timeout_fails_the_invocation_and_a_stale_timeout_does_nothing() -> None:
    m = machine(timeout=5.0)
    g = records(m.start("p", T0))[0].invocation
    token = next_token(complete(m, "x", T0 + 1))
    assert m.due(Token("timeout", g.id, 1), T0 + 5) == []  # already completed
    (rec,) = records(m.due(token, T0 + 2))
    effects = m.due(Token("timeout", rec.invocation.id, 1), T0 + 7)
    assert records(effects)[0].invocation.error == "timeout after 5 s"
    assert m.status is RunStatus.IDLE


def test_a_run_ends_at_its_maximum_length() -> None:
    m = machine(max_invocations=2, pace=Pace(((None, 0.0),)))
    m.start("p", T0)
    m.due(next_token(complete(m, "x", T0)), T0)
    effects = complete(m, "y", T0)
    assert any(isinstance(e, EndRun) and e.reason == "max_invocations" for e in effects)
    assert m.status is RunStatus.IDLE


def test_a_run_ends_at_its_maximum_duration() -> None:
    m = machine(max_duration=10.0)
    m.start("p", T0)
    effects = complete(m, "x", T0 + 10)
    assert any(isinstance(e, EndRun) and e.reason == "max_duration" for e in effects)


def test_an_unwatched_run_is_held_and_resumes_when_a_viewer_joins() -> None:
    m = machine(only_when_watched=True, pace=Pace(((None, 1.0),)))
    m.viewers(0, T0)
    m.start("p", T0)
    token = next_token(complete(m, "x", T0 + 1))
    assert m.due(token, T0 + 2) == []
    assert m.status is RunStatus.HELD
    assert m.viewers(0, T0 + 3) == []
    (rec,) = records(m.viewers(1, T0 + 4))
    assert rec.invocation.sequence == 1
    assert m.status is RunStatus.INVOKING


def test_a_viewer_joining_before_the_next_is_due_just_resumes_waiting() -> None:
    m = machine(only_when_watched=True, pace=Pace(((None, 10.0),)))
    m.viewers(0, T0)
    m.start("p", T0)
    token = next_token(complete(m, "x", T0 + 1))
    m.status = RunStatus.HELD  # held early (e.g. a shell that checks before due)
    effects = m.viewers(1, T0 + 2)
    assert effects == [Schedule(T0 + 11, token)]
    assert m.status is RunStatus.WAITING


def test_watching_does_not_matter_without_only_when_watched() -> None:
    m = machine()
    m.viewers(0, T0)
    m.start("p", T0)
    token = next_token(complete(m, "x", T0 + 1))
    assert records(m.due(token, T0 + 2))


def test_old_invocations_leave_the_live_topic_but_the_genesis_stays() -> None:
    m = machine(keep_live=2, pace=Pace(((None, 0.0),)))
    g = records(m.start("p", T0))[0].invocation
    forgotten: list[int] = []
    ids = {0: g.id}
    for _ in range(5):
        effects = m.due(next_token(complete(m, "x", T0)), T0)
        inv = records(effects)[0].invocation
        ids[inv.sequence] = inv.id
        forgotten += [i for e in effects if isinstance(e, Forget) for i in e.ids]
    assert forgotten == [ids[1], ids[2], ids[3]]
    assert m.run is not None
    assert set(m.run.live) == {0, 4, 5}


@pytest.mark.parametrize(
    "kw",
    [
        {"network": "a/b"},
        {"network": ""},
        {"models": ()},
        {"models": ("",)},
        {"models": ["a"]},
        {"lockout": -1},
        {"timeout": 0},
        {"max_invocations": 0},
        {"max_duration": 0},
        {"retries": 11},
        {"keep_live": 0},
    ],
)
def test_bad_rules_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        machine(**kw)


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 10_001, None, 3])
def test_a_bad_prompt_is_refused_and_changes_nothing(prompt: Any) -> None:
    m = machine()
    with pytest.raises(BadRequest):
        m.start(prompt, T0)
    assert m.status is RunStatus.IDLE
    assert m.run is None


# -- any schedule of events -------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["start", "stop", "complete", "fail", "due", "due_old", "late", "viewers"]),
        st.floats(0.0, 20.0),
        st.integers(0, 3),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_OPS, st.booleans(), st.integers(0, 1))
def test_under_any_schedule_runs_stay_whole_and_never_continue_after_they_end(
    ops: list[tuple[str, float, int]], watched_only: bool, retries: int
) -> None:
    m = machine(lockout=5.0, only_when_watched=watched_only, retries=retries)
    now = T0
    tokens: list[Token] = []
    old_results: list[tuple[int, int]] = []
    recorded: dict[int, dict[int, Any]] = {}  # run -> seq -> last record
    ended: set[int] = set()
    refused: list[tuple[float, float]] = []  # (ready_at, when) of each LockedOut

    def feed(effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Record):
                inv = e.invocation
                assert inv.run not in ended, "a run continued after it ended"
                recorded.setdefault(inv.run, {})[inv.sequence] = inv
            elif isinstance(e, EndRun):
                ended.add(e.run)
            elif isinstance(e, Schedule):
                tokens.append(e.token)
            elif isinstance(e, Call):
                old_results.append((e.invocation.id, e.invocation.attempt))

    for op, dt, n in ops:
        now += dt
        try:
            if op == "start":
                feed(m.start(f"prompt at {now}", now))
            elif op == "stop":
                feed(m.stop(now))
            elif op in ("complete", "fail") and m.status is RunStatus.INVOKING:
                assert m.run is not None
                cur = m.run.current
                feed(
                    m.completed(cur.id, cur.attempt, f"out{cur.id}", now)
                    if op == "complete"
                    else m.failed(cur.id, cur.attempt, "boom", now)
                )
            elif op == "due" and tokens:
                feed(m.due(tokens[-1], now))
            elif op == "due_old" and tokens:
                feed(m.due(tokens[n % len(tokens)], now))
            elif op == "late" and old_results:
                inv_id, attempt = old_results[n % len(old_results)]
                feed(m.completed(inv_id, attempt, "late", now))
            elif op == "viewers":
                feed(m.viewers(n % 2, now))
        except LockedOut as exc:
            refused.append((exc.ready_at, now))
        # invariants after every step
        in_flight = [
            inv for seqs in recorded.values() for inv in seqs.values() if inv.state == "invoking"
        ]
        assert len(in_flight) <= 1
        assert (m.status is RunStatus.INVOKING) == bool(in_flight)
        if in_flight:
            assert m.run is not None
            assert in_flight[0].id == m.run.current.id
    assert all(ready_at > when for ready_at, when in refused)
    for run, seqs in recorded.items():
        assert sorted(seqs) == list(range(len(seqs))), "sequences are contiguous from 0"
        for seq, inv in seqs.items():
            assert inv.model == "abc"[seq % 3]
            if seq:
                assert inv.input == seqs[seq - 1].output
        assert seqs[0].id == run
