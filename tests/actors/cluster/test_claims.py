"""The claims contract, on both engines: one holder per job, leases, fencing, flags."""

from __future__ import annotations

import contextlib
import threading

import pytest

from pipecast.actors.cluster import (
    SCHEMA_VERSION,
    ClaimState,
    LeaseLost,
    StoreError,
    open_claims,
)

LEASE = 10.0


def test_a_claimed_job_is_nobody_elses_until_its_lease_ends(claims) -> None:
    (job,) = claims.enqueue("encode", [{"path": "/m/a.mkv"}])
    first = claims.claim("encode", "n1", 100.0, LEASE)
    assert (first.job, first.attempt, first.payload) == (job, 1, {"path": "/m/a.mkv"})
    assert claims.claim("encode", "n2", 105.0, LEASE) is None
    assert claims.expire(109.0) == 0  # not over yet
    assert claims.expire(111.0) == 1
    second = claims.claim("encode", "n2", 111.0, LEASE)
    assert (second.job, second.node, second.attempt) == (job, "n2", 2)


def test_a_stale_attempt_can_never_record_anything(claims) -> None:
    claims.enqueue("encode", [{"n": 1}])
    old = claims.claim("encode", "n1", 100.0, LEASE)
    claims.expire(200.0)  # n1 was paused past its lease
    new = claims.claim("encode", "n2", 200.0, LEASE)
    for late in (
        lambda: claims.finish(old, {"size": 1}, 201.0),
        lambda: claims.fail(old, "boom", 201.0),
        lambda: claims.renew(old, 201.0, LEASE),
    ):
        with pytest.raises(LeaseLost):
            late()
    record = claims.job(new.job)
    assert (record.state, record.node, record.attempt) == (ClaimState.CLAIMED, "n2", 2)
    claims.finish(new, {"size": 2}, 202.0)
    record = claims.job(new.job)
    assert (record.state, record.result) == (ClaimState.DONE, {"size": 2})


def test_a_lease_that_ran_out_cannot_be_renewed_or_finished_even_before_expire(claims) -> None:
    claims.enqueue("encode", [{}])
    held = claims.claim("encode", "n1", 100.0, LEASE)
    held = claims.renew(held, 105.0, LEASE)  # renewed while running: until 115
    assert held.lease_until == 115.0
    with pytest.raises(LeaseLost):
        claims.finish(held, {}, 116.0)
    assert claims.job(held.job).state is ClaimState.CLAIMED  # nothing changed


def test_a_paused_stage_is_claimed_by_no_node_and_the_flag_is_shared(claims, store_url) -> None:
    claims.enqueue("encode", [{}])
    other = open_claims(store_url)
    try:
        other.set_paused("encode", True)
        assert claims.is_paused("encode")
        assert claims.claim("encode", "n1", 1.0, LEASE) is None
        other.set_paused("encode", False)
        assert claims.claim("encode", "n1", 1.0, LEASE) is not None
    finally:
        other.close()


def test_a_failed_job_is_retried_and_claimed_again_under_a_new_attempt(claims) -> None:
    (job,) = claims.enqueue("encode", [{}])
    held = claims.claim("encode", "n1", 1.0, LEASE)
    claims.fail(held, "ENOSPC", 2.0)
    assert claims.job(job).error == "ENOSPC"
    assert claims.retry(job, 3.0)
    assert not claims.retry(job, 3.0)  # queued, not failed: nothing to retry
    again = claims.claim("encode", "n2", 4.0, LEASE)
    assert (again.job, again.attempt) == (job, 2)


def test_jobs_are_claimed_oldest_first_and_only_from_their_stage(claims) -> None:
    a, b = claims.enqueue("encode", [{"i": 1}, {"i": 2}])
    claims.enqueue("analyze", [{"i": 3}])
    assert [claims.claim("encode", "n", 1.0, LEASE).job for _ in range(2)] == [a, b]
    assert claims.claim("encode", "n", 1.0, LEASE) is None


def test_concurrent_claimers_never_share_a_job(store_url) -> None:
    setup = open_claims(store_url)
    jobs = setup.enqueue("encode", [{"i": i} for i in range(120)])
    setup.close()
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(node: str) -> None:
        store = open_claims(store_url, timeout=30.0)
        mine = got.setdefault(node, [])
        try:
            while (held := store.claim("encode", node, 1.0, LEASE)) is not None:
                mine.append(held.job)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(f"n{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    claimed = [job for mine in got.values() for job in mine]
    assert sorted(claimed) == jobs  # every job once, none twice


def test_migrating_is_versioned_and_idempotent(claims, store_url) -> None:
    assert claims.migrate() == SCHEMA_VERSION
    again = open_claims(store_url)  # a second node starting on the same store
    try:
        assert again.migrate() == SCHEMA_VERSION
    finally:
        again.close()


def test_a_store_url_names_an_engine() -> None:
    with pytest.raises(StoreError, match="sqlite:///PATH or postgresql://"):
        open_claims("mysql://x")


def test_postgres_restarted_under_a_node_is_reconnected_and_nothing_is_lost(postgres) -> None:
    url = postgres.fresh_database()
    store = open_claims(url)
    try:
        (job,) = store.enqueue("encode", [{"i": 1}])
        held = store.claim("encode", "n1", 1.0, LEASE)
        postgres.restart()
        with contextlib.suppress(StoreError):  # the call that meets the broken connection
            store.renew(held, 2.0, LEASE)
        held = store.renew(held, 3.0, LEASE)  # a new connection
        store.finish(held, {"ok": True}, 4.0)
        assert store.job(job).state is ClaimState.DONE
    finally:
        store.close()


def test_a_client_without_the_password_is_refused(postgres) -> None:
    url = postgres.dsn.replace(postgres.password, "not-the-password")
    with pytest.raises(StoreError, match="postgresql"):
        open_claims(url, timeout=5.0)


def test_the_same_node_claiming_again_fences_its_own_older_attempt(claims) -> None:
    claims.enqueue("encode", [{}])
    old = claims.claim("encode", "n1", 100.0, LEASE)
    claims.expire(120.0)  # n1 stalled past its lease, then came back and claimed anew
    new = claims.claim("encode", "n1", 120.0, LEASE)
    assert (new.job, new.attempt) == (old.job, 2)
    with pytest.raises(LeaseLost):
        claims.finish(old, {"from": "the stale attempt"}, 121.0)
    claims.finish(new, {"from": "the live attempt"}, 121.0)
    assert claims.job(new.job).result == {"from": "the live attempt"}


def test_statistics_count_what_this_node_did_and_the_jobs_by_state(claims) -> None:
    claims.enqueue("encode", [{}, {}, {}])
    a = claims.claim("encode", "n1", 1.0, LEASE)
    claims.claim("encode", "n1", 1.0, LEASE)
    a = claims.renew(a, 2.0, LEASE)
    claims.expire(100.0)
    with pytest.raises(LeaseLost):
        claims.finish(a, {}, 100.0)
    stats = claims.statistics()
    assert (stats.claimed, stats.renewed, stats.lost, stats.expired) == (2, 1, 1, 2)
    assert stats.jobs == {"queued": 3}
