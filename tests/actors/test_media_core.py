"""The media pipeline's pure cores: job states, commit recovery, progress, verification gates."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors import (
    EncodeSettings,
    JobEvent,
    JobState,
    MediaFailure,
    MediaPolicy,
    job_transition,
)
from pipecast.actors._commit_plan import Action, Facts, plan_commit, recovery
from pipecast.actors._job_states import QUEUED, RUNNING, InvalidTransition
from pipecast.actors._media_config import is_ours
from pipecast.actors._probe import Probe, StreamInfo
from pipecast.actors._progress import EncodeProgress
from pipecast.actors._verify import judge
from pipecast.transport import BadRequest

J, V = JobState, JobEvent

# -- job states ----------------------------------------------------------------------------


def test_a_job_goes_through_every_stage_to_encoded() -> None:
    state = J.NEEDS_ANALYSIS
    seen = [state]
    while state is not J.ENCODED:
        state = job_transition(state, V.TAKE if state in QUEUED else V.DONE)
        seen.append(state)
    assert [s.value for s in seen] == [
        "needs_analysis",
        "analyzing",
        "analyzed",
        "crf_searching",
        "crf_searched",
        "encoding",
        "encoded",
    ]


@pytest.mark.parametrize(("state", "event"), list(itertools.product(J, V)))
def test_every_state_event_pair_is_defined_or_refused(state: JobState, event: JobEvent) -> None:
    try:
        after = job_transition(state, event, "encoding")
    except InvalidTransition:
        after = None
    if event is V.TAKE:
        assert after == (QUEUED.get(state))
    elif event in (V.DONE, V.SKIP, V.FAIL, V.INTERRUPT):
        assert (after is not None) == (state in RUNNING)
    elif event is V.CANCEL:
        assert after == (J.FAILED if state in RUNNING or state in QUEUED else None)
    elif event is V.RETRY:
        assert after == (J.CRF_SEARCHED if state is J.FAILED else None)
    elif event is V.RESCAN:
        assert after == (None if state in RUNNING else J.NEEDS_ANALYSIS)


def test_an_interrupted_job_goes_back_where_its_stage_found_it() -> None:
    assert job_transition(J.ANALYZING, V.INTERRUPT) is J.NEEDS_ANALYSIS
    assert job_transition(J.CRF_SEARCHING, V.INTERRUPT) is J.ANALYZED
    assert job_transition(J.ENCODING, V.INTERRUPT) is J.CRF_SEARCHED  # the chosen CRF is kept


@pytest.mark.parametrize(
    ("stage", "queue"),
    [("analysis", J.NEEDS_ANALYSIS), ("crf_search", J.ANALYZED), ("encoding", J.CRF_SEARCHED)],
)
def test_a_retry_goes_back_to_the_queue_of_the_stage_that_failed(
    stage: str, queue: JobState
) -> None:
    assert job_transition(J.FAILED, V.RETRY, stage) is queue


def test_a_retry_without_a_known_stage_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        job_transition(J.FAILED, V.RETRY, None)


# -- the commit protocol's recovery ------------------------------------------------------------


class Disk:
    """A model filesystem: path -> (inode, content)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, str]] = {}
        self.inodes = itertools.count(1)

    def write(self, path: str, content: str) -> None:
        self.files[path] = (next(self.inodes), content)

    def rename(self, a: str, b: str) -> None:
        self.files[b] = self.files.pop(a)

    def link(self, a: str, b: str) -> None:
        assert b not in self.files
        self.files[b] = self.files[a]

    def unlink(self, p: str) -> None:
        self.files.pop(p, None)


STEPS = [
    "start",
    "copied",
    "backed_up",
    "placed",
    "recorded",
    "tmp_gone",
    "backup_gone",
    "source_gone",
    "done",
]


def steps_of(plan: Any) -> list[str]:
    skip = set() if plan.replace else {"backed_up", "backup_gone"}
    if not (plan.replace and plan.final != plan.source):
        skip.add("source_gone")
    return [s for s in STEPS if s not in skip]


