"""Several real nodes on one PostgreSQL database and one shared library folder.

Each node is `pipecast start --name NAME` in its own process with its own data
directory, sharing the library through `PIPECAST_STORE=postgresql://...`. The
faults are real: kill -9 of a node, SIGSTOP of a node past its lease, a
PostgreSQL restart. After each, every final path holds its original or a
complete AV1 file, every job ends encoded exactly once (one node logged its
commit), and no temp file of ours is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import make_clip
from pipecast.actors.media import inspect_media
from pipecast.testing import PIPECAST, ClusterNodes, PostgresServer, wait_for
from pipecast.transport import KEYS_DIR, read_keypair


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cluster(tmp_path: Path, postgres: PostgresServer) -> Iterator[ClusterNodes]:
    c = ClusterNodes(tmp_path, postgres.fresh_database())
    yield c
    c.close()


def clips(
    cluster: ClusterNodes, n: int, seconds: int = 2, size: str = "320x240"
) -> dict[Path, str]:
    out = {}
    for i in range(n):
        clip = make_clip(cluster.library / f"film{i}.mkv", seconds=seconds, size=size)
        out[clip] = sha(clip)
    return out


def assert_final(originals: dict[Path, str]) -> None:
    """Every final path holds its original or a complete AV1 file, never neither."""
    for path, digest in originals.items():
        assert path.exists(), path
        if sha(path) != digest:
            info = inspect_media(path)
            assert info.video is not None
            assert info.video.codec == "av1", path


def all_encoded(cluster: ClusterNodes, via: str, n: int) -> bool:
    jobs = cluster.jobs(via)
    return len(jobs) == n and all(j["state"] == "encoded" for j in jobs)


def test_a_node_that_runs_only_encode_encodes_what_another_node_analyzed(
    cluster: ClusterNodes,
) -> None:
    originals = clips(cluster, 3)
    a = cluster.start("a", ("analyze", "crf"))
    cluster.start("b", ("encode",))
    a.call("enqueue", paths=[str(cluster.library)])
    assert wait_for(lambda: all_encoded(cluster, "b", 3), 120, 0.1), cluster.jobs("b")
    jobs = cluster.jobs("a")  # any node reads the shared store
    assert {j["node"] for j in jobs} == {"b"}  # the holder is part of the record
    assert sorted(cluster.commits().values()) == [["b"]] * 3
    assert_final(originals)
    assert all(sha(p) != d for p, d in originals.items())
    assert cluster.ours() == []


def test_a_path_outside_the_path_table_is_refused_at_enqueue(
    cluster: ClusterNodes, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    outside = make_clip(tmp_path / "elsewhere" / "x.mkv", seconds=1)
    inside = make_clip(cluster.library / "in.mkv", seconds=1)
    # this node's table names the library only: a file beside it maps nowhere
    a = cluster.start("a", extra=f'\n[paths]\n"{cluster.library}" = "/media"\n')
    reply = a.call("enqueue", paths=[str(outside), str(inside)])
    assert [i["path"] for i in reply["ignored"]] == [str(outside)]
    assert "none of this node's folders in [paths]" in reply["ignored"][0]["why"]
    (job,) = cluster.jobs("a")
    assert job["path"] == str(inside)  # shown as this node sees it ...
    import psycopg  # noqa: PLC0415

    with psycopg.connect(cluster.url) as conn:  # ... kept in its shared form
        row = conn.execute("SELECT path FROM media_files").fetchone()
    assert row == ("/media/in.mkv",)


def test_a_node_stopped_past_its_lease_commits_nothing_of_the_job_another_took_over(
    cluster: ClusterNodes,
) -> None:
    (clip,) = clips(cluster, 1, seconds=6, size="640x480")
    original = sha(clip)
    a = cluster.start("a", preset=6)  # slow enough to be caught mid-encode
    a.call("enqueue", paths=[str(clip)])
    assert wait_for(lambda: cluster.jobs("a")[0]["state"] == "encoding", 60, 0.05)
    stopped = cluster.nodes["a"]
    stopped.proc.send_signal(signal.SIGSTOP)
    try:
        cluster.start("b", ("encode",))
        # b takes the job over once a's lease lapsed, and encodes it
        assert wait_for(lambda: all_encoded(cluster, "b", 1), 120, 0.1), cluster.jobs("b")
        assert cluster.jobs("b")[0]["node"] == "b"
    finally:
        stopped.proc.send_signal(signal.SIGCONT)
    # a wakes up: its hold is gone; it drops the job at its next renewal or commit
    assert wait_for(
        lambda: (
            "dropping job 1" in stopped.output()
            or "job 1 dropped" in stopped.output()
            or "not recorded" in stopped.output()
        ),
        30,
        0.1,
    ), stopped.output()[-3000:]
    assert cluster.commits() == {1: ["b"]}
    assert sha(clip) != original
    assert_final({clip: original})
    assert cluster.deaths() == []
    assert wait_for(lambda: cluster.ours() == [], 10, 0.1), cluster.ours()


@pytest.mark.parametrize("step", ["copied", "backed_up"])
def test_a_node_frozen_mid_commit_past_its_lease_swaps_no_file_when_it_wakes(
    cluster: ClusterNodes, step: str
) -> None:
    (clip,) = clips(cluster, 1)
    original = sha(clip)
    a = cluster.start("a", PIPECAST_STOP_AT=step)
    frozen = cluster.nodes["a"]
    a.call("enqueue", paths=[str(clip)])
    assert wait_for(lambda: _state(frozen.proc.pid) == "T", 60, 0.05)
    cluster.start("b", ("encode",))
    assert wait_for(lambda: all_encoded(cluster, "b", 1), 120, 0.1), cluster.jobs("b")
    encoded_by_b = sha(clip)
    assert encoded_by_b != original
    frozen.proc.send_signal(signal.SIGCONT)
    # a goes on with its commit where it stopped: the fence refuses it before the swap
    assert wait_for(lambda: "job 1 dropped" in frozen.output(), 30, 0.1), frozen.output()[-3000:]
    assert cluster.commits() == {1: ["b"]}
    assert sha(clip) == encoded_by_b  # b's file stands; a swapped nothing
    assert cluster.deaths() == []
    assert wait_for(lambda: cluster.ours() == [], 30, 0.1), cluster.ours()


def _state(pid: int) -> str:
    """The process's state letter (T: stopped)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2]


