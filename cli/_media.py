"""`pipecast enqueue`, `jobs`, `retry`, `cancel`, `nodes`: the media library, from a shell."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from pipecast.actors import JobState

from ._app import main
from ._client import Endpoints, call, client_options, emit
from ._errors import EXIT_CODES, CliError, UsageError
from ._job_text import job_text

__all__: list[str] = []

_STATES = tuple(s.value for s in JobState)


def _has_sub_folders(folder: Path) -> bool:
    try:
        return any(p.is_dir() for p in folder.iterdir())
    except OSError:
        return False


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--recursive", "-r", is_flag=True, help="look into sub-folders too")
@click.option("--stage", default=None, help="the stage to give them to (default: the first)")
@click.option("--json", "as_json", is_flag=True)
def enqueue(
    ep: Endpoints, paths: tuple[Path, ...], recursive: bool, stage: str | None, as_json: bool
) -> None:
    """Queue video files and folders; idempotent (known files are not queued twice).

    pipecast's own temp files and outputs are never queued.
    """
    args: dict[str, Any] = {"paths": [str(p.resolve()) for p in paths], "recursive": recursive}
    if stage:
        args["stage"] = stage
    result = call(ep, "enqueue", **args)
    if as_json:
        emit(result, True)
    elif "added" not in result:  # a stage with a plain work queue
        click.echo(" ".join(str(i) for i in result["ids"]))
    else:
        click.echo(
            f"queued {result['added']} new, {result['rescanned']} changed, "
            f"{result['known']} already known; ids {' '.join(map(str, result['ids'])) or '-'}"
        )
        for entry in result["ignored"]:
            click.echo(f"  ignored {entry['path']}: {entry['why']}")
    if "added" in result and not result["added"] + result["rescanned"] + result["known"]:
        hint = ""
        if not recursive and any(p.is_dir() and _has_sub_folders(p) for p in paths):
            hint = " (its sub-folders were not looked into: add -r)"
        raise CliError(f"no video file was queued{hint}")


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("job_id", type=click.IntRange(1), required=False)
@click.option("--state", type=click.Choice(_STATES), default=None)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs(ep: Endpoints, job_id: int | None, state: str | None, limit: int, as_json: bool) -> None:
    """The library's files and where each one is; with JOB_ID, that job whole (its CRF
    probes, the chosen CRF and why, the encode command as run, the verify figures)."""
    if job_id is not None:
        job = call(ep, "job", id=job_id)
        if as_json:
            emit(job, True)
        else:
            click.echo(job_text(job))
        return
    result = call(ep, "jobs", limit=limit, **({"state": state} if state else {}))
    if as_json:
        emit(result, True)
        return
    for job in result["jobs"]:
        why = ""
        if job["failure"]:
            f = job["failure"]
            why = f" [{f['stage']}/{f['category']}/{f['code']}] {f['message']}"
        elif job["skip_reason"]:
            why = f" ({job['skip_reason']})"
        elif job["output_path"]:
            pct = 100 * job["output_size"] / job["size"] if job["size"] else 0
            why = f" -> {job['output_path']} ({pct:.0f} %)"
        elif job.get("lease_until") is not None and job.get("node"):
            why = f" (on {job['node']})"
        click.echo(f"{job['id']:>6} {job['state']:<14} {job['path']}{why}")


@main.command(epilog=EXIT_CODES)
@client_options
@click.option("--json", "as_json", is_flag=True)
def nodes(ep: Endpoints, as_json: bool) -> None:
    """The nodes that share this node's library: where each is reached, what it runs,
    when it was last seen, and how many jobs it holds now."""
    result = call(ep, "nodes")
    if as_json:
        emit(result, True)
        return
    now = time.time()
    for n in result["nodes"]:
        click.echo(
            f"{n['name']:<16} seen {max(0.0, now - n['seen']):6.1f} s ago  holds {n['held']:>3}  "
            f"{','.join(n['stages']):<24} control {n['control']}"
        )


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("ids", nargs=-1, type=click.IntRange(1))
@click.option(
    "--code",
    default=None,
    help="retry every failed job with this failure code (STALLED) or category (resource)",
)
@click.option("--json", "as_json", is_flag=True)
def retry(ep: Endpoints, ids: tuple[int, ...], code: str | None, as_json: bool) -> None:
    """Send failed jobs back to the stage that failed them (by id, or all with --code).

    Exits 1 unless every job asked for was retried.
    """
    if bool(ids) == bool(code):
        raise UsageError("give job ids or --code, not both and not neither")
    result = call(ep, "retry", **({"ids": list(ids)} if ids else {"code": code}))
    retried, refused = result["retried"], result["not_retried"]
    if as_json:
        emit(result, True)
    else:
        if retried:
            click.echo(f"retrying {len(retried)} job(s): {' '.join(map(str, retried))}")
        for entry in refused:
            click.echo(f"  not retried {entry['id']}: {entry['why']}", err=True)
    if code is not None and not retried and not refused:
        known = ", ".join(result.get("codes", [])) or "none: no job has failed"
        raise CliError(
            f"no failed job has the code or category {code!r}; failed jobs have: {known}"
        )
    if refused or not retried:
        raise CliError(f"{len(refused)} of the jobs asked for were not retried")


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("job_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True)
def cancel(ep: Endpoints, job_id: int, as_json: bool) -> None:
    """Cancel a job, queued or running (also while paused or suspended)."""
    result = call(ep, "cancel", id=job_id)
    if as_json:
        emit(result, True)
        return
    if result.get("cancelled") == "requested":
        click.echo(f"job {job_id}: cancel asked of node {result['node']}, which holds it")
        return
    where = f" (it was running in {result['stage']})" if "stage" in result else ""
    click.echo(f"job {job_id} cancelled{where}")
