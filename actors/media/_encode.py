"""The encoder stage: encode, verify, commit; never loses a file.

One job at a time, in three phases, each advanced in short steps so pause,
suspend, cancel and status interleave with the work:

* `encoding`: ffmpeg with the job's CRF into a partial file in the work dir;
  progress by frames from `-progress`, at least one update per 2 s; no frame
  gained for `stall_timeout` seconds of unsuspended time -> failed:stalled.
* `verifying`: a full decode of the output (a second ffmpeg, also stepped),
  then the pure gates of `judge` (size, duration, streams, codec; not smaller
  than the source -> skipped:not_beneficial).
* `committing`: the protocol of `_commit`, journaled step by step in the
  library; it runs to its end in one step (it must not be half done).

A restart finds each interrupted job through the library: its ffmpeg group
is killed if it still runs, an interrupted commit is finished or rolled back,
the partial is removed, and the job goes back to `crf_searched`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from pipecast.actors.cluster import LeaseLost
from pipecast.actors.runtime import StoreError, WorkItem

from ._commit import PlacedNotRecorded, commit, recover
from ._commit_plan import CommitPlan, plan_commit
from ._config import OUR_MARK
from ._ffmpeg import FfmpegJob, classify_failure, kill_orphan
from ._inspect import MediaInfo, inspect_media
from ._job_states import JobState, MediaFailure
from ._library import CommitGuard, Job, fingerprint
from ._progress import EncodeProgress
from ._roots import check_still_within
from ._stage import MediaStage
from ._verify import judge

__all__ = ["EncodeStage"]

log = logging.getLogger("pipecast.encoder")

_STEP_WAIT = 0.25  # longest a step waits for ffmpeg's progress


class EncodeStage(MediaStage):
    RUNNING_STATE = JobState.ENCODING

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._job: FfmpegJob | None = None
        self._phase = "encoding"
        self._progress: EncodeProgress | None = None
        self._source: MediaInfo | None = None
        self._partial: Path | None = None
        self._committed = False
        self._last_cleanup_sweep = -1.0
        self._encode_seconds = 0.0
        self._verify_seconds = 0.0  # the full decode's active time (0 without that gate)

    # -- recovery (stage thread, at start) ---------------------------------------------

    def on_begin(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._finish_cleanups()
        except StoreError as exc:  # a shared store out of reach: the timer tries again
            log.error("%s: cannot finish cleanups yet: %s", self.actor_name, exc)
        super().on_begin()
        try:
            self._sweep_work_dir()
            self._publish_totals()
        except StoreError as exc:
            log.error("%s: cannot read the library yet: %s", self.actor_name, exc)

    def _publish_totals(self) -> None:
        """Key `library` of the stage's topic: what the encodes saved, for dashboards."""
        self.bridge.publish(self.topic, "library", self.library.totals())

    def _finish_cleanups(self) -> None:
        """Commits recorded whose cleanup a node (this one, or one gone for longer than
        a lease) did not finish: finish it."""
        for job in self.library.unfinished_commits(self.library.lease):
            assert job.commit_plan is not None
            recover(CommitPlan(**job.commit_plan), True, lambda: None)
            self.library.set_fields(job.id, commit_plan=None, commit_step=None)
            log.warning("%s: finished the cleanup of job %d's commit", self.actor_name, job.id)

    def _keep_holds(self) -> None:
        super()._keep_holds()
        if self._swept == self._last_cleanup_sweep:
            return  # once per sweep, not at every tick of an encode
        self._last_cleanup_sweep = self._swept
        try:
            self._finish_cleanups()
        except (StoreError, OSError) as exc:
            log.error("%s: cannot finish a cleanup: %s", self.actor_name, exc)

    def recover_job(self, job_id: int, own: bool) -> None:
        job = self.library.get(job_id)
        assert job is not None
        # a process group is a number of this machine: only ours are ours to kill
        if own and job.pgid and kill_orphan(job.pgid, self._partial_path(job.id).name):
            log.warning("%s: killed the orphaned ffmpeg of job %d", self.actor_name, job.id)
        if job.commit_plan:
            plan = CommitPlan(**job.commit_plan)
            done = recover(plan, False, lambda: self._record(job.id, plan, job.crf, None))
            log.warning(
                "%s: job %d's commit was interrupted (%s); %s",
                self.actor_name,
                job.id,
                job.commit_step,
                "finished it" if done else "rolled it back",
            )
            if done:
                return
        with contextlib.suppress(FileNotFoundError):
            self._partial_path(job.id).unlink()
        self.library.interrupt(job.id)

    def _sweep_work_dir(self) -> None:
        """Our work files of jobs no stage is working on (nothing else is touched)."""
        live = {
            j.id
            for state in (JobState.ENCODING, JobState.CRF_SEARCHING)
            for j in self.library.jobs(state)
        }
        for path in self.work_dir.iterdir():
            if OUR_MARK not in path.name:
                continue
            job_id = path.name.lstrip(".").split(".", 1)[0]
            if job_id.isdigit() and int(job_id) not in live:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _partial_path(self, job_id: int) -> Path:
        return self.work_dir / f".{job_id}{OUR_MARK}partial.mkv"

    # -- one job -------------------------------------------------------------------

    def begin_item(self, item: WorkItem) -> None:
        job = self.library.get(item.id)
        assert job is not None
        _check_source(job, self.policy.roots, "since analysis")
        assert job.probe is not None
        assert job.crf is not None
        self._source = MediaInfo.from_dict(job.probe)
        self._partial = self._partial_path(job.id)  # ffmpeg -y truncates a stale one
        args = self.settings.args(job.path, str(self._partial), job.crf)
        self._phase, self._committed = "encoding", False
        self._verify_seconds = 0.0
        self._progress = EncodeProgress(
            self._source.frames, self.policy.stall_timeout, time.monotonic()
        )
        self._job = FfmpegJob(args, self.work_dir / f".{job.id}{OUR_MARK}encode.log")
        self.library.set_fields(job.id, pgid=self._job.pgid)
        log.info(
            "%s: encoding job %d (crf %g) [pgid %d]",
            self.actor_name,
            job.id,
            job.crf,
            self._job.pgid,
        )

    def advance(self, item: WorkItem) -> dict[str, Any] | None:
        if self._phase == "committing":
            return self._commit(item)
        assert self._job is not None
        assert self._progress is not None
        prog = self._progress
        for block in self._job.read_progress(_STEP_WAIT):
            prog.update(block, time.monotonic())
        now = time.monotonic()
        # one monotonic figure for the job: encoding is 0-90 %, the decode check 90-100 %
        share = prog.percent / 100.0
        self.progress = round(0.9 * share if self._phase == "encoding" else 0.9 + 0.1 * share, 4)
        self.detail = {"phase": self._phase, **prog.as_dict(now)}
        code = self._job.poll()
        if code is None:
            if prog.stalled(now):
                self._job.terminate()
                raise MediaFailure(
                    "stalled",
                    "STALLED",
                    f"no progress for {self.policy.stall_timeout:g} s ({self._phase})",
                )
            return None
        errors = self._job.errors()
        self._job.close()
        self._job = None
        if code != 0 or errors.strip():
            raise classify_failure(code, errors, self._phase)
        if self._phase == "encoding":
            self._encode_seconds = prog.active(now)
            return self._verify(item)
        self._verify_seconds = prog.active(now)
        self._phase = "committing"
        self.detail = {**self.detail, "phase": self._phase}
        return None

    def _verify(self, item: WorkItem) -> dict[str, Any] | None:
        """Gates on sizes and probes now; the full decode as the next, stepped phase."""
        assert self._partial is not None
        assert self._source is not None
        job = self.library.get(item.id)
        assert job is not None
        output = inspect_media(self._partial) if self._partial.exists() else None
        if output is None:
            raise MediaFailure("verify_failed", "NO_OUTPUT", "ffmpeg wrote no output")
        size = self._partial.stat().st_size
        verdict = judge(self._source, output, job.size, size, self.policy, self.settings)
        if isinstance(verdict, MediaFailure):
            raise verdict
        self._output = output
        if verdict == "not_beneficial":
            self._partial.unlink(missing_ok=True)
            return {"outcome": "skipped", "reason": "not_beneficial", "output_size": size}
        if not self.policy.verify_decode:
            self._phase = "committing"
            return None
        self._phase = "verifying"
        self._progress = EncodeProgress(output.frames, self.policy.stall_timeout, time.monotonic())
        self._job = FfmpegJob(
            # every video and audio frame decoded (subtitles have no decoder to null)
            ["-xerror", "-i", str(self._partial), "-map", "0:v", "-map", "0:a?", "-f", "null", "-"],
            self.work_dir / f".{item.id}{OUR_MARK}verify.log",
        )
        self.library.set_fields(item.id, pgid=self._job.pgid)
        return None

    def _commit(self, item: WorkItem) -> dict[str, Any] | None:
        assert self._partial is not None
        job = self.library.get(item.id)
        assert job is not None
        _check_source(job, self.policy.roots, "during the encode")
        plan = plan_commit(
            job.path,
            str(self._partial),
            f"{job.id}-{job.fence}",
            self.policy.replace,
            self.policy.suffix,
        )
        self.library.set_fields(
            job.id, commit_plan=plan.as_dict(), commit_step="planned", pgid=None
        )
        commit(
            plan,
            lambda step: self.library.set_fields(job.id, commit_step=step),
            lambda held: self._record(job.id, plan, job.crf, held),
            lambda: self.library.commit_guard(job.id),
        )
        self.library.set_fields(job.id, commit_plan=None, commit_step=None)
        self._committed = True
        self._publish_totals()
        log.info("%s: job %d committed to %s", self.actor_name, job.id, plan.final)
        return {"outcome": "recorded"}  # the protocol recorded it; see queue_finish

    def _record(
        self, job_id: int, plan: CommitPlan, crf: float | None, held: CommitGuard | None
    ) -> None:
        """The commit in the store: in the commit guard's transaction (`held`), or as a
        fenced move (a recovery)."""
        size = os.path.getsize(plan.final)  # noqa: PTH202
        (held.done if held is not None else partial(self.library.done, job_id))(
            output_path=plan.final,
            output_size=size,
            encode={
                "seconds": round(self._encode_seconds, 3),
                "verify_seconds": round(self._verify_seconds, 3),
                "crf": crf,
                "args": self.settings.args("{in}", "{out}", crf),
            },
            commit_step="committed",
        )  # the plan stays until the cleanup is done (a crash before it: see on_begin)

    # -- the stage's hooks ---------------------------------------------------------------

    def queue_fail(self, item: WorkItem, exc: Exception) -> None:
        # the partial output goes first: when the disk is full it is what fills it,
        # and the store needs room to record the failure
        self._discard(item)
        if isinstance(exc, PlacedNotRecorded):  # the files say how it ends, not the error
            self._settle(item.id)
            return
        super().queue_fail(item, exc)

    def _settle(self, job_id: int) -> None:
        """A commit whose file was placed but not recorded: finish it from the files
        (raises `StoreError` to be tried again while the store is down)."""
        job = self.library.get(job_id)
        if job is None or job.commit_plan is None:
            return
        try:
            self.recover_job(job_id, own=True)
        except LeaseLost as exc:  # another node took it over: it settles it
            self.library.forget(job_id)
            log.warning("%s: job %d is settled elsewhere: %s", self.actor_name, job_id, exc)

    def end_item(self, item: WorkItem) -> None:
        self._discard(item)

    def _discard(self, item: WorkItem) -> None:
        """Stop ffmpeg and remove what it wrote, unless it was committed. Idempotent."""
        if self._job is not None:
            self._job.terminate()
            self._job = None
        if self._partial is not None and not self._committed:
            self._partial.unlink(missing_ok=True)
        for kind in ("encode", "verify"):
            (self.work_dir / f".{item.id}{OUR_MARK}{kind}.log").unlink(missing_ok=True)
        self._progress = None

    def suspend_item(self, item: WorkItem) -> None:
        if self._job is not None:
            self._job.suspend()
        if self._progress is not None:
            self._progress.suspend(time.monotonic())
        log.info("%s: job %d suspended", self.actor_name, item.id)

    def resume_item(self, item: WorkItem) -> None:
        if self._progress is not None:
            self._progress.resume(time.monotonic())
        if self._job is not None:
            self._job.resume()
        log.info("%s: job %d resumed", self.actor_name, item.id)

    def cancel_item(self, item: WorkItem) -> None:
        if self._job is not None:
            self._job.terminate()
            self._job = None


def _check_source(job: Job, roots: tuple[str, ...], when: str) -> None:
    """The source is still the file that was enqueued: under the roots by the same path,
    not a link, the same device and inode, the same content; else a `MediaFailure`
    saying which. Blocks for a few stats and two 1 MiB reads."""
    path = job.path
    check_still_within(path, roots)
    try:
        now = fingerprint(path)
    except FileNotFoundError:
        raise MediaFailure("source_missing", "ENOENT", f"{path} disappeared {when}") from None
    except OSError as exc:
        raise MediaFailure("source_missing", "UNREADABLE", f"{path}: {exc.strerror}") from None
    if job.ino is not None and (now.dev, now.ino) != (job.dev, job.ino):
        raise MediaFailure("source_changed", "IDENTITY", f"{path} is another file {when}")
    if (now.size, now.digest) != (job.size, job.digest):
        raise MediaFailure("source_changed", "FINGERPRINT", f"{path} changed {when}")