def run_commit_until(disk: Disk, plan: Any, stop: str) -> bool:
    """The protocol's steps on the model disk up to `stop`; returns whether it recorded.

    Checks on the way that the final path of a same-name replace is never empty.
    """
    order = steps_of(plan)
    for step in order[1 : order.index(stop) + 1]:
        if step == "copied":
            disk.files[plan.tmp] = (next(disk.inodes), "new")
        elif step == "backed_up":
            disk.link(plan.source, plan.backup)
        elif step == "placed":
            if plan.final == plan.source:
                disk.rename(plan.tmp, plan.final)
            else:
                disk.link(plan.tmp, plan.final)
        elif step == "tmp_gone":
            disk.unlink(plan.tmp)
        elif step == "backup_gone":
            disk.unlink(plan.backup)
        elif step == "source_gone":
            disk.unlink(plan.source)
        if plan.final == plan.source:
            assert plan.final in disk.files, f"nothing at the final path after {step}"
    return order.index(stop) >= order.index("recorded")


@pytest.mark.parametrize("replace_mode", [False, True])
@pytest.mark.parametrize("same_ext", [True, False])
@pytest.mark.parametrize("stop", STEPS)
def test_a_crash_at_any_commit_step_leaves_the_original_or_the_new_file_never_neither(
    replace_mode: bool, same_ext: bool, stop: str
) -> None:
    source = "/lib/film.mkv" if same_ext else "/lib/film.mp4"
    plan = plan_commit(source, "/work/.7.pipecast-partial.mkv", 7, replace_mode, ".av1")
    if stop not in steps_of(plan):
        pytest.skip(f"no {stop} step in this mode")
    disk = Disk()
    disk.write(plan.source, "original")
    disk.write(plan.partial, "new")
    committed = run_commit_until(disk, plan, stop)

    def inode(p: str | None) -> int | None:
        return disk.files[p][0] if p is not None and p in disk.files else None

    facts = Facts(
        source=plan.source in disk.files,
        final=plan.final in disk.files,
        tmp=plan.tmp in disk.files,
        backup=plan.backup is not None and plan.backup in disk.files,
        final_is_tmp=inode(plan.final) is not None and inode(plan.final) == inode(plan.tmp),
        final_is_backup=inode(plan.final) is not None and inode(plan.final) == inode(plan.backup),
    )
    actions = recovery(plan, facts, committed)
    for action in actions:
        if action is Action.RESTORE_BACKUP:
            disk.rename(plan.backup, plan.source)
        elif action is Action.REMOVE_TMP:
            disk.unlink(plan.tmp)
        elif action is Action.REMOVE_BACKUP:
            disk.unlink(plan.backup)
        elif action is Action.REMOVE_SOURCE:
            disk.unlink(plan.source)
        elif action is Action.REMOVE_PARTIAL:
            disk.unlink(plan.partial)
    contents = {p: c for p, (_, c) in disk.files.items()}
    assert not any(is_ours(p.rsplit("/", 1)[1]) for p in contents), contents
    placed = steps_of(plan).index(stop) >= steps_of(plan).index("placed")
    assert (Action.DONE in actions) == placed  # decided by what is on disk, not by chance
    if placed:
        assert contents[plan.final] == "new"
        if not replace_mode:
            assert contents[plan.source] == "original"
        elif plan.final != plan.source:
            assert plan.source not in contents
        assert set(contents) == {plan.final, plan.source} - (
            {plan.source} if replace_mode and plan.final != plan.source else set()
        )
    else:
        assert Action.ROLLED_BACK in actions
        assert contents == {plan.source: "original"}


def test_a_final_path_taken_by_someone_else_is_never_claimed_in_recovery() -> None:
    plan = plan_commit("/lib/a.mkv", "/w/p", 3, False, ".av1")
    facts = Facts(source=True, final=True, tmp=True, backup=False, final_is_tmp=False)
    assert recovery(plan, facts, False) == [
        Action.REMOVE_TMP,
        Action.REMOVE_PARTIAL,
        Action.ROLLED_BACK,
    ]


