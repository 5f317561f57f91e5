"""Holds on both engines: one holder per running job, fenced writes, lapsed holds
taken over, renewals, cancel requests, the commit guard, shared path forms.

Two `Library` objects with different node names on one database are two nodes
of a cluster; the clock is passed in, so a lease runs out when the test says.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import JobState, Library, Store
from pipecast.actors.cluster import LeaseLost, PathMap, PostgresDatabase, SqliteDatabase

LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgresql"])
def nodes(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[tuple[Library, Library]]:
    """Two nodes of one cluster: n1 and n2 on one database."""
    store = Store(tmp_path / "s.db")
    if request.param == "sqlite":
        db1 = db2 = SqliteDatabase(store)
        closers: list[PostgresDatabase] = []
    else:
        url = request.getfixturevalue("postgres").fresh_database()
        db1, db2 = PostgresDatabase(url), PostgresDatabase(url)
        closers = [db1, db2]
    yield Library(db1, "n1", LEASE, clock=clock), Library(db2, "n2", LEASE, clock=clock)
    for db in closers:
        db.close()
    store.close()


def clip(tmp_path: Path, name: str, content: bytes = b"x" * 100) -> str:
    p = tmp_path / name
    p.write_bytes(content)
    return str(p)


def analyzed(lib: Library, tmp_path: Path, name: str = "a.mkv") -> int:
    """A job waiting for its CRF search (analysis done by `lib`)."""
    _, job_id = lib.add(clip(tmp_path, name))
    assert lib.take(JobState.NEEDS_ANALYSIS) is not None
    lib.done(job_id, probe={"streams": []})
    return job_id


def test_a_claim_names_its_holder_a_new_fence_and_a_lease(nodes, tmp_path, clock) -> None:
    n1, _ = nodes
    job_id = analyzed(n1, tmp_path)
    job = n1.take(JobState.ANALYZED)
    assert job is not None
    assert (job.id, job.state, job.node) == (job_id, JobState.CRF_SEARCHING, "n1")
    assert job.fence == 2  # the analysis was the first claim
    assert job.lease_until == clock.now + LEASE
    assert n1.held() == {job_id: 2}


def test_two_nodes_claiming_at_once_never_take_one_job_twice(nodes, tmp_path) -> None:
    n1, n2 = nodes
    ids = {n1.add(clip(tmp_path, f"{i}.mkv", bytes([i]) * 50))[1] for i in range(40)}
    taken: dict[str, list[int]] = {"n1": [], "n2": []}

    def worker(lib: Library) -> None:
        while (job := lib.take(JobState.NEEDS_ANALYSIS)) is not None:
            taken[lib.node].append(job.id)
        lib.release()

    threads = [threading.Thread(target=worker, args=(lib,)) for lib in (n1, n2, n1, n2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = taken["n1"] + taken["n2"]
    assert sorted(everything) == sorted(ids)  # each exactly once
    assert {j.id: j.node for j in n1.jobs()} == {
        i: node for node, got in taken.items() for i in got
    }


WRITES = {
    "done": lambda lib, job: lib.done(job, crf=30.0),
    "journal": lambda lib, job: lib.set_fields(job, commit_step="copied"),
    "renew": lambda lib, job: lib.renew(job),
    "interrupt": lambda lib, job: lib.interrupt(job),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_node_whose_hold_was_taken_over_can_record_nothing(nodes, tmp_path, clock, write) -> None:
    n1, n2 = nodes
    job_id = analyzed(n1, tmp_path)
    assert n1.take(JobState.ANALYZED) is not None
    assert n2.lapsed(JobState.CRF_SEARCHING) == []  # the lease runs
    assert n2.adopt(job_id) is None
    clock.now += LEASE + 1
    assert n2.lapsed(JobState.CRF_SEARCHING) == [job_id]
    taken = n2.adopt(job_id)
    assert taken is not None
    assert (taken.node, taken.fence) == ("n2", 3)
    before = n1.get(job_id)
    with pytest.raises(LeaseLost):
        WRITES[write](n1, job_id)
    assert n1.get(job_id) == before  # nothing of n1's landed
    assert n1.held() == {}  # and n1 knows it now
    assert n1.statistics().lost == 1
    n2.done(job_id, crf=31.0)
    assert n1.get(job_id).crf == 31.0  # type: ignore[union-attr]


def test_the_commit_guard_refuses_a_lost_hold_before_its_block_runs(nodes, tmp_path, clock) -> None:
    n1, n2 = nodes
    job_id = analyzed(n1, tmp_path)
    assert n1.take(JobState.ANALYZED) is not None
    clock.now += LEASE + 1
    assert n2.adopt(job_id) is not None
    ran = []
    with pytest.raises(LeaseLost), n1.commit_guard(job_id):
        ran.append("swap")  # never: the file swap happens only under the check
    assert ran == []


def test_the_commit_guard_records_in_its_transaction_or_changes_nothing(nodes, tmp_path) -> None:
    n1, _ = nodes
    job_id = analyzed(n1, tmp_path)
    assert n1.take(JobState.ANALYZED) is not None

    def swap_that_fails() -> None:
        with n1.commit_guard(job_id) as guard:
            guard.done(crf=30.0)
            raise OSError("the disk went away mid-swap")

    with pytest.raises(OSError, match="disk"):
        swap_that_fails()
    job = n1.get(job_id)
    assert job is not None
    assert (job.state, job.crf, n1.held()) == (JobState.CRF_SEARCHING, None, {job_id: 2})
    with n1.commit_guard(job_id) as guard:
        guard.done(crf=30.0)
    assert n1.get(job_id).state is JobState.CRF_SEARCHED  # type: ignore[union-attr]
    assert n1.held() == {}


def test_a_lapsed_hold_nobody_took_over_is_still_the_holders(nodes, tmp_path, clock) -> None:
    n1, _ = nodes
    job_id = analyzed(n1, tmp_path)
    assert n1.take(JobState.ANALYZED) is not None
    clock.now += LEASE * 3  # frozen for a while; the fence, not the clock, decides
    assert n1.renew(job_id) is False
    assert n1.get(job_id).lease_until == clock.now + LEASE  # type: ignore[union-attr]
    assert n1.done(job_id, crf=30.0) is JobState.CRF_SEARCHED


def test_a_running_job_of_another_node_cannot_be_moved(nodes, tmp_path) -> None:
    n1, n2 = nodes
    job_id = analyzed(n1, tmp_path)
    assert n1.take(JobState.ANALYZED) is not None
    with pytest.raises(LeaseLost, match="held by node n1"):
        n2.interrupt(job_id)
    assert n2.retry([job_id]) == ([], [{"id": job_id, "why": "not failed (crf_searching)"}])


def test_a_restarted_node_takes_back_its_own_jobs_without_waiting(nodes, tmp_path, clock) -> None:
    n1, _ = nodes
    job_id = analyzed(n1, tmp_path)
    assert n1.take(JobState.ANALYZED) is not None
    again = Library(n1.db, "n1", LEASE, clock=clock)  # its next incarnation
    assert again.mine(JobState.CRF_SEARCHING) == [job_id]
    assert again.adopt(job_id) is None  # not lapsed: not for anyone else's way
    assert again.adopt(job_id, own=True) is not None
    assert again.interrupt(job_id) is JobState.ANALYZED


def test_a_cancel_asked_of_the_cluster_reaches_the_holder_at_its_renewal(nodes, tmp_path) -> None:
    n1, n2 = nodes
    job_id = analyzed(n1, tmp_path)
    assert n2.request_cancel(job_id) is None  # not running: nothing to ask
    assert n1.take(JobState.ANALYZED) is not None
    assert n1.renew(job_id) is False
    assert n2.request_cancel(job_id) == "n1"
    assert n1.renew(job_id) is True


def test_paths_are_kept_in_their_shared_form_and_shown_in_each_nodes_own(
    tmp_path: Path, clock: Clock
) -> None:
    store = Store(tmp_path / "s.db")
    here = tmp_path / "mnt" / "media"
    here.mkdir(parents=True)
    mine = Library(store, "n1", clock=clock, paths=PathMap.from_table({str(here): "/media"}))
    theirs = Library(store, "n2", clock=clock, paths=PathMap.from_table({"/srv/m": "/media"}))
    _, job_id = mine.add(clip(here, "a.mkv"))
    (row,) = store.connection().execute("SELECT path FROM media_files").fetchall()
    assert row == ("/media/a.mkv",)
    assert mine.get(job_id).path == str(here / "a.mkv")  # type: ignore[union-attr]
    assert theirs.get(job_id).path == "/srv/m/a.mkv"  # type: ignore[union-attr]
    assert mine.by_path(str(here / "a.mkv")) is not None
    outside = tmp_path / "b.mkv"
    outside.write_bytes(b"y" * 10)
    with pytest.raises(Exception, match="none of this node's folders"):
        mine.add(str(outside))
    store.close()
