"""`pipecast bench cluster`: a library encoded by 1, 2 and 3 nodes on one PostgreSQL.

Real node processes (`pipecast start --name nI`, each with its own data
directory) share a throwaway PostgreSQL cluster and one library folder. Each
run enqueues the same short clips on the first node and times from the
enqueue to the last file committed, with each node's CPU (its own threads and
the ffmpeg it ran) and how many jobs it encoded. The raw baseline, in the same
run, is the encoder's ffmpeg command over the same clips, one after another.
On one machine the nodes share its cores, so more nodes do not make more
CPU: the figures say what the cluster machinery costs and how the work
spreads, not how a cluster of machines scales.

Also measured: the claim latency (the claiming transaction, from each media
stage's `stats`), and the time from a frozen node's lease running out to
another node holding its job (SIGSTOP mid-encode).
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._figures import bench_clips

__all__ = ["ClusterBenchResult", "ClusterRun", "run_cluster_bench"]


@dataclass(frozen=True, slots=True)
class ClusterRun:
    nodes: int
    seconds: float  # enqueue to the last commit
    jobs_per_minute: float
    ratio: float  # seconds / the raw baseline's
    node_cpu_seconds: tuple[float, ...]  # per node: its threads and its ffmpeg
    jobs_by_node: tuple[int, ...]  # per node: the jobs it encoded
    claim_p99_ms: float  # the slowest of the nodes' media stages' p99
    claims: int


@dataclass(frozen=True, slots=True)
class ClusterBenchResult:
    clips: int
    seconds_per_clip: float
    size: str
    preset: int
    raw_seconds: float
    runs: tuple[ClusterRun, ...]
    lease: float
    reclaim_seconds: tuple[float, ...]  # lease end -> another node holds the job, per try

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of its children it has reaped (its ffmpeg runs)."""
    import os  # noqa: PLC0415

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench cluster: {what} within {timeout} s")
        time.sleep(0.05)  # polling a remote store: the measurement's own resolution


def _run(root: Path, url: str, clips: list[Path], n: int, preset: int, raw: float) -> ClusterRun:
    from pipecast.testing import ClusterNodes  # noqa: PLC0415

    cluster = ClusterNodes(root, url, 60.0, replace=False, crf=35)
    paths = [str(shutil.copy2(c, cluster.library / c.name)) for c in clips]
    try:
        for i in range(n):
            cluster.start(f"n{i + 1}", preset=preset)
        nodes = list(cluster.nodes.values())
        client = nodes[0].client(30)
        cpu0 = [_tree_cpu(node.proc.pid) for node in nodes]
        t0 = time.perf_counter()
        client.call("enqueue", paths=paths)

        def ended() -> bool:
            jobs = client.call("jobs")["jobs"]
            bad = [j for j in jobs if j["state"] in ("failed", "skipped")]
            if bad:
                raise RuntimeError(f"bench cluster: a job did not encode: {bad[0]}")
            return len(jobs) == len(paths) and all(j["state"] == "encoded" for j in jobs)

        _wait(ended, 3600, "the library was not encoded")
        elapsed = time.perf_counter() - t0
        jobs = client.call("jobs")["jobs"]
        stats = [node.client(30).call("stats") for node in nodes]
        cpu = [_tree_cpu(node.proc.pid) - c for node, c in zip(nodes, cpu0, strict=True)]
    finally:
        cluster.close()
    holds = [
        part["holds"]
        for s in stats
        for name, part in s.items()
        if name.startswith("stage/") and isinstance(part, dict) and part.get("holds")
    ]
    return ClusterRun(
        nodes=n,
        seconds=round(elapsed, 3),
        jobs_per_minute=round(len(paths) / elapsed * 60, 2),
        ratio=round(elapsed / raw, 3),
        node_cpu_seconds=tuple(round(c, 2) for c in cpu),
        jobs_by_node=tuple(sum(1 for j in jobs if j["node"] == f"n{i + 1}") for i in range(n)),
        claim_p99_ms=max((h["claim_p99_ms"] or 0.0) for h in holds),
        claims=sum(h["claimed"] for h in holds),
    )


