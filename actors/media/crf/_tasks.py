"""The ffmpeg tasks of one CRF search: started, chained, polled, paused and stopped.

The I/O shell under `CrfSearchStage`: a task is a key (kind, sample index)
and a chain of commands run one after another (a cut; a probe as one
process, or as an encode then its score). `poll` waits a bounded time and
reports one task that has ended, with how long its first command took
alone (a split probe's encode) and when that command first and last
reported frames done while still going (its progress every 0.1 s), so its
rate can be its steady pace: without ffmpeg's and the encoder's start-up
and without the flush at its end. Everything runs in the owning stage's
thread and never blocks longer than the wait given to `poll`; a process
that fails ends its chain and is reported with its exit status and error
lines, and the stage decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipecast.actors.media._ffmpeg import FfmpegJob

__all__ = ["Ended", "Tasks"]

Key = tuple[str, int]  # (kind, sample index)
Command = tuple[str, list[str]]  # (label, ffmpeg arguments)


@dataclass(slots=True)
class _Running:
    job: FfmpegJob
    label: str  # what the running command does: cut | encode | score | encode+score
    started: float
    rest: list[Command]  # to run after it, in order
    first_seconds: float | None = None  # the first command's time, when a chain goes on
    first_mark: tuple[float, int] | None = None  # (seconds in, frames done) at its first frame
    last_mark: tuple[float, int] | None = None  # the same at its latest report before the end


@dataclass(frozen=True, slots=True)
class Ended:
    """A task that has ended: its last command's label, exit status and errors."""

    key: Key
    label: str
    code: int | None
    errors: str
    first_seconds: float | None  # the first command of a chain, timed alone; None: one command
    first_mark: tuple[float, int] | None  # its first progress report with a frame done
    last_mark: tuple[float, int] | None = None  # its last such report before its end

    def first_seconds_without_start_up(self, frames: int) -> float | None:
        """The first command's time for its `frames` at its steady pace.

        A short sample encode is no miniature of a long one at either end: a
        12 s 160x120 sample spends ~0.13 s of its ~0.55 s starting ffmpeg and
        the encoder, and at its end the encoder's lookahead comes out at
        once (the last ~25 frames of 288 in ~1 ms), which a long encode pays
        for frame by frame. So the pace is taken between its first and its
        last report while going (at least a quarter of the frames apart),
        scaled to every frame; timing from the first frame to the end
        instead came out ~10 % faster than full encodes of the same clip
        (`docs/crf_search.md`, "Predicted encode time"). Failing that, from
        its first frame to its end; the whole time when that frame came too
        late to tell (past half the frames); None for a task of one command.
        """
        seconds, first, last = self.first_seconds, self.first_mark, self.last_mark
        if seconds is None or first is None:
            return seconds
        if last is not None and last[1] - first[1] >= max(1, frames // 4) and last[0] > first[0]:
            return (last[0] - first[0]) * frames / (last[1] - first[1])
        at, done = first
        if done > frames // 2 or at >= seconds:
            return seconds
        return (seconds - at) * frames / (frames - done)


def _going(blocks: list[dict[str, str]], seconds: float) -> tuple[float, int] | None:
    """(seconds, frames done) of the latest report of this read with a frame done
    and more to come: the freshest of the batch is the one `seconds` describes."""
    for block in reversed(blocks):
        frame = block.get("frame", "")
        if block.get("progress") == "continue" and frame.isdigit() and int(frame) >= 1:
            return seconds, int(frame)
    return None


class Tasks:
    """Running tasks, in start order; at most one per kind is the caller's rule."""

    def __init__(self, log_dir: Path, log_prefix: str, on_start: Callable[[int], None]) -> None:
        self._log_dir, self._prefix, self._on_start = log_dir, log_prefix, on_start
        self._running: dict[Key, _Running] = {}

    def __len__(self) -> int:
        return len(self._running)

    def busy(self, kind: str) -> bool:
        return any(k == kind for k, _ in self._running)

    def labels(self) -> list[tuple[str, int]]:
        """(label, sample index) of each running task, oldest first."""
        return [(r.label, i) for (_, i), r in self._running.items()]

    def start(self, key: Key, commands: list[Command]) -> None:
        (label, args), *rest = commands
        job = self._launch(label, key[1], args, timed=bool(rest))
        self._running[key] = _Running(job, label, time.monotonic(), rest)

    def _launch(self, label: str, i: int, args: list[str], timed: bool = False) -> FfmpegJob:
        name = f"{self._prefix}{label.replace('+', '-')}{i}.log"
        # a timed command reports progress often: its first frame marks the start-up's end
        job = FfmpegJob(args, self._log_dir / name, 0.1 if timed else 0.5)
        self._on_start(job.pgid)  # recorded, so a restarted node can kill an orphan
        return job

    def poll(self, wait: float) -> Ended | None:
        """Wait up to `wait` s in all for progress; report the first task that has ended.

        A chain whose command succeeded goes on with its next command instead
        (reported as nothing ended).
        """
        if not self._running:
            return None
        for run in self._running.values():
            blocks = run.job.read_progress(wait / len(self._running))
            if run.rest and run.first_seconds is None:
                mark = _going(blocks, time.monotonic() - run.started)
                if mark is not None:
                    run.first_mark = run.first_mark or mark
                    run.last_mark = mark
        ended = next(((k, r) for k, r in self._running.items() if r.job.poll() is not None), None)
        if ended is None:
            return None
        key, run = ended
        code = run.job.poll()
        errors = run.job.errors()
        run.job.close()
        if code == 0 and run.rest:
            run.first_seconds = time.monotonic() - run.started
            run.label, args = run.rest.pop(0)
            run.job, run.started = self._launch(run.label, key[1], args), time.monotonic()
            return None
        del self._running[key]
        return Ended(key, run.label, code, errors, run.first_seconds, run.first_mark, run.last_mark)

    def stop(self) -> None:
        """Kill every running task (its whole process group)."""
        for run in self._running.values():
            run.job.terminate()
        self._running.clear()

    def suspend(self) -> None:
        for run in self._running.values():
            run.job.suspend()

    def resume(self) -> None:
        for run in self._running.values():
            run.job.resume()