@pytest.mark.parametrize("step", ["backed_up", "placed", "recorded"])
def test_a_node_killed_mid_commit_is_finished_or_rolled_back_by_another(
    cluster: ClusterNodes, step: str
) -> None:
    originals = clips(cluster, 1)
    a = cluster.start("a", PIPECAST_CRASH_AT=step)
    a.call("enqueue", paths=[str(cluster.library)])
    crashed = cluster.nodes.pop("a")
    assert crashed.proc.wait(60) == -signal.SIGKILL
    crashed.close()
    assert_final(originals)
    cluster.start("b", ("encode",))  # a never comes back: b settles a's commit
    assert wait_for(lambda: all_encoded(cluster, "b", 1), 120, 0.1), cluster.jobs("b")
    committed = cluster.commits()
    # a placed the file; it is committed by a (recorded) or settled by b, never twice
    assert len(committed.get(1, [])) <= 1
    assert_final(originals)
    assert all(sha(p) != d for p, d in originals.items())
    cluster.start("a")  # back at last: it sweeps what it left in its work folder
    assert wait_for(lambda: cluster.ours() == [], 30, 0.1), cluster.ours()


@pytest.mark.parametrize("names", [("a", "b"), ("a", "b", "c")])
def test_kill_9_of_any_node_at_random_moments_loses_nothing_and_encodes_once(
    cluster: ClusterNodes, names: tuple[str, ...]
) -> None:
    """Two or three full nodes on one library; rounds of kill -9 of one of them at a
    moment drawn at random, then its restart. PIPECAST_FAULT_SEED /
    PIPECAST_FAULT_ROUNDS run others."""
    rng = random.Random(int(os.environ.get("PIPECAST_FAULT_SEED", "20")) + len(names))
    originals = clips(cluster, 4, seconds=3)
    for name in names:
        cluster.start(name)
    cluster.client("a").call("enqueue", paths=[str(cluster.library)])
    kills = []
    for _ in range(int(os.environ.get("PIPECAST_FAULT_ROUNDS", "5"))):
        victim = rng.choice(names)
        at = rng.uniform(0.3, 2.5)
        kills.append((victim, round(at, 2)))
        threading.Event().wait(at)  # a moment drawn at random: not a wait for anything
        cluster.kill(victim)
        assert_final(originals)
        cluster.start(victim)
    assert wait_for(lambda: all_encoded(cluster, "a", 4), 180, 0.1), (kills, cluster.jobs("a"))
    for path in originals:
        info = inspect_media(path)
        assert info.video is not None
        assert info.video.codec == "av1"
    committed = cluster.commits()
    assert all(len(v) <= 1 for v in committed.values()), (kills, committed)
    assert wait_for(lambda: cluster.ours() == [], 30, 0.1), (kills, cluster.ours())


