"""The CRF search stage: samples, probe encodes and VMAF, steered by `CrfSearch`.

Per job: plan samples at keyframes (or a full pass for short files), cut them
by stream copy and check them, then for each CRF the strategy names, encode
every sample with exactly the final encode's arguments and score it with
libvmaf. Tasks are ffmpeg processes (`Tasks`) polled a step at a time (so pause,
suspend, cancel and status interleave, and the state is published at least
every 2 s). A sample's probe is one process that encodes it and scores its
own output (`scored_encode_args`, ffmpeg >= 7.1), else an encode and then a
score; the job's first two sample encodes are always run split, timed
alone: their pace per frame predicts the final encode's time. One probe
task runs at a time, beside the cuts: a probe task keeps both cores busy by itself (two
side by side finished six samples no sooner, at 160x120), and one at a time
means a probe settled early wastes nothing. The previous arrangement (the
score of sample i beside the encode of sample i + 1, two processes per
sample) took ~15 % longer per sample. Samples go in
`probe_order` (spread over the file), and a probe whose scored samples
already sit clearly on one side of the target stops there (`may_stop`:
paired with the complete probe at the nearest CRF when there is one, so its
estimate covers every sample) and is fed to the search as partial
(completed later if it is ever to be the answer). Each finished
probe is stored (`crf_probes`); each sample encode + score is cached under a
key of the source fingerprint, the sample, the ffmpeg build, the arguments
and the VMAF options. Outcomes: found -> crf_searched with the CRF and the
prediction; not_beneficial -> a persisted skip; unreachable_quality (after
retries at the target - 1 down to max(90, target - 2), reusing cached
probes), metric_saturated, sample_failure (after one retry as a full pass)
and metric -> failed with that category.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections import deque
from pathlib import Path
from typing import Any

from pipecast.actors.media._config import OUR_MARK
from pipecast.actors.media._ffmpeg import classify_failure, loopback_decoding
from pipecast.actors.media._inspect import MediaInfo
from pipecast.actors.media._job_states import JobState, MediaFailure
from pipecast.actors.media._stage import MediaStage, as_media_failure
from pipecast.actors.runtime import WorkItem
from pipecast.transport import BadRequest

from ._keys import encoder_key, sample_key
from ._probe_book import ProbeBook, SampleResult
from ._report import (
    CrfSearchStatistics,
    SearchEta,
    SearchFacts,
    SearchTotals,
    live_detail,
    search_progress,
    search_summary,
)
from ._samples import (
    SamplePlan,
    cut_args,
    file_percent,
    plan_samples,
    probe_order,
    sample_centres,
)
from ._strategy import (
    CrfSearch,
    Outcome,
    SearchResult,
    encoder_model,
    learned_model,
)
from ._tasks import Ended, Tasks
from ._vmaf import (
    count_frames,
    keyframes_near,
    read_vmaf_log,
    scored_encode_args,
    vmaf_args,
)

__all__ = ["CrfSearchStage"]

log = logging.getLogger("pipecast.crf")

_STEP_WAIT = 0.25
_LANES = 2  # tasks at once, at most one of each kind (cut, probe)
_TIMED_SAMPLES = 2  # sample encodes timed alone per search, for the predicted encode time
_LIKELY_PROBES = 4  # what a search takes, for the eta (docs/crf_search.md: 3 to 5)


class CrfSearchStage(MediaStage):
    RUNNING_STATE = JobState.CRF_SEARCHING
    OPTIONS = frozenset({"target", "max_percent", "max_probes"})

    def __init__(
        self, *, target: float = 95.0, max_percent: float = 80.0, max_probes: int = 6, **kw: Any
    ) -> None:
        super().__init__(**kw)
        if type(target) not in (int, float) or not 50 <= target <= 100:
            raise BadRequest("target must be a VMAF from 50 to 100")
        if type(max_percent) not in (int, float) or not 0 < max_percent <= 1000:
            raise BadRequest("max_percent must be in (0, 1000]")
        if type(max_probes) is not int or not 1 <= max_probes <= 20:
            raise BadRequest("max_probes must be an int from 1 to 20")
        self.target, self.max_percent, self.max_probes = target, max_percent, max_probes
        self._totals = SearchTotals()
        self._reset()

    def _reset(self, job_id: int | None = None) -> None:
        prefix = f".{job_id}{OUR_MARK}"
        self._running = Tasks(self.work_dir, prefix, self._record_pgid)
        self._fused = False  # probes encode and score in one process
        self._timed: list[tuple[float, int]] = []  # (seconds, frames) of encodes timed alone
        self._tasks: deque[tuple[str, int]] = deque()
        self._search: CrfSearch | None = None
        self._crf: float | None = None
        self._plan = SamplePlan(True, ())
        self._book = ProbeBook(1)  # sized when the plan is known
        self._sample_sizes: dict[int, int] = {}
        self._done_tasks = 0
        self._eta = SearchEta()
        self._eta_done = 0  # tasks ended when the pace was last measured
        self._sample_encodes = 0
        self._cache_hits = 0
        self._ended_as: str | None = None  # the outcome, or a failure's category
        self._may_settle = False
        self._learned_from = 0
        self._retries = 0
        self._metric_retried = False
        self._target = self.target
        self._search_started = time.monotonic()

    # -- one job -----------------------------------------------------------------------

    def _record_pgid(self, pgid: int) -> None:
        self.library.set_fields(self._jobrow.id, pgid=pgid)

    def begin_item(self, item: WorkItem) -> None:
        self._reset(item.id)
        self._search_started = time.monotonic()
        self._fused = loopback_decoding()
        job = self.library.get(item.id)
        assert job is not None
        assert job.probe is not None
        self._jobrow = job
        self._info = MediaInfo.from_dict(job.probe)
        video = self._info.video
        assert video is not None
        # only the keyframes around each stratum's centre: seeks, not a read of the file
        duration = self._info.duration
        keys = keyframes_near(job.path, sample_centres(duration))
        self._plan = plan_samples(duration, video.fps or 0.0, keys)
        self._start_search(full_pass=self._plan.full_pass)

    def _start_search(self, full_pass: bool) -> None:
        job = self._jobrow
        self._running.stop()  # a restart as a full pass: what runs belongs to the old plan
        if full_pass and not self._plan.full_pass:
            self._plan = SamplePlan(True, ())
        if self._book.samples != self._sample_count():  # a new plan: the old probes are void
            self._book.clear(self._sample_count())
        prior = self._prior()
        slopes = self.library.searches.recent_slopes(self._encoder_key())
        self._learned_from = len(slopes)
        model = learned_model(encoder_model(self.settings.encoder), slopes)
        self._search = CrfSearch(self._target, self.max_percent, model, prior, self.max_probes)
        self._tasks.clear()
        if not self._plan.full_pass and not self._sample_sizes:
            self._tasks.extend(("cut", i) for i in range(len(self._plan.samples)))
        log.info(
            "%s: job %d: %s, first crf from %s",
            self.actor_name,
            job.id,
            "full pass" if self._plan.full_pass else f"{len(self._plan.samples)} samples",
            "history, a copy or siblings" if prior is not None else "the cold start",
        )
        self._next_probe()

    def _encoder_key(self) -> str:
        return encoder_key(self.settings)

    def _prior(self) -> float | None:
        """The first CRF: this job's history, a copy's answer, its siblings' median, else None."""
        job = self._jobrow
        history = [p for p in self.library.searches.probes_of(job.id) if p["mean"] >= self._target]
        if history:
            return float(max(p["crf"] for p in history))
        # the same content searched elsewhere (a copy): its answer comes from the cache
        same = self.library.searches.same_content_crf(
            job.size, job.digest, job.id, self._encoder_key(), self._target
        )
        if same is not None:
            return same
        video = self._info.video
        siblings = self.library.searches.sibling_crfs(
            str(Path(job.path).parent), video.height if video else None, job.id
        )
        return statistics.median(siblings) if siblings else None

    def _next_probe(self) -> None:
        assert self._search is not None
        self._crf = self._search.next_crf()
        self._book.open(self._crf)
        if self._crf is not None:
            n = self._sample_count()
            self._may_settle = n > 2 and not self._search.completing
            self._tasks.extend(("probe", i) for i in probe_order(n))

    def advance(self, item: WorkItem) -> dict[str, Any] | None:
        if self._running:
            self._poll()
        self._fill()
        if self._running or self._tasks:
            self._publish_detail()
            return None
        if self._crf is not None:
            self._finish_probe()
            return None
        return self._outcome()

    # -- tasks --------------------------------------------------------------------------

    def _paths(self, i: int) -> tuple[str, str, str]:
        """(reference, distorted, vmaf log) of sample i at the current CRF."""
        base = self.work_dir / f".{self._jobrow.id}{OUR_MARK}"
        ref = self._jobrow.path if self._plan.full_pass else f"{base}sample{i}.mkv"
        return ref, f"{base}probe{i}.mkv", f"{base}vmaf{i}.json"

    def _cache_key(self, i: int) -> str:
        assert self._crf is not None
        sample = None if self._plan.full_pass else self._plan.samples[i]
        job = self._jobrow
        return sample_key(job.size, job.digest, sample, self.settings, self._crf)

    def _ready(self, task: tuple[str, int]) -> bool:
        kind, i = task
        if self._running.busy(kind):
            return False
        return kind == "cut" or self._plan.full_pass or i in self._sample_sizes

    def _fill(self) -> None:
        """Start queued tasks, in queue order, while a lane is free and their inputs exist."""
        while self._tasks and len(self._running) < _LANES:
            task = next((t for t in self._tasks if self._ready(t)), None)
            if task is None:
                if not self._running:  # cannot happen: a task's inputs come before it
                    raise MediaFailure(
                        "sample_failure", "STUCK", f"no task can start: {self._tasks}"
                    )
                return
            self._tasks.remove(task)
            self._start(task)

    def _start(self, task: tuple[str, int]) -> None:
        kind, i = task
        if kind == "cut":
            ref = self._paths(i)[0]
            commands = [("cut", cut_args(self._jobrow.path, self._plan.samples[i], ref))]
        else:
            cached = self._cached(i)
            if cached is not None:
                self._book.add(i, cached)
                self._cache_hits += 1
                self._done_tasks += 1
                self._learn_rate(cached)
                self._settle_if_clear()
                return
            commands = self._probe_commands(i)
            self._sample_encodes += 1
        self._running.start(task, commands)

    def _cached(self, i: int) -> SampleResult | None:
        """Sample i at the current CRF from the cache; None on a miss (or an entry
        that is not a sample's result: it is encoded again, and replaced)."""
        entry = self.library.searches.cache_get(self._cache_key(i))
        if entry is None:
            return None
        try:
            return SampleResult.from_cached(entry)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("%s: a cache entry of sample %d is unusable (%r)", self.actor_name, i, exc)
            return None

    def _probe_commands(self, i: int) -> list[tuple[str, list[str]]]:
        """Sample i at the current CRF: one process, or an encode (timed alone) then a score."""
        ref, dist, vlog = self._paths(i)
        video = self._info.video
        assert video is not None
        w, h = video.width or 0, video.height or 0
        encode = self.settings.args(ref, dist, self._crf)
        if self._fused and len(self._timed) >= self._timed_wanted():
            return [("encode+score", scored_encode_args(encode, vlog, w, h))]
        return [("encode", encode), ("score", vmaf_args(dist, ref, vlog, w, h))]

    def _timed_wanted(self) -> int:
        """Sample encodes to time alone: two samples' pace averages their
        content (one alone missed full encodes by -6 +- 6 %, two by -3 +- 5 %,
        docs/crf_search.md); a full pass is the whole file already."""
        return 1 if self._plan.full_pass else _TIMED_SAMPLES

    def _learn_rate(self, result: SampleResult) -> None:
        """Keep the first encode times measured alone (split probes', or cached ones)."""
        seconds, frames = result.seconds, result.frames
        if len(self._timed) < self._timed_wanted() and seconds and frames:
            self._timed.append((seconds, frames))

    @property
    def _encode_rate(self) -> float | None:
        """Seconds per frame of the encodes timed alone, together; None before any."""
        frames = sum(f for _, f in self._timed)
        return sum(s for s, _ in self._timed) / frames if frames else None

    def _poll(self) -> None:
        """Wait up to a step for the running tasks; handle the first that has ended."""
        ended = self._running.poll(_STEP_WAIT)
        if ended is None:
            return
        self._done_tasks += 1
        kind, i = ended.key
        if ended.code != 0:
            self._failed(ended.key, ended.label, ended.code, ended.errors)
        elif kind == "cut":
            self._check_cut(i, self._paths(i)[0])
        else:
            self._probed(i, ended)

    def _failed(self, task: tuple[str, int], label: str, code: int | None, errors: str) -> None:
        failure = classify_failure(code, errors, f"crf {label}")
        if label == "encode+score":
            # which half failed? Run it again split, and the rest of the job too:
            # the split commands say whether the encode or the metric fails
            log.warning("%s: %s; probing split from here", self.actor_name, failure)
            self._fused = False
            self._tasks.appendleft(task)
        elif label == "score":
            self._retry_metric(task, failure)
        else:
            raise failure

    def _retry_metric(self, task: tuple[str, int], failure: MediaFailure) -> None:
        """A scoring failure is retried once per job, then the job fails as `metric` (G7 of
        docs/media_safety.md)."""
        if self._metric_retried:
            raise MediaFailure("metric", failure.code, str(failure))
        self._metric_retried = True
        self._tasks.appendleft(task)

    def _probed(self, i: int, ended: Ended) -> None:
        """Sample i is encoded and scored: check the frames, keep and cache the result."""
        ref, dist, vlog = self._paths(i)
        try:
            scores = read_vmaf_log(Path(vlog))
        except MediaFailure as exc:
            self._retry_metric(("probe", i), exc)
            return
        ref_frames = count_frames(ref)
        if len(scores) != ref_frames or count_frames(dist) != ref_frames:
            # never a score from misaligned frames (G1 of docs/media_safety.md); one retry
            # as a full pass
            why = f"sample {i}: {len(scores)} frames scored, {ref_frames} in the reference"
            if self._plan.full_pass or self._retries >= 3:
                raise _Misaligned(why)
            log.warning("%s: %s; searching again on the full file", self.actor_name, why)
            self._retries += 1
            self._start_search(full_pass=True)
            return
        result = SampleResult(
            tuple(scores),
            Path(dist).stat().st_size,
            ref_frames,
            # None: encoded and scored in one process, untimed
            ended.first_seconds_without_start_up(ref_frames),
        )
        self._book.add(i, result)
        self._learn_rate(result)
        self.library.searches.cache_put(self._cache_key(i), result.as_cached())
        Path(dist).unlink(missing_ok=True)
        self._settle_if_clear()

    def _settle_if_clear(self) -> None:
        """Stop the probe here if its scored samples already give its verdict (docs/crf_search.md).

        Paired with the complete probe at the nearest CRF when there is one
        (`may_stop`); the estimate it stops on then stands for the probe.
        Runs when a probe task has ended (or came from the cache), so none of
        the probe's runs: what is left of it is queued.
        """
        left = [t for t in self._tasks if t[0] == "probe"]
        if not self._may_settle or not left:
            return
        if not self._book.may_stop(self._target):
            return
        for task in left:
            self._tasks.remove(task)
        self._done_tasks += len(left)

    def _sample_count(self) -> int:
        """Samples a probe encodes and scores: the whole file counts as one."""
        return 1 if self._plan.full_pass else len(self._plan.samples)

    def _check_cut(self, i: int, path: str) -> None:
        size = Path(path).stat().st_size if Path(path).exists() else 0
        want = self._plan.samples[i].frames
        got = count_frames(path) if size else 0
        if size <= 1024 or abs(got - want) > 1:
            raise MediaFailure(
                "sample_failure", "BAD_SAMPLE", f"sample {i}: {size} bytes, {got} of {want} frames"
            )
        self._sample_sizes[i] = size

    def _finish_probe(self) -> None:
        assert self._search is not None
        assert self._crf is not None
        if self._plan.full_pass:
            size = self._jobrow.size
            cut_sizes, to_percent = {0: size}, (lambda ratio: 100.0 * ratio)
        else:
            cut_sizes, to_percent = self._sample_sizes, self._file_percent
        # the samples' encode time, from the rate of an encode timed alone (0: none yet)
        seconds = (self._encode_rate or 0.0) * self._sampled_frames()
        probe, record = self._book.close(cut_sizes, to_percent, seconds)
        self._search.feed(probe)
        self.library.searches.record_probe(self._jobrow.id, self._target, record.as_dict())
        n, planned, percent = len(record.samples), self._sample_count(), probe.percent
        log.info(
            "%s: job %d crf %g -> VMAF %.2f (worst %.2f, p1 %.2f) %.1f %% over %d of %d sample(s)",
            self.actor_name, self._jobrow.id, probe.crf, probe.mean, probe.worst, probe.p1,
            percent, n, planned,
        )  # fmt: skip
        self._next_probe()

    def _outcome(self) -> dict[str, Any] | None:
        assert self._search is not None
        assert self._search.result is not None
        result = self._search.result
        floor = max(90.0, self.target - 2.0)
        if (
            result.outcome is Outcome.UNREACHABLE
            and self._target - 1 >= floor
            and self._retries < 3
        ):
            self._retries += 1
            self._target -= 1
            log.info("%s: unreachable; retrying at VMAF %g", self.actor_name, self._target)
            self._start_search(full_pass=self._plan.full_pass)
            return None  # the search goes on at the lower target
        summary = self._summary(result)
        self._ended_as = result.outcome.value
        if result.outcome is Outcome.FOUND:
            assert result.crf is not None
            return {"crf": result.crf, "search": summary}
        if result.outcome is Outcome.NOT_BENEFICIAL:
            return {"outcome": "skipped", "reason": "not_beneficial", "search": summary}
        raise MediaFailure(result.outcome.value, result.outcome.name, result.reason)

    def _file_percent(self, video_ratio: float) -> float:
        """The file's predicted encode as a percent of the source (`file_percent`)."""
        sizes = self._sample_sizes
        frames = sum(self._plan.samples[i].frames for i in sizes)
        copies = self.settings.audio == "copy"
        return file_percent(
            video_ratio, self._jobrow.size, sum(sizes.values()), frames, self._file_frames(), copies
        )

    def _file_frames(self) -> float:
        video = self._info.video
        return self._info.duration * ((video.fps if video else None) or 1.0)

    def _sampled_frames(self) -> float:
        """Frames a complete probe encodes: every sample's, or the whole file's."""
        if self._plan.full_pass:
            return self._file_frames()
        return sum(s.frames for s in self._plan.samples)

    def _summary(self, result: SearchResult) -> dict[str, Any]:
        info = self._info
        fps = (info.video.fps if info.video else None) or 1.0
        facts = SearchFacts(
            target=self._target,
            sample_encodes=self._sample_encodes,
            settled=self._book.settled,
            encoder=self._encoder_key(),
            model_u_slope=self._search.model.u_slope if self._search else None,
            learned_from=self._learned_from,
            samples=None if self._plan.full_pass else len(self._plan.samples),
            seconds=time.monotonic() - self._search_started,
            source_size=self._jobrow.size,
            duration=info.duration,
            sampled_seconds=self._sampled_frames() / fps,  # a full pass: the duration
        )
        return search_summary(result, self._book.records, facts)

    def _publish_detail(self) -> None:
        elapsed = time.monotonic() - self._search_started
        if self._done_tasks != self._eta_done:  # a task ended since: the pace is measured
            self._eta_done = self._done_tasks
            self._eta.task_ended(self._done_tasks, elapsed)
        left = self._tasks_left()
        self.progress = search_progress(self._done_tasks, self._done_tasks + left, self.progress)
        probe = len(self._book.records)
        eta = self._eta.eta(probe, left, elapsed)
        labels = self._running.labels()
        self.detail = live_detail(self._book.records, labels, self._sample_count(), self._crf, eta)

    def _tasks_left(self) -> int:
        """The plan's work left: this probe's queued and running tasks, and a task per
        sample for each probe likely still to come (a search takes about four, and
        none follow a probe that completes a settled one)."""
        n = self._sample_count()
        now = len(self._tasks) + len(self._running)
        search = self._search
        later = 0 if search is not None and search.completing else _LIKELY_PROBES
        probes_after = max(0, later - len(self._book.records) - 1)
        return now + probes_after * n

    def queue_fail(self, item: WorkItem, exc: Exception) -> None:
        if self._ended_as is None:  # the category the job's failure is recorded with
            self._ended_as = as_media_failure(exc).category
        super().queue_fail(item, exc)

    def statistics(self) -> CrfSearchStatistics:
        """The stage's own figures and every search's since it started (`SearchTotals`)."""
        return self._totals.statistics(super().statistics())

    def end_item(self, item: WorkItem) -> None:
        if self._search is not None:  # a search began: count it once, however it ended
            self._totals.add(
                self._ended_as or "interrupted",
                len(self._book.records),
                self._sample_encodes,
                self._cache_hits,
                self._book.settled,
            )
            self._search = None
        self._running.stop()
        for path in self.work_dir.glob(f".{item.id}{OUR_MARK}*"):
            with contextlib.suppress(OSError):
                path.unlink()

    def suspend_item(self, item: WorkItem) -> None:
        self._running.suspend()

    def resume_item(self, item: WorkItem) -> None:
        self._running.resume()

    def cancel_item(self, item: WorkItem) -> None:
        self._running.stop()


class _Misaligned(MediaFailure):
    def __init__(self, message: str) -> None:
        super().__init__("sample_failure", "VFR_MISALIGNED", message)
