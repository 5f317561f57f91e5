"""`pipecast bench pipeline`: the pipeline's wall time against ffmpeg run directly.

Clips of different content are made at run time. The raw baseline runs the
very ffmpeg command the encoder runs (`EncodeSettings.args`), one clip after
another. The pipeline run enqueues the same clips into a node and times from
the enqueue to the last file committed; it does everything a user gets:
probing, the encode, the full-decode verification, the gates and the
fsynced commit. A third run turns the full-decode gate off, to tell the
cost of that check from the pipeline's own; the jobs' records split the
pipeline's time into encode, full-decode check and the rest. Repeats in a
rotated order; ratios paired within a repeat, then medians. Target ratio
<= 1.05.

The preset is the product's default unless given. The full decode is real
CPU work (dav1d, ~1.4 CPU-s for 10 s of 720p) on a machine the encoder
already saturates, so its share is set by the encode's cost: ~6-8 % of a
preset-8 encode on 2 cores.
"""

from __future__ import annotations

import logging
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._figures import bench_clips

__all__ = ["PipelineBenchResult", "run_pipeline_bench"]


@dataclass(frozen=True, slots=True)
class PipelineBenchResult:
    clips: int
    seconds_per_clip: float
    size: str
    preset: int
    repeats: int
    raw_seconds: float  # medians over the repeats
    pipeline_seconds: float
    ratio: float  # median over the repeats of pipeline / raw in the same repeat
    encode_share: float  # of the pipeline's time, the part spent in ffmpeg encoding
    verify_share: float  # of the pipeline's time, the full-decode check
    overhead_seconds: float  # all but the encode: probe, verify, commit, hand-offs
    own_seconds: float  # all but the encode and the verify: what pipecast itself adds
    node_cpu_seconds: float  # CPU of the node's own threads (ffmpeg not counted)
    no_decode_seconds: float  # the pipeline with the full-decode gate turned off
    no_decode_ratio: float  # paired, as `ratio`

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Run:
    elapsed: float
    encode: float  # summed active encode seconds of the jobs
    verify: float
    node_cpu: float


def _raw(clips: list[Path], out: Path, settings: Any) -> float:
    from pipecast.actors.media import run_ffmpeg  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for clip in clips:
        code, errors = run_ffmpeg(settings.args(str(clip), str(out / f"{clip.stem}.mkv")))
        if code != 0:
            raise RuntimeError(f"raw encode failed: {errors[-300:]}")
    return time.perf_counter() - t0


def _pipeline(clips: list[Path], data: Path, settings: Any, verify_decode: bool = True) -> _Run:
    from pipecast.actors import MediaPolicy, Node, NodeConfig, StageConfig  # noqa: PLC0415
    from pipecast.transport import (  # noqa: PLC0415
        Update,
    )

    loop = "tcp://127.0.0.1:*"
    policy = MediaPolicy(
        min_bytes=1024,
        max_output_ratio=10.0,
        verify_decode=verify_decode,
        roots=tuple(sorted({str(c.parent.absolute()) for c in clips})),
    )
    # the configured CRF, as the raw command has: the CRF search's cost is `bench crf`'s
    stages = (
        StageConfig("analyze", "analyze"),
        StageConfig("crf_search", "crf"),
        StageConfig("encode", "encode"),
    )
    config = NodeConfig(
        loop, loop, loop, data_dir=data, stages=stages, networks=(), media=policy, encode=settings
    )
    node = Node(config).start()
    ended = threading.Event()

    def on_event(ev: Any) -> None:  # the bridge's thread: an event, not polling
        state = (
            ev.data if isinstance(ev, Update) else ev.state.get("stage/encode", {}).get("state")
        ) or {}
        if sum(state.get(k) or 0 for k in ("done", "failed", "skipped")) >= len(clips):
            ended.set()

    assert node.bridge is not None
    token = node.bridge.subscribe(["stage/encode"], on_event)
    try:
        client = node.client(30)
        cpu0, t0 = time.process_time(), time.perf_counter()
        client.call("enqueue", paths=[str(c) for c in clips])
        if not ended.wait(3600):
            raise RuntimeError("the pipeline did not finish within an hour")
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        jobs = client.call("jobs")["jobs"]
    finally:
        node.bridge.unsubscribe(token)
        node.stop()
    bad = [j for j in jobs if j["state"] != "encoded"]
    if bad:
        raise RuntimeError(f"not every clip was encoded: {bad[0]}")
    encode = sum(j["encode"]["seconds"] for j in jobs)
    verify = sum(j["encode"]["verify_seconds"] for j in jobs)
    return _Run(elapsed, encode, verify, cpu)


def run_pipeline_bench(
    clips: int = 3,
    seconds: float = 10.0,
    size: str = "1280x720",
    preset: int | None = None,
    repeats: int = 3,
) -> PipelineBenchResult:
    """Blocks for a few minutes at the defaults (2 cores).

    Each repeat runs raw, pipeline and pipeline-without-decode, in an order
    rotated per repeat (this machine's speed drifts over minutes; a fixed
    order would charge the drift to one side); ratios are taken within a
    repeat, then the median over repeats.
    """
    from pipecast.actors import EncodeSettings  # noqa: PLC0415

    logging.getLogger("pipecast").setLevel(logging.WARNING)
    settings = EncodeSettings(crf=35)  # the product's default preset unless one is given
    if preset is not None:
        settings = EncodeSettings(preset=preset, crf=35)
    raws: list[float] = []
    pipes: list[_Run] = []
    bares: list[_Run] = []
    with tempfile.TemporaryDirectory(prefix="pipecast-bench-") as tmp:
        root = Path(tmp)
        made = bench_clips(root / "clips", clips, seconds, size)

        def library(name: str) -> list[Path]:
            (root / name).mkdir()
            return [Path(shutil.copy2(c, root / name / c.name)) for c in made]

        def run(name: str, r: int) -> None:
            if name == "raw":
                raws.append(_raw(made, root / f"raw{r}", settings))
            else:
                runs, clips_r = (pipes if name == "pipe" else bares), library(f"{name}{r}")
                runs.append(_pipeline(clips_r, root / f"data-{name}{r}", settings, name == "pipe"))

        order = ["raw", "pipe", "bare"]
        for r in range(repeats):
            for name in order[r % 3 :] + order[: r % 3]:
                run(name, r)
    med = statistics.median
    return PipelineBenchResult(
        clips=clips,
        seconds_per_clip=seconds,
        size=size,
        preset=settings.preset,
        repeats=repeats,
        raw_seconds=round(med(raws), 3),
        pipeline_seconds=round(med(p.elapsed for p in pipes), 3),
        ratio=round(med(p.elapsed / r for p, r in zip(pipes, raws, strict=True)), 3),
        encode_share=round(med(p.encode / p.elapsed for p in pipes), 3),
        verify_share=round(med(p.verify / p.elapsed for p in pipes), 3),
        overhead_seconds=round(med(max(0.0, p.elapsed - p.encode) for p in pipes), 3),
        own_seconds=round(med(p.elapsed - p.encode - p.verify for p in pipes), 3),
        node_cpu_seconds=round(med(p.node_cpu for p in pipes), 3),
        no_decode_seconds=round(med(b.elapsed for b in bares), 3),
        no_decode_ratio=round(med(b.elapsed / r for b, r in zip(bares, raws, strict=True)), 3),
    )