def test_postgresql_restarted_mid_run_the_nodes_reconnect_and_finish(
    cluster: ClusterNodes, postgres: PostgresServer
) -> None:
    originals = clips(cluster, 3, seconds=3)
    cluster.start("a")
    cluster.start("b", ("encode",))
    cluster.client("a").call("enqueue", paths=[str(cluster.library)])
    assert wait_for(lambda: any(j["state"] == "encoding" for j in cluster.jobs("a")), 60, 0.05)
    postgres.restart()
    assert wait_for(lambda: all_encoded(cluster, "a", 3), 180, 0.1), cluster.jobs("a")
    assert cluster.deaths() == []  # an outage of the store kills no stage
    assert all(len(v) == 1 for v in cluster.commits().values())
    assert_final(originals)
    assert all(sha(p) != d for p, d in originals.items())
    assert wait_for(lambda: cluster.ours() == [], 30, 0.1), cluster.ours()


def test_another_nodes_stage_is_paused_by_name_and_its_job_cancelled_from_here(
    cluster: ClusterNodes,
) -> None:
    (clip,) = clips(cluster, 1, seconds=10, size="640x480")
    original = sha(clip)
    a = cluster.start("a", ("analyze", "crf"))
    cluster.start("b", ("encode",), preset=4)
    here, there = cluster.nodes["a"], cluster.nodes["b"]
    # b lets a's owner steer it too: --node uses your key, on the node you name
    owner = read_keypair(here.data_dir / KEYS_DIR / "owner.key").public
    allowed = subprocess.run(  # our own command
        [PIPECAST, "keys", "allow", "--data-dir", str(there.data_dir), "a-owner", "--role",
         "operate", "--", owner],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    listed = here.run("nodes", "--json")
    assert listed.returncode == 0, listed.stderr
    nodes = {n["name"]: n for n in json.loads(listed.stdout)["nodes"]}
    assert (sorted(nodes), nodes["b"]["stages"], nodes["b"]["control"]) == (
        ["a", "b"],
        ["encode"],
        there.control,
    )
    paused = here.run("pause", "encode", "--node", "b", "--json")
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout)["status"] == "paused"
    assert here.run("pause", "encode", "--node", "nobody").returncode == 2
    a.call("enqueue", paths=[str(clip)])
    assert wait_for(lambda: cluster.jobs("a")[0]["state"] == "crf_searched", 60, 0.05)
    assert here.run("resume", "encode", "--node", "b").returncode == 0
    assert wait_for(lambda: cluster.jobs("a")[0]["state"] == "encoding", 60, 0.05)
    assert a.call("cancel", id=1) == {"id": 1, "cancelled": "requested", "node": "b"}
    assert wait_for(lambda: cluster.jobs("a")[0]["state"] == "failed", 30, 0.05)
    job = cluster.jobs("a")[0]
    assert (job["failure"]["category"], job["failure"]["code"]) == ("cancelled", "CANCELLED")
    assert sha(clip) == original  # a cancel leaves the source as it was
    assert cluster.deaths() == []
    assert wait_for(lambda: cluster.ours() == [], 30, 0.1), cluster.ours()


def test_two_nodes_of_one_machine_share_a_library_in_one_sqlite_file(tmp_path: Path) -> None:
    c = ClusterNodes(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
    try:
        originals = clips(c, 4, seconds=3)
        a = c.start("a")
        c.start("b", ("encode",))
        a.call("enqueue", paths=[str(c.library)])
        assert wait_for(lambda: all_encoded(c, "b", 4), 120, 0.1), c.jobs("b")
        assert sorted(n["name"] for n in a.call("nodes")["nodes"]) == ["a", "b"]
        assert all(len(v) == 1 for v in c.commits().values())
        assert_final(originals)
        assert c.deaths() == []
    finally:
        c.close()