def test_keep_mode_writes_beside_the_original_and_replace_mode_over_it() -> None:
    keep = plan_commit("/lib/a.mp4", "/w/p", 3, False, ".av1")
    assert (keep.final, keep.backup) == ("/lib/a.av1.mkv", None)
    swap = plan_commit("/lib/a.mkv", "/w/p", 3, True, ".av1")
    assert (swap.final, swap.backup) == ("/lib/a.mkv", "/lib/.a.mkv.3.pipecast-orig")
    assert is_ours(".a.av1.mkv.3.pipecast-tmp")
    assert is_ours(".3.pipecast-partial.mkv")
    assert not is_ours("a.pipecast-tmp")  # not hidden: not ours
    assert not is_ours("holiday.mkv")


# -- progress ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 500),
    st.lists(
        st.tuples(st.sampled_from(["frame", "suspend", "resume", "end"]), st.integers(0, 600)),
        max_size=40,
    ),
)
def test_progress_is_monotonic_within_0_and_100(total: int, events: list[tuple[str, int]]) -> None:
    p = EncodeProgress(total, 5.0, 0.0)
    now, last = 0.0, 0.0
    for kind, n in events:
        now += 0.5
        if kind == "frame":
            p.update({"frame": str(n), "speed": "1.5x"}, now)
        elif kind == "suspend":
            p.suspend(now)
        elif kind == "resume":
            p.resume(now)
        else:
            p.update({"frame": str(n), "progress": "end"}, now)
        assert 0.0 <= p.percent <= 100.0
        assert p.percent >= last
        last = p.percent
        assert p.active(now) <= now
        assert p.frames <= p.total or p.total == 0
        if p.ended and p.frames:
            assert p.total == p.frames  # the real count, once it is known


def test_an_ended_job_shows_its_real_frame_count_not_the_estimate() -> None:
    p = EncodeProgress(193, 5.0, 0.0)  # 8.04 s x 24 fps: the audio is 40 ms longer
    p.update({"frame": "150"}, 1.0)
    assert (p.as_dict(1.0)["frames"], p.as_dict(1.0)["total_frames"]) == (150, 193)
    p.update({"frame": "192", "progress": "end"}, 1.3)
    assert (p.as_dict(1.3)["frames"], p.as_dict(1.3)["total_frames"], p.percent) == (192, 192, 100)
    q = EncodeProgress(200, 5.0, 0.0)
    q.update({"frame": "210"}, 1.0)  # an estimate too low: never more done than in all
    assert q.as_dict(1.0)["total_frames"] == 210


def test_suspended_time_is_excluded_from_fps_eta_and_the_stall_clock() -> None:
    p = EncodeProgress(total_frames=200, stall_timeout=5.0, now=0.0)
    p.update({"frame": "50"}, 2.0)  # 25 fps over 2 s of work
    p.suspend(2.0)
    assert not p.stalled(100.0)  # suspended for 98 s: never a stall
    p.resume(100.0)
    assert p.active(100.0) == pytest.approx(2.0)
    assert p.fps(100.0) == pytest.approx(25.0)
    assert p.eta(100.0) == pytest.approx(6.0)
    assert not p.stalled(104.0)
    assert p.stalled(105.5)  # 5.5 s of unsuspended time without a new frame


def test_progress_counts_only_frames_gained() -> None:
    p = EncodeProgress(100, 1.0, 0.0)
    p.update({"frame": "10"}, 0.5)
    p.update({"frame": "10"}, 1.4)
    assert not p.stalled(1.4)
    assert p.stalled(1.6)
    p.update({"frame": "11"}, 1.7)
    assert not p.stalled(1.7)


# -- verification gates ------------------------------------------------------------------------------

V_H264 = StreamInfo(0, "video", "h264", 320, 240, 24.0)
V_AV1 = replace(V_H264, codec="av1")
AUDIO = StreamInfo(1, "audio", "aac", channels=1)
SUB = StreamInfo(2, "subtitle", "subrip")
SRC = Probe("matroska,webm", 60.0, 1_000_000, (V_H264, AUDIO, SUB))
OUT = Probe("matroska,webm", 60.0, 500_000, (V_AV1, AUDIO, SUB))
POLICY = MediaPolicy()
AV1 = EncodeSettings()


