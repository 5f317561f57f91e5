"""The library in a real SQLite file: idempotent adds, one owner per job, retries and their bound."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import JobState, Library, MediaFailure, Store
from pipecast.actors.cluster import PostgresDatabase


@pytest.fixture(params=["sqlite", "postgresql"])
def lib(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Library]:
    """The library on each engine: the node's SQLite file, a fresh PostgreSQL database."""
    store = Store(tmp_path / "s.db")
    if request.param == "sqlite":
        yield Library(store)
    else:
        db = PostgresDatabase(request.getfixturevalue("postgres").fresh_database())
        yield Library(db)
        db.close()
    store.close()


def touch(tmp_path: Path, name: str, content: bytes = b"x" * 100) -> str:
    p = tmp_path / name
    p.write_bytes(content)
    return str(p)


def test_adding_a_file_twice_makes_one_job(lib: Library, tmp_path: Path) -> None:  # E1
    path = touch(tmp_path, "a.mkv")
    what, first = lib.add(path)
    again, second = lib.add(path)
    assert (what, again, first) == ("added", "known", second)
    assert len(lib.jobs()) == 1


def test_a_changed_file_is_analyzed_again(lib: Library, tmp_path: Path) -> None:
    path = touch(tmp_path, "a.mkv")
    _, job_id = lib.add(path)
    lib.take(JobState.NEEDS_ANALYSIS)
    lib.done(job_id, probe={"x": 1})
    Path(path).write_bytes(b"y" * 200)
    assert lib.add(path) == ("rescanned", job_id)
    job = lib.get(job_id)
    assert job is not None
    assert (job.state, job.probe, job.size) == (JobState.NEEDS_ANALYSIS, None, 200)


def test_two_stages_racing_for_jobs_each_take_a_job_once(lib: Library, tmp_path: Path) -> None:
    ids = {lib.add(touch(tmp_path, f"{i}.mkv"))[1] for i in range(60)}
    taken: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while (job := lib.take(JobState.NEEDS_ANALYSIS)) is not None:
            with lock:
                taken.append(job.id)
        lib.release()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)


def test_a_retryable_failure_is_retried_up_to_the_bound_then_parked(
    lib: Library, tmp_path: Path
) -> None:  # E3
    _, job_id = lib.add(touch(tmp_path, "a.mkv"))
    stall = MediaFailure("stalled", "STALLED", "no progress")
    states = []
    for _ in range(3):
        job = lib.take(JobState.NEEDS_ANALYSIS)
        assert job is not None
        states.append(lib.fail(job_id, "analysis", stall, max_attempts=3))
    assert states == [JobState.NEEDS_ANALYSIS, JobState.NEEDS_ANALYSIS, JobState.FAILED]
    job = lib.get(job_id)
    assert job is not None
    assert job.failure == {
        "stage": "analysis",
        "category": "stalled",
        "code": "STALLED",
        "message": "no progress",
    }


def test_a_permanent_failure_is_not_retried(lib: Library, tmp_path: Path) -> None:
    _, job_id = lib.add(touch(tmp_path, "a.mkv"))
    lib.take(JobState.NEEDS_ANALYSIS)
    bad = MediaFailure("source_corrupt", "SOURCE_ERRORS", "broken")
    assert lib.fail(job_id, "analysis", bad, max_attempts=3) is JobState.FAILED


def test_failed_jobs_are_retried_in_bulk_by_code(lib: Library, tmp_path: Path) -> None:  # E4
    ids = [lib.add(touch(tmp_path, f"{i}.mkv"))[1] for i in range(3)]
    codes = ["SOURCE_ERRORS", "SOURCE_ERRORS", "NO_VIDEO"]
    for job_id, code in zip(ids, codes, strict=True):
        lib.take(JobState.NEEDS_ANALYSIS)
        lib.fail(job_id, "analysis", MediaFailure("source_corrupt", code, "x"), 3)
    assert lib.failure_codes() == ["NO_VIDEO", "SOURCE_ERRORS", "source_corrupt"]
    assert lib.retry(code="SOURCE_ERRORS") == (ids[:2], [])
    assert [j.state for j in lib.jobs()] == [
        JobState.NEEDS_ANALYSIS,
        JobState.NEEDS_ANALYSIS,
        JobState.FAILED,
    ]
    assert lib.retry(ids=[ids[2], 999]) == ([ids[2]], [{"id": 999, "why": "no such job"}])
    assert lib.retry(ids=[ids[0]]) == (  # not failed: nothing to retry, and why
        [],
        [{"id": ids[0], "why": "not failed (needs_analysis)"}],
    )


