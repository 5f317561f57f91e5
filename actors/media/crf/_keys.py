"""The keys a CRF search files its work under: the encoder's and each sample encode's.

`encoder_key` names the ffmpeg build and the encode arguments without the
CRF: searches with the same key learn the u-slope from one another and a
copy of searched content reuses its answer. `sample_key` names one sample
encode and its score, for the cache: the source's fingerprint, the sample,
the build, the arguments with the CRF and the VMAF options; anything that
changes the bytes or the score changes the key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import asdict

from pipecast.actors.media._config import EncodeSettings
from pipecast.actors.media._ffmpeg import ffmpeg_exe

from ._samples import Sample
from ._vmaf import VMAF_OPTIONS

__all__ = ["encoder_key", "ffmpeg_build", "sample_key"]


@functools.cache
def ffmpeg_build() -> str:
    """ffmpeg's version line. Caller's thread; runs `ffmpeg -version` once per process."""
    out = subprocess.run(  # noqa: S603 - our binary
        [ffmpeg_exe(), "-version"], capture_output=True, text=True, check=False
    )
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def encoder_key(settings: EncodeSettings) -> str:
    """16 hex digits naming the build and the arguments, not the CRF."""
    args = settings.args("{in}", "{out}", 0.0)
    blob = json.dumps([ffmpeg_build(), args]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sample_key(
    size: int, digest: str, sample: Sample | None, settings: EncodeSettings, crf: float
) -> str:
    """The cache key of one sample (None: the whole file) encoded at `crf` and scored."""
    args = settings.args("{in}", "{out}", crf)
    where = "full" if sample is None else asdict(sample)
    key = [size, digest, where, ffmpeg_build(), args, VMAF_OPTIONS]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
