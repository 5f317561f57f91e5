"""Every engine does what the plain-Python model of the rules does, step for step."""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipecast.actors.cluster import Claim, ClaimsModel, LeaseLost, open_claims

STAGES = ["encode", "encode", "analyze"]  # mostly one stage: claims meet often
NODES = ["n1", "n2"]
LEASE = 10.0

step = st.one_of(
    st.tuples(st.just("enqueue"), st.sampled_from(STAGES), st.integers(1, 3)),
    st.tuples(st.just("claim"), st.sampled_from(STAGES), st.sampled_from(NODES)),
    st.tuples(st.sampled_from(["renew", "finish", "fail"]), st.integers(0, 20)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("retry"), st.integers(1, 12)),
    st.tuples(st.just("pause"), st.sampled_from(STAGES), st.booleans()),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 3.0, 9.0, 12.0])),
    st.tuples(st.just("stall")),  # a lease runs out and is expired: the fencing's case
)


def _reset(url: str) -> None:
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url[len("sqlite://") :])
        db.executescript("DELETE FROM cluster_jobs; DELETE FROM cluster_stage_flags;")
        db.close()
        return
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE cluster_jobs, cluster_stage_flags RESTART IDENTITY")


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, max_size=40))
# the fencing's own case, always among the examples: a node stalls past its lease,
# claims the same job again, and its older attempt tries to finish
@example(
    steps=[
        ("enqueue", "encode", 1),
        ("claim", "encode", "n1"),
        ("stall",),
        ("claim", "encode", "n1"),
        ("finish", 0),
        ("renew", 0),
        ("fail", 0),
    ]
)
def test_an_engine_answers_and_holds_what_the_model_does(store_url, steps) -> None:
    open_claims(store_url).close()  # migrated
    _reset(store_url)
    engine, model = open_claims(store_url), ClaimsModel()
    claims: list[Claim] = []  # every claim ever handed out, stale ones included
    now = 1000.0
    try:
        for s in steps:
            kind = s[0]
            if kind == "enqueue":
                assert engine.enqueue(s[1], [{"i": i} for i in range(s[2])]) == model.enqueue(
                    s[1], s[2]
                )
            elif kind == "claim":
                got = engine.claim(s[1], s[2], now, LEASE)
                want = model.claim(s[1], s[2], now, LEASE)
                assert (None if got is None else (got.job, got.attempt)) == want
                if got is not None:
                    claims.append(got)
            elif kind in ("renew", "finish", "fail") and claims:
                c = claims[s[1] % len(claims)]
                ok = _try(engine, kind, c, now)
                args = (c.job, c.node, c.attempt, now)
                if kind == "renew":
                    want_ok = model.renew(*args, LEASE)
                elif kind == "finish":
                    want_ok = model.finish(*args, {"by": c.node})
                else:
                    want_ok = model.fail(*args, f"failed by {c.node}")
                assert ok == want_ok, (kind, c)
            elif kind == "expire":
                assert engine.expire(now) == model.expire(now)
            elif kind == "retry":
                assert engine.retry(s[1], now) == model.retry(s[1])
            elif kind == "pause":
                engine.set_paused(s[1], s[2])
                (model.paused.add if s[2] else model.paused.discard)(s[1])
            elif kind == "tick":
                now += s[1]
            elif kind == "stall":
                now += LEASE + 1.0
                assert engine.expire(now) == model.expire(now)
            for job, rec in model.jobs.items():
                got_rec = engine.job(job)
                assert got_rec is not None
                assert (
                    got_rec.state,
                    got_rec.node,
                    got_rec.attempt,
                    got_rec.lease_until,
                    got_rec.result,
                    got_rec.error,
                ) == (rec.state, rec.node, rec.attempt, rec.lease_until, rec.result, rec.error)
    finally:
        engine.close()


def _try(engine, kind: str, c: Claim, now: float) -> bool:
    try:
        if kind == "renew":
            engine.renew(c, now, LEASE)
        elif kind == "finish":
            engine.finish(c, {"by": c.node}, now)
        else:
            engine.fail(c, f"failed by {c.node}", now)
    except LeaseLost:
        return False
    return True