def test_a_category_retries_every_failed_job_of_it(lib: Library, tmp_path: Path) -> None:
    ids = [lib.add(touch(tmp_path, f"{i}.mkv"))[1] for i in range(2)]
    for job_id, category in zip(ids, ["resource", "source_corrupt"], strict=True):
        lib.take(JobState.NEEDS_ANALYSIS)
        lib.fail(job_id, "analysis", MediaFailure(category, "X", "x"), 0)  # no automatic retry
    assert lib.retry(code="resource") == ([ids[0]], [])


def test_a_queued_job_is_cancelled_and_a_running_one_is_left_to_its_stage(
    lib: Library, tmp_path: Path
) -> None:
    a = lib.add(touch(tmp_path, "a.mkv"))[1]
    b = lib.add(touch(tmp_path, "b.mkv"))[1]
    lib.take(JobState.NEEDS_ANALYSIS)  # a is running
    assert lib.cancel_queued(b) is True
    assert lib.cancel_queued(a) is False
    job = lib.get(b)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.failure is not None
    assert job.failure["category"] == "cancelled"


def test_recent_slopes_are_those_searches_with_the_same_encoder_fitted_newest_first(
    lib: Library, tmp_path: Path
) -> None:  # docs/crf_search.md, the learned slope
    searches = [
        {"encoder": "svt-p10", "u_slope": 0.11},
        {"encoder": "x264", "u_slope": 0.2},  # another encoder
        {"encoder": "svt-p10", "u_slope": None},  # probes too close to fit one
        {"encoder": "svt-p10"},  # an older summary, before slopes were kept
        {"encoder": "svt-p10", "u_slope": 0.12},
    ]
    for i, search in enumerate(searches):
        _, job_id = lib.add(touch(tmp_path, f"{i}.mkv"))
        lib.set_fields(job_id, search=search)
    assert lib.searches.recent_slopes("svt-p10") == [0.12, 0.11]
    assert lib.searches.recent_slopes("svt-p10", limit=1) == [0.12]
    assert lib.searches.recent_slopes("nothing") == []


def _probe(crf: float, **extra: object) -> dict[str, object]:
    return {
        "crf": crf, "mean": 95.0, "worst": 94.0, "p1": 90.0, "se": 0.1, "percent": 40.0,
        "seconds": 1.0, "samples": [95.0, 95.0], "cached": False, **extra,
    }  # fmt: skip


def test_a_store_from_before_paired_probes_gains_the_column_and_keeps_its_probes(
    tmp_path: Path,
) -> None:
    import sqlite3  # noqa: PLC0415

    path = tmp_path / "old.db"
    store = Store(path)
    lib = Library(store)
    _, job_id = lib.add(touch(tmp_path, "a.mkv"))
    lib.searches.record_probe(job_id, 95.0, _probe(30.0))
    store.close()
    # take the column away again, as a store written by the version before had it
    db = sqlite3.connect(path)
    try:
        db.execute("ALTER TABLE crf_probes DROP COLUMN paired_with")
        db.commit()
    finally:
        db.close()
    store = Store(path)
    try:
        lib = Library(store)
        lib.searches.record_probe(job_id, 95.0, _probe(32.0, paired_with=30.0))
        assert [(p["crf"], p["paired_with"]) for p in lib.searches.probes_of(job_id)] == [
            (30.0, None),
            (32.0, 30.0),
        ]
    finally:
        store.close()


def test_a_copy_finds_the_crf_chosen_for_the_same_content_with_the_same_encoder_and_target(
    lib: Library, tmp_path: Path
) -> None:
    content = b"same bytes" * 50
    _, a = lib.add(touch(tmp_path, "a.mkv", content))
    _, b = lib.add(touch(tmp_path, "b.mkv", content))
    _, other = lib.add(touch(tmp_path, "c.mkv", b"other" * 100))
    ja = lib.get(a)
    assert ja is not None
    assert (
        lib.searches.same_content_crf(ja.size, ja.digest, b, "enc1", 95.0) is None
    )  # nothing searched
    lib.take(JobState.NEEDS_ANALYSIS)
    lib.done(a, probe={"x": 1})
    lib.take(JobState.ANALYZED)
    lib.done(a, crf=33.5, search={"encoder": "enc1", "target": 95.0})
    assert lib.searches.same_content_crf(ja.size, ja.digest, b, "enc1", 95.0) == 33.5
    assert lib.searches.same_content_crf(ja.size, ja.digest, a, "enc1", 95.0) is None  # not itself
    assert (
        lib.searches.same_content_crf(ja.size, ja.digest, b, "enc2", 95.0) is None
    )  # other arguments
    assert (
        lib.searches.same_content_crf(ja.size, ja.digest, b, "enc1", 94.0) is None
    )  # other target
    jo = lib.get(other)
    assert jo is not None
    assert (
        lib.searches.same_content_crf(jo.size, jo.digest, b, "enc1", 95.0) is None
    )  # other content
