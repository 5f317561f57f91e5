"""One job, whole, as text: what `pipecast jobs ID` prints. Pure."""

from __future__ import annotations

import shlex
from typing import Any

__all__ = ["job_text"]


def _size(n: Any) -> str:
    return f"{n:,} bytes" if type(n) is int else "-"


def job_text(job: dict[str, Any]) -> str:
    """The job's every field a person asks about, in the order they ask."""
    lines = [f"job {job['id']}: {job['state']}", f"  file      {job['path']}"]
    lines.append(f"  size      {_size(job.get('size'))}")
    if job.get("output_path"):
        ratio = job["output_size"] / job["size"] if job.get("size") else 0
        lines.append(f"  output    {job['output_path']} ({_size(job['output_size'])}, {ratio:.0%})")
    failure = job.get("failure")
    if failure:
        lines.append(
            f"  failed    in {failure['stage']}: {failure['category']}/{failure['code']}"
            f" {failure['message']} (attempts {job.get('attempts', 0)})"
        )
    if job.get("skip_reason"):
        lines.append(f"  skipped   {job['skip_reason']}")
    probe = job.get("probe") or {}
    if probe:
        streams = probe.get("streams", [])
        video: dict[str, Any] = next((s for s in streams if s.get("kind") == "video"), {})
        lines.append(
            f"  source    {probe.get('container')} {probe.get('duration', 0):.1f} s, "
            f"video {video.get('codec')} {video.get('width')}x{video.get('height')}"
        )
    search = job.get("search") or {}
    if job.get("crf") is not None:
        why = ""
        if "predicted_vmaf" in search:
            why = (
                f": predicted VMAF {search['predicted_vmaf']:.2f} for target "
                f"{search.get('target')} ({search.get('outcome')}, {search.get('probes')} probes)"
            )
        lines.append(f"  crf       {job['crf']:g}{why}")
    probes = job.get("probes") or []
    if probes:
        lines.append("  probes    crf    VMAF mean  worst    p1     seconds  cached")
        for p in probes:
            lines.append(
                f"            {p['crf']:<6g} {p['mean']:9.2f}  {p['worst']:6.2f}  {p['p1']:6.2f}"
                f"  {p['seconds']:8.1f}  {'yes' if p['cached'] else 'no'}"
            )
    encode = job.get("encode") or {}
    if encode:
        lines.append(
            f"  encode    {encode.get('seconds', 0):.1f} s, verify (full decode) "
            f"{encode.get('verify_seconds', 0):.1f} s, crf {encode.get('crf')}"
        )
        if encode.get("args"):
            lines.append(f"  command   ffmpeg {shlex.join(encode['args'])}")
    return "\n".join(lines)
