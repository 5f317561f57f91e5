"""Two library nodes on one database do, step for step, what the model of holds does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipecast.actors import JobState, Library, Store
from pipecast.actors.cluster import (
    HoldsModel,
    LeaseLost,
    Outcome,
    PostgresDatabase,
    SqliteDatabase,
)
from pipecast.actors.media import InvalidTransition

LEASE = 10.0
NODES = ["n1", "n2"]

step = st.one_of(
    st.tuples(st.just("add")),
    st.tuples(st.just("take"), st.sampled_from(NODES)),
    st.tuples(
        st.sampled_from(["renew", "done", "adopt"]), st.sampled_from(NODES), st.integers(1, 6)
    ),
    st.tuples(st.just("sweep"), st.sampled_from(NODES)),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 4.0, 9.0, 11.0])),
)


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _attempt(lib: Library, op: str, job: int) -> Outcome:
    try:
        if op == "renew":
            lib.renew(job)
        else:
            lib.done(job, probe={})
    except LeaseLost:
        return Outcome.LOST
    except InvalidTransition:
        return Outcome.INVALID
    return Outcome.OK


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, max_size=30))
# the fencing's own case, always among the examples: n1 stalls past its lease, n2
# takes the job over, and n1's late writes are refused
@example(
    steps=[
        ("add",),
        ("take", "n1"),
        ("tick", 11.0),
        ("sweep", "n2"),
        ("renew", "n1", 1),
        ("done", "n1", 1),
        ("done", "n2", 1),
    ]
)
def test_two_nodes_answer_and_hold_what_the_model_does(engine, request, tmp_path_factory, steps):
    folder = tmp_path_factory.mktemp("holds")
    store = Store(folder / "s.db")
    if engine == "sqlite":
        dbs = [SqliteDatabase(store)] * 2
    else:
        url = request.getfixturevalue("postgres").fresh_database()
        dbs = [PostgresDatabase(url), PostgresDatabase(url)]
    clock = Clock()
    libs = {n: Library(db, n, LEASE, clock=clock) for n, db in zip(NODES, dbs, strict=True)}
    model = HoldsModel(LEASE)
    try:
        for s in steps:
            kind = s[0]
            if kind == "add":
                path = folder / f"{len(model.jobs)}.mkv"
                path.write_bytes(bytes([len(model.jobs)]) * 64)
                assert libs["n1"].add(str(path))[1] == model.add()
            elif kind == "take":
                got = libs[s[1]].take(JobState.NEEDS_ANALYSIS)
                assert (None if got is None else got.id) == model.take(s[1], clock.now)
            elif kind == "sweep":
                lapsed = libs[s[1]].lapsed(JobState.ANALYZING)
                assert lapsed == model.lapsed(s[1], clock.now)
                for job in lapsed:
                    got = libs[s[1]].adopt(job)
                    want = model.adopt(s[1], job, clock.now)
                    assert (got is not None) == (want is Outcome.OK)
            elif kind == "tick":
                clock.now += s[1]
            elif s[2] in model.jobs:
                lib, job = libs[s[1]], s[2]
                if kind == "renew":
                    assert _attempt(lib, kind, job) is model.renew(s[1], job, clock.now)
                elif kind == "done":
                    assert _attempt(lib, kind, job) is model.done(s[1], job)
                else:
                    got = lib.adopt(job)
                    want = model.adopt(s[1], job, clock.now)
                    assert (got is not None) == (want is Outcome.OK)
            for job, rec in model.jobs.items():
                row = libs["n1"].get(job)
                assert row is not None
                state = {"needs_analysis": "queued", "analyzing": "running"}.get(
                    row.state.value, "done"
                )
                assert (state, row.node, row.fence, row.lease_until) == (
                    rec.state,
                    rec.node,
                    rec.fence,
                    rec.lease_until,
                )
            for n in NODES:
                assert libs[n].held() == model.beliefs.get(n, {})
    finally:
        for db in dbs:
            if isinstance(db, PostgresDatabase):
                db.close()
        store.close()
