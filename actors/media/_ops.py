"""The control ops of the media library: validation, and the request each makes. Pure.

`jobs` {state?, limit?}, `job` {id}, `retry` {ids | code}, `cancel` {id}, `nodes` go to the
pipeline's first stage as a `LibraryRequest`; it answers from the library
(and hands a cancel of a running job to the stage running it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipecast.actors.runtime import Reply
from pipecast.transport import INT_MAX, BadRequest, expect_int

from ._job_states import JobState
from ._stage import LibraryRequest

__all__ = ["library_request"]

_STATES = {s.value for s in JobState}


def library_request(op: str, args: Mapping[str, Any], cid: str, reply: Reply) -> LibraryRequest:
    if op == "jobs":
        state, limit = args.get("state"), args.get("limit", 1000)
        if state is not None and (type(state) is not str or state not in _STATES):
            raise BadRequest(f"state must be one of {', '.join(sorted(_STATES))}")
        if type(limit) is not int or not 1 <= limit <= 100_000:
            raise BadRequest("limit must be an int from 1 to 100,000")
        return LibraryRequest(op, {"state": state, "limit": limit}, cid, reply)
    if op == "nodes":
        return LibraryRequest(op, {}, cid, reply)
    if op == "retry":
        ids, code = args.get("ids"), args.get("code")
        if (ids is None) == (code is None):
            raise BadRequest("retry takes either ids or code")
        if ids is not None and (
            type(ids) is not list
            or not 1 <= len(ids) <= 100_000
            or not all(type(i) is int and 0 < i <= INT_MAX for i in ids)
        ):
            raise BadRequest("ids must be a list of 1 to 100,000 job ids (ints from 1 to 2**63-1)")
        if code is not None and (type(code) is not str or not code or len(code) > 64):
            raise BadRequest("code must be a failure code such as STALLED")
        return LibraryRequest(op, {"ids": ids, "code": code}, cid, reply)
    job_id = expect_int(args.get("id"), "id (a job id)", 1, INT_MAX)  # job, cancel
    return LibraryRequest(op, {"id": job_id}, cid, reply)
