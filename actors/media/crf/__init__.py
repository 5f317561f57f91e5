"""pipecast.actors.media.crf: the CRF search, from strategy to stage.

The pure parts: `CrfSearch` (the strategy: fed probe results, it names the
next CRF or stops), the sample plan (`plan_samples`, `score_probe`,
`file_percent`), paired probes (`paired_estimate`, `may_stop`), one search's
probe bookkeeping (`ProbeBook`) and what a search reports (`search_summary`,
`live_detail`, `SearchTotals`). The I/O shells: `Tasks` runs the ffmpeg
commands of a search, `_vmaf` builds and reads libvmaf runs, `_keys` names
cached samples, and `CrfSearchStage` is the `crf_search` stage that puts
them together. See docs/crf_search.md.
"""

from ._crf_search import CrfSearchStage
from ._keys import encoder_key, ffmpeg_build, sample_key
from ._paired import (
    PairedEstimate,
    SampleScore,
    may_stop,
    nearest_complete,
    paired_estimate,
    settled_paired,
)
from ._probe_book import ProbeBook, ProbeRecord, SampleResult
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
    ProbeScores,
    Sample,
    SamplePlan,
    cut_args,
    file_percent,
    plan_samples,
    probe_order,
    sample_centres,
    score_probe,
)
from ._strategy import (
    AIM,
    MAX_JUMP,
    SETTLE_MARGIN,
    CrfSearch,
    EncoderModel,
    Outcome,
    ProbeResult,
    SearchResult,
    encoder_model,
    learned_model,
    settled_early,
    u_slope_of,
)
from ._tasks import Ended, Tasks
from ._vmaf import (
    VMAF_OPTIONS,
    count_frames,
    keyframes,
    keyframes_near,
    read_vmaf_log,
    scored_encode_args,
    vmaf_args,
)

__all__ = [
    "AIM",
    "MAX_JUMP",
    "SETTLE_MARGIN",
    "VMAF_OPTIONS",
    "CrfSearch",
    "CrfSearchStage",
    "CrfSearchStatistics",
    "EncoderModel",
    "Ended",
    "Outcome",
    "PairedEstimate",
    "ProbeBook",
    "ProbeRecord",
    "ProbeResult",
    "ProbeScores",
    "Sample",
    "SamplePlan",
    "SampleResult",
    "SampleScore",
    "SearchEta",
    "SearchFacts",
    "SearchResult",
    "SearchTotals",
    "Tasks",
    "count_frames",
    "cut_args",
    "encoder_key",
    "encoder_model",
    "ffmpeg_build",
    "file_percent",
    "keyframes",
    "keyframes_near",
    "learned_model",
    "live_detail",
    "may_stop",
    "nearest_complete",
    "paired_estimate",
    "plan_samples",
    "probe_order",
    "read_vmaf_log",
    "sample_centres",
    "sample_key",
    "score_probe",
    "scored_encode_args",
    "search_progress",
    "search_summary",
    "settled_early",
    "settled_paired",
    "u_slope_of",
    "vmaf_args",
]
