"""pipecast.actors.media: the media pipeline, from a library of files to AV1.

The library (`Library`) is the pipeline's durable queue: every file's job and
its state, moved only by the pure `job_transition` table. The stages are
named after their kinds: `AnalyzeStage` (analyze: inspect, skip or pass on),
`FixedCrfStage` (crf) or `CrfSearchStage` (crf_search, in `crf/`), and
`EncodeStage` (encode: encode with ffmpeg, verify with the pure `judge`,
commit by the journaled `commit` whose recovery `plan_commit`/`recovery`
decide). `inspect_media` reads what a file holds; `make_clip` makes test and
demo clips. See docs/media.md.
"""

from ._analyze import AnalyzeStage
from ._clips import make_clip
from ._commit import commit, facts_of, fsync_dir, recover
from ._commit_plan import Action, CommitPlan, Facts, plan_commit, recovery
from ._config import OUR_MARK, VIDEO_EXTENSIONS, EncodeSettings, MediaPolicy, is_ours
from ._encode import EncodeStage
from ._ffmpeg import (
    FfmpegJob,
    classify_failure,
    ffmpeg_exe,
    kill_orphan,
    loopback_decoding,
    run_ffmpeg,
)
from ._fixed_crf import FixedCrfStage
from ._inspect import MediaInfo, StreamInfo, inspect_media
from ._job_states import (
    QUEUED,
    RESOURCE_ERRNOS,
    RETRYABLE,
    RUNNING,
    InvalidTransition,
    JobEvent,
    JobState,
    MediaFailure,
    job_transition,
    stage_of,
)
from ._library import Job, Library, fingerprint
from ._ops import library_request
from ._progress import EncodeProgress
from ._roots import OutsideRoots, check_still_within, resolve_roots, resolve_within, within
from ._search_history import SearchHistory
from ._stage import LibraryRequest, MediaStage, as_media_failure
from ._verify import judge
from .crf import CrfSearchStage

__all__ = [
    "OUR_MARK",
    "QUEUED",
    "RESOURCE_ERRNOS",
    "RETRYABLE",
    "RUNNING",
    "VIDEO_EXTENSIONS",
    "Action",
    "AnalyzeStage",
    "CommitPlan",
    "CrfSearchStage",
    "EncodeProgress",
    "EncodeSettings",
    "EncodeStage",
    "Facts",
    "FfmpegJob",
    "FixedCrfStage",
    "InvalidTransition",
    "Job",
    "JobEvent",
    "JobState",
    "Library",
    "LibraryRequest",
    "MediaFailure",
    "MediaInfo",
    "MediaPolicy",
    "MediaStage",
    "OutsideRoots",
    "SearchHistory",
    "StreamInfo",
    "as_media_failure",
    "check_still_within",
    "classify_failure",
    "commit",
    "facts_of",
    "ffmpeg_exe",
    "fingerprint",
    "fsync_dir",
    "inspect_media",
    "is_ours",
    "job_transition",
    "judge",
    "kill_orphan",
    "library_request",
    "loopback_decoding",
    "make_clip",
    "plan_commit",
    "recover",
    "recovery",
    "resolve_roots",
    "resolve_within",
    "run_ffmpeg",
    "stage_of",
    "within",
]
