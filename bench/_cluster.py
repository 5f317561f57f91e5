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
import subprocess
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ClusterBenchResult", "ClusterRun", "run_cluster_bench"]

_STAGES = {"all": ("analyze", "crf", "encode"), "encode": ("encode",)}


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


class _Cluster:
    """Node processes of one run on one database (the bench's own I/O shell)."""

    def __init__(self, root: Path, url: str, preset: int, lease: float) -> None:
        self.root, self.url, self.preset, self.lease = root, url, preset, lease
        self.nodes: list[Any] = []

    def start(self, name: str, stages: str = "all") -> Any:
        from pipecast.testing import NodeProcess  # noqa: PLC0415

        config = self.root / f"{name}.toml"
        tables = "".join(
            f'[[stages]]\nname = "{"crf_search" if k == "crf" else k}"\nkind = "{k}"\n'
            for k in _STAGES[stages]
        )
        config.write_text(
            textwrap.dedent(
                f"""
                [node]
                lease = {self.lease}
                [media]
                min_bytes = 1024
                max_output_ratio = 10.0
                [encode]
                preset = {self.preset}
                crf = 35
                """
            )
            + tables
        )
        node = NodeProcess(
            self.root / f"data-{name}",
            "--config",
            str(config),
            "--name",
            name,
            "--root",
            str(self.root),
            env={"PIPECAST_STORE": self.url},
        )
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)
                node.proc.terminate()
                try:
                    node.proc.wait(30)
                except subprocess.TimeoutExpired:  # a node that will not stop is killed
                    node.proc.kill()
            node.close()


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench cluster: {what} within {timeout} s")
        time.sleep(0.05)  # polling a remote store: the measurement's own resolution


def _run(root: Path, url: str, clips: list[Path], n: int, preset: int, raw: float) -> ClusterRun:
    lib = root / "library"
    lib.mkdir()
    paths = [str(shutil.copy2(c, lib / c.name)) for c in clips]
    cluster = _Cluster(root, url, preset, 60.0)
    try:
        nodes = [cluster.start(f"n{i + 1}") for i in range(n)]
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
    (folder / "library").mkdir(parents=True)
    path = str(shutil.copy2(clip, folder / "library" / clip.name))
    cluster = _Cluster(folder, url, 4, lease)
    try:
        a = cluster.start(f"a{t}")
        a.client(30).call("enqueue", paths=[path])

        def job(node: Any) -> dict[str, Any]:
            found: dict[str, Any] = {j["path"]: j for j in node.client(30).call("jobs")["jobs"]}
            return dict(found[path])

        _wait(lambda: job(a)["state"] == "encoding", 120, "the encode did not start")
        a.proc.send_signal(signal.SIGSTOP)
        b = cluster.start(f"b{t}", "encode")
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
            (root / "clips").mkdir()
            sources = ["grain", "mandelbrot", "testsrc2"]
            made = [
                make_clip(
                    root / "clips" / f"clip{i}.mkv",
                    seconds=seconds,
                    size=size,
                    source=sources[i % len(sources)],
                    crf=18,
                )
                for i in range(clips)
            ]
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