def _reclaim(root: Path, url: str, clip: Path, lease: float, tries: int) -> list[float]:
    """Seconds from a frozen node's lease end to another node holding its job, per try."""
    return [_reclaim_once(root / f"reclaim{t}", url, clip, lease, t) for t in range(tries)]


def _reclaim_once(folder: Path, url: str, clip: Path, lease: float, t: int) -> float:
    from pipecast.testing import ClusterNodes  # noqa: PLC0415

    cluster = ClusterNodes(folder, url, lease, replace=False, crf=35)
    path = str(shutil.copy2(clip, cluster.library / clip.name))
    try:
        cluster.start(f"a{t}", preset=4).call("enqueue", paths=[path])
        a = cluster.nodes[f"a{t}"]

        def job(node: Any) -> dict[str, Any]:
            found: dict[str, Any] = {j["path"]: j for j in node.client(30).call("jobs")["jobs"]}
            return dict(found[path])

        _wait(lambda: job(a)["state"] == "encoding", 120, "the encode did not start")
        a.proc.send_signal(signal.SIGSTOP)
        cluster.start(f"b{t}", ("encode",), preset=4)
        b = cluster.nodes[f"b{t}"]
        lease_end = float(job(b)["lease_until"])  # frozen: a renews no more
        _wait(lambda: job(b)["node"] == f"b{t}", lease * 3 + 30, "no node took the job over")
        return round(time.time() - lease_end, 3)
    finally:
        cluster.close()


def run_cluster_bench(
    clips: int = 8,
    seconds: float = 3.0,
    size: str = "640x360",
    preset: int = 10,
    nodes: tuple[int, ...] = (1, 2, 3),
    lease: float = 3.0,
    reclaims: int = 3,
) -> ClusterBenchResult:
    """Blocks for a few minutes. Needs PostgreSQL's server binaries (Debian's
    `postgresql`); the cluster it starts is owned by `nobody` and removed after."""
    from pipecast.actors import EncodeSettings, make_clip  # noqa: PLC0415
    from pipecast.actors.media import run_ffmpeg  # noqa: PLC0415
    from pipecast.testing import PostgresServer, find_postgres  # noqa: PLC0415

    logging.getLogger("pipecast").setLevel(logging.WARNING)
    bin_dir, why = find_postgres()
    if bin_dir is None:
        raise RuntimeError(f"bench cluster needs PostgreSQL: {why}")
    settings = EncodeSettings(preset=preset, crf=35)
    server = PostgresServer(bin_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="pipecast-bench-cluster-") as tmp:
            root = Path(tmp)
            made = bench_clips(root / "clips", clips, seconds, size)
            (root / "raw").mkdir()
            t0 = time.perf_counter()
            for clip in made:
                code, errors = run_ffmpeg(settings.args(str(clip), str(root / "raw" / clip.name)))
                if code != 0:
                    raise RuntimeError(f"raw encode failed: {errors[-300:]}")
            raw = time.perf_counter() - t0
            runs = []
            for n in nodes:
                (root / f"run{n}").mkdir()
                runs.append(_run(root / f"run{n}", server.fresh_database(), made, n, preset, raw))
            long_clip = make_clip(root / "clips" / "long.mkv", seconds=20, size="640x480")
            reclaim = _reclaim(root, server.fresh_database(), long_clip, lease, reclaims)
    finally:
        server.stop()
    return ClusterBenchResult(
        clips=clips,
        seconds_per_clip=seconds,
        size=size,
        preset=preset,
        raw_seconds=round(raw, 3),
        runs=tuple(runs),
        lease=lease,
        reclaim_seconds=tuple(reclaim),
    )
