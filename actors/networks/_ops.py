"""The control ops of networks: validation, and what each asks of a runner. Pure.

`run` {network, prompt}, `run.stop` {network}, `invocations` {network, run?,
limit?} and `runs` {network, limit?} go to the network's runner as a
`RunRequest`; `networks` is answered from the networks' configuration and the
control server's replica of the bus (each runner's `run` key and the viewer
count on `presence/invocation/<network>`), so it shows what watchers see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipecast.transport import INT_MAX, BadRequest, ErrorType, PipecastError, expect_int

from ._runner import Reply, RunRequest, runner_name

__all__ = ["NETWORK_OPS", "UnknownNetwork", "network_request", "networks_result"]

NETWORK_OPS = {"run": "run", "run.stop": "stop", "invocations": "invocations", "runs": "runs"}


class UnknownNetwork(PipecastError):
    wire_type = ErrorType.UNKNOWN_NETWORK


def _limit(args: Mapping[str, Any], default: int) -> int:
    limit = args.get("limit", default)
    if type(limit) is not int or not 1 <= limit <= 10_000:
        raise BadRequest("limit must be an int from 1 to 10,000")
    return limit


def network_request(
    op: str, args: Mapping[str, Any], cid: str, reply: Reply, networks: Mapping[str, Any]
) -> tuple[str, RunRequest]:
    """(runner name, request) for a network op; `BadRequest`/`UnknownNetwork` if invalid."""
    network = args.get("network")
    if type(network) is not str or not network:
        raise BadRequest("network must be a non-empty string")
    if network not in networks:
        known = ", ".join(sorted(networks)) or "none"
        raise UnknownNetwork(f"no network named {network!r} (networks: {known})")
    kind = NETWORK_OPS[op]
    out: dict[str, Any] = {}
    if kind == "run":
        prompt = args.get("prompt")
        if type(prompt) is not str or not prompt.strip() or len(prompt) > 10_000:
            raise BadRequest("prompt must be non-empty text of at most 10,000 characters")
        out["prompt"] = prompt
    elif kind == "invocations":
        run = args.get("run")
        if run is not None:
            expect_int(run, "run (a run id)", 1, INT_MAX)
        out = {"run": run, "limit": _limit(args, 100)}
    elif kind == "runs":
        out["limit"] = _limit(args, 20)
    return runner_name(network), RunRequest(kind, out, cid, reply)


def networks_result(
    networks: Mapping[str, dict[str, Any]], view: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    out = {}
    for name, info in sorted(networks.items()):
        topic = f"invocation/{name}"
        out[name] = {
            **info,
            "topic": topic,
            "state": view.get(topic, {}).get("run"),
            "viewers": len(view.get(f"presence/{topic}", {})),
        }
    return out