def test_a_good_output_passes() -> None:
    assert judge(SRC, OUT, 10_000_000, 5_000_000, POLICY, AV1) is None


@pytest.mark.parametrize(
    ("out", "size", "code"),
    [
        (OUT, 500, "TOO_SMALL"),  # B5
        (OUT, 0, "TOO_SMALL"),
        (replace(OUT, duration=30.0), 5_000_000, "DURATION"),  # B1: truncated at 50 %
        (replace(OUT, duration=57.9), 5_000_000, "DURATION"),  # > max(2 s, 0.5 %)
        (replace(OUT, streams=(V_AV1, SUB)), 5_000_000, "STREAMS"),  # B4: audio dropped
        (replace(OUT, streams=(V_AV1, AUDIO)), 5_000_000, "STREAMS"),  # subtitles dropped
        (replace(OUT, streams=(AUDIO, SUB)), 5_000_000, "NO_VIDEO"),
        (replace(OUT, streams=(V_H264, AUDIO, SUB)), 5_000_000, "CODEC"),
    ],
)
def test_a_bad_output_is_rejected_with_a_code(out: Probe, size: int, code: str) -> None:
    verdict = judge(SRC, out, 10_000_000, size, POLICY, AV1)
    assert isinstance(verdict, MediaFailure)
    assert (verdict.category, verdict.code) == ("verify_failed", code)


def test_a_duration_within_tolerance_passes() -> None:
    assert judge(SRC, replace(OUT, duration=58.1), 10_000_000, 5_000_000, POLICY, AV1) is None
    long = replace(SRC, duration=3600.0)
    assert (
        judge(long, replace(OUT, duration=3582.1), 10_000_000, 5_000_000, POLICY, AV1) is None
    )  # 0.5 %


def test_an_output_not_smaller_than_its_source_is_a_skip_not_a_success() -> None:  # B6
    assert judge(SRC, OUT, 5_000_000, 5_000_000, POLICY, AV1) == "not_beneficial"
    assert judge(SRC, OUT, 5_000_000, 6_000_000, POLICY, AV1) == "not_beneficial"
    roomy = replace(POLICY, max_output_ratio=1.5)
    assert judge(SRC, OUT, 5_000_000, 6_000_000, roomy, AV1) is None


def test_dropping_audio_on_purpose_expects_none() -> None:
    drop = replace(AV1, audio="drop")
    assert (
        judge(SRC, replace(OUT, streams=(V_AV1, SUB)), 10_000_000, 5_000_000, POLICY, drop) is None
    )


@pytest.mark.parametrize(
    "kw",
    [
        {"suffix": "av1"},
        {"suffix": ".a/b"},
        {"min_bytes": -1},
        {"max_output_ratio": 0},
        {"stall_timeout": 0},
        {"max_attempts": 0},
        {"replace": "yes"},
    ],
)
def test_a_bad_policy_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        MediaPolicy(**kw)


def test_probe_and_final_arguments_differ_only_in_paths() -> None:  # G2
    a = AV1.args("/lib/a.mkv", "/w/probe.mkv", 31.5)
    b = AV1.args("/lib/b.mkv", "/w/final.mkv", 31.5)
    assert [x for x in a if not x.startswith("/")] == [x for x in b if not x.startswith("/")]


@pytest.mark.parametrize("crf", [31.25, 63.5, 68.0])
def test_svt_av1_gets_fractional_and_high_crfs_through_its_own_params(crf: float) -> None:  # G3 G4
    args = AV1.args("/a.mkv", "/b.mkv", crf)
    assert "-crf" not in args
    assert args[args.index("-svtav1-params") + 1] == f"crf={crf:g}"
    merged = replace(AV1, extra=("-svtav1-params", "tune=0")).args("/a.mkv", "/b.mkv", crf)
    assert merged[merged.index("-svtav1-params") + 1] == f"crf={crf:g}:tune=0"
    assert merged.count("-svtav1-params") == 1
    x264 = EncodeSettings(encoder="libx264").args("/a.mkv", "/b.mkv", 20.25)
    assert x264[x264.index("-crf") + 1] == "20.25"
