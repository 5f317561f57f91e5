"""The rules of a network's runs, as a pure state machine. No threads, no clock.

A network is a ring of models. A run starts with a genesis invocation
(sequence 0) made from a prompt; its run id is the genesis id. Invocation k
uses model k mod len(models) and takes the previous output as its input.

`RunMachine` is fed what happens (a prompt, a model's result, a timer that
came due, a viewer count) with the current wall-clock time passed in, and
answers with effects for its shell to carry out: `Record` an invocation
(store it, publish it), `Call` a model, `Schedule` a continuation or a
timeout, `Forget` keys of the live topic. The machine never blocks.

Every continuation and every model result carries what it belongs to (a
`Token`: run and sequence; an invocation id and attempt): one that no longer
matches the current run is stale and does nothing. This closes the race of
the PANIC! runner, whose untagged delayed invocation could continue an old
chain after a stop or under a new run's genesis.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pipecast.transport import BadRequest, ErrorType, PipecastError

__all__ = [
    "DEFAULT_PACE",
    "Call",
    "Effect",
    "EndRun",
    "Forget",
    "Invocation",
    "LockedOut",
    "Pace",
    "Record",
    "RunMachine",
    "RunRules",
    "RunStatus",
    "Schedule",
    "Token",
]


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class LockedOut(PipecastError):
    """A prompt came within the lockout after the current run's genesis."""

    wire_type = ErrorType.LOCKED_OUT

    def __init__(self, message: str, ready_at: float) -> None:
        super().__init__(message)
        self.ready_at = ready_at

    def details(self) -> dict[str, Any]:
        return {"ready_at": self.ready_at}


class RunStatus(enum.Enum):
    IDLE = "idle"  # no run: a prompt starts one at once
    INVOKING = "invoking"  # a model is working on the run's latest invocation
    WAITING = "waiting"  # between invocations: the next one is due at next_at
    HELD = "held"  # only_when_watched, and nobody watches: waits for a viewer


@dataclass(frozen=True, slots=True)
class Pace:
    """The delay between invocations by run age: ((until_age, delay), ..., (None, delay))."""

    steps: tuple[tuple[float | None, float], ...]

    def __post_init__(self) -> None:
        if not self.steps or self.steps[-1][0] is not None:
            raise BadRequest("pace needs steps ending with one without 'until'")
        last = 0.0
        for until, delay in self.steps:
            if type(delay) not in (int, float) or not 0 <= delay <= 86400 or math.isnan(delay):
                raise BadRequest(f"pace delay {delay!r} must be 0 to 86400 seconds")
            if until is not None:
                if type(until) not in (int, float) or not until > last:
                    raise BadRequest(f"pace 'until' {until!r} must be increasing and > 0")
                last = until

    def delay(self, age: float) -> float:
        for until, delay in self.steps:
            if until is None or age < until:
                return float(delay)
        raise AssertionError("unreachable: the last step has no limit")


# PANIC!'s gradual backoff: 1 s for the first 10 minutes, 15 s up to an hour, then 10 min.
DEFAULT_PACE = Pace(((600.0, 1.0), (3600.0, 15.0), (None, 600.0)))


@dataclass(frozen=True, slots=True)
class RunRules:
    """One network's configuration (validated; docs/networks.md explains each field)."""

    network: str
    models: tuple[str, ...]
    lockout: float = 30.0
    pace: Pace = DEFAULT_PACE
    max_invocations: int | None = None
    max_duration: float | None = None
    timeout: float = 60.0
    retries: int = 0
    only_when_watched: bool = False
    keep_live: int = 1000  # invocations of the current run kept on the live topic

    def __post_init__(self) -> None:
        if type(self.network) is not str or not _NAME.fullmatch(self.network):
            raise BadRequest(f"network name {self.network!r} must be 1-64 of [A-Za-z0-9_-]")
        if type(self.models) is not tuple:
            raise BadRequest("models must be a tuple of model names")
        if not self.models or not all(type(m) is str and m for m in self.models):
            raise BadRequest(f"network {self.network!r} needs a non-empty list of model names")
        for name, v, low in (("lockout", self.lockout, 0), ("timeout", self.timeout, 0.001)):
            if type(v) not in (int, float) or not low <= v <= 86400:
                raise BadRequest(f"{name} {v!r} must be {low} to 86400 seconds")
        if self.max_invocations is not None and (
            type(self.max_invocations) is not int or self.max_invocations < 1
        ):
            raise BadRequest("max_invocations must be an int >= 1")
        if self.max_duration is not None and (
            type(self.max_duration) not in (int, float) or not self.max_duration > 0
        ):
            raise BadRequest("max_duration must be > 0 seconds")
        if type(self.retries) is not int or not 0 <= self.retries <= 10:
            raise BadRequest("retries must be an int from 0 to 10")
        if type(self.keep_live) is not int or self.keep_live < 1:
            raise BadRequest("keep_live must be an int >= 1")


@dataclass(frozen=True, slots=True)
class Invocation:
    id: int
    network: str
    run: int
    sequence: int
    model: str
    input: str
    state: str  # invoking | completed | failed
    started_at: float
    output: str | None = None
    ended_at: float | None = None
    error: str | None = None
    attempt: int = 1

    def value(self) -> dict[str, Any]:
        """The invocation as published on `invocation/<network>` (key = str(id))."""
        return {
            "id": self.id,
            "network": self.network,
            "run": self.run,
            "sequence": self.sequence,
            "model": self.model,
            "input": self.input,
            "output": self.output,
            "state": self.state,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "error": self.error,
            "attempt": self.attempt,
        }


@dataclass(frozen=True, slots=True)
class Token:
    """What a scheduled timer belongs to: ("next", run, seq) or ("timeout", id, attempt)."""

    kind: str
    a: int
    b: int


@dataclass(frozen=True, slots=True)
class Record:
    """Store the invocation and publish it."""

    invocation: Invocation
    new_run_prompt: str | None = None  # set on a genesis: the run row to create


@dataclass(frozen=True, slots=True)
class Call:
    """Run the invocation's model on its input (off the runner's thread)."""

    invocation: Invocation


@dataclass(frozen=True, slots=True)
class Schedule:
    at: float  # wall-clock seconds
    token: Token


@dataclass(frozen=True, slots=True)
class Forget:
    """Delete these invocation ids from the live topic (the store keeps them)."""

    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EndRun:
    """Record in the store that `run` ended, and why."""

    run: int
    reason: str
    at: float


Effect = Record | Call | Schedule | Forget | EndRun


@dataclass(slots=True)
class _Run:
    id: int
    prompt: str
    genesis_at: float
    current: Invocation
    live: dict[int, int] = field(default_factory=dict)  # sequence -> invocation id


class RunMachine:
    """One network's runs (see module docstring). `new_id()` allocates invocation ids."""

    def __init__(self, rules: RunRules, new_id: Callable[[], int]) -> None:
        self.rules = rules
        self._new_id = new_id
        self.status = RunStatus.IDLE
        self.run: _Run | None = None
        self.next_at: float | None = None
        self.reason: str | None = None  # why the last run ended
        self.watched = True
        self.stale = 0  # continuations and results that belonged to nothing current
        self.locked_out = 0

    # -- reading ---------------------------------------------------------------

    def ready_at(self) -> float | None:
        """When a new prompt is accepted (None: now)."""
        if self.run is None or self.status is RunStatus.IDLE:
            return None
        return self.run.genesis_at + self.rules.lockout

    def value(self) -> dict[str, Any]:
        """The `run` key of the live topic: the runner's whole state."""
        run = self.run
        return {
            "status": self.status.value,
            "run": None if run is None else run.id,
            "prompt": None if run is None else run.prompt,
            "genesis_at": None if run is None else run.genesis_at,
            "sequence": None if run is None else run.current.sequence,
            "ready_at": self.ready_at(),
            "next_at": self.next_at if self.status is not RunStatus.IDLE else None,
            "reason": self.reason,
            "error": None if run is None else run.current.error,
            "watched": self.watched,
        }

    # -- requests ----------------------------------------------------------------

    def start(self, prompt: str, now: float) -> list[Effect]:
        """A prompt: start a run, ending the current one; `LockedOut` within the lockout."""
        if type(prompt) is not str or not prompt.strip() or len(prompt) > 10_000:
            raise BadRequest("prompt must be non-empty text of at most 10,000 characters")
        ready = self.ready_at()
        if ready is not None and now < ready:
            self.locked_out += 1
            raise LockedOut(
                f"network {self.rules.network!r} is locked out for {ready - now:.1f} s more",
                ready,
            )
        effects: list[Effect] = []
        old = self.run
        if old is not None and self.status is not RunStatus.IDLE:
            effects += self._end(now, "superseded", failed="superseded by a new run")
        gid = self._new_id()
        genesis = Invocation(
            gid, self.rules.network, gid, 0, self.rules.models[0], prompt, "invoking", now
        )
        self.run = _Run(gid, prompt, now, genesis, {0: gid})
        self.status, self.next_at, self.reason = RunStatus.INVOKING, None, None
        effects += [Record(genesis, prompt), *self._call(genesis, now)]
        if old is not None and old.live:
            # after the genesis, so displays reset to the new run before the old keys go
            effects.append(Forget(tuple(old.live.values())))
        return effects

    def stop(self, now: float, reason: str = "stopped") -> list[Effect]:
        """End the current run (its in-flight invocation fails); [] when idle."""
        if self.run is None or self.status is RunStatus.IDLE:
            return []
        return self._end(now, reason, failed=reason)

    # -- events ------------------------------------------------------------------

    def completed(self, inv_id: int, attempt: int, output: str, now: float) -> list[Effect]:
        inv = self._in_flight(inv_id, attempt)
        if inv is None:
            return []
        assert self.run is not None
        done = replace(inv, state="completed", output=output, ended_at=now, error=None)
        self.run.current = done
        effects: list[Effect] = [Record(done)]
        rules = self.rules
        if rules.max_invocations is not None and done.sequence + 1 >= rules.max_invocations:
            return effects + self._end(now, "max_invocations")
        if rules.max_duration is not None and now - self.run.genesis_at >= rules.max_duration:
            return effects + self._end(now, "max_duration")
        self.status = RunStatus.WAITING
        self.next_at = now + rules.pace.delay(now - self.run.genesis_at)
        return [*effects, Schedule(self.next_at, Token("next", self.run.id, done.sequence + 1))]

    def failed(self, inv_id: int, attempt: int, error: str, now: float) -> list[Effect]:
        """The model raised, returned the wrong kind, or timed out."""
        inv = self._in_flight(inv_id, attempt)
        if inv is None:
            return []
        assert self.run is not None
        if inv.attempt <= self.rules.retries:
            retry = replace(inv, attempt=inv.attempt + 1, error=error)
            self.run.current = retry
            return [Record(retry), *self._call(retry, now)]
        self.run.current = replace(inv, state="failed", ended_at=now, error=error)
        return [Record(self.run.current), *self._end(now, "failed")]

    def due(self, token: Token, now: float) -> list[Effect]:
        """A scheduled timer came due; a stale one does nothing."""
        run = self.run
        if token.kind == "timeout":
            inv = self._in_flight(token.a, token.b)
            if inv is None:
                return []
            return self.failed(inv.id, inv.attempt, f"timeout after {self.rules.timeout:g} s", now)
        if (
            run is None
            or self.status is not RunStatus.WAITING
            or token != Token("next", run.id, run.current.sequence + 1)
        ):
            self.stale += 1
            return []
        if not self.watched:
            self.status = RunStatus.HELD
            return []
        return self._next(now)

    def viewers(self, count: int, now: float) -> list[Effect]:
        """The live topic's viewer count (only matters with only_when_watched)."""
        self.watched = count > 0 or not self.rules.only_when_watched
        if self.status is RunStatus.HELD and self.watched:
            assert self.next_at is not None
            if now >= self.next_at:
                return self._next(now)
            self.status = RunStatus.WAITING
            assert self.run is not None
            return [
                Schedule(self.next_at, Token("next", self.run.id, self.run.current.sequence + 1))
            ]
        return []

    def restore(
        self,
        run: int,
        prompt: str,
        genesis_at: float,
        reason: str | None,
        last: Iterable[Invocation],
    ) -> None:
        """After a restart: the last run as the store has it (already ended), idle."""
        invocations = sorted(last, key=lambda i: i.sequence)
        if not invocations:
            return
        self.run = _Run(run, prompt, genesis_at, invocations[-1])
        self.run.live = {i.sequence: i.id for i in invocations}
        self.status, self.next_at, self.reason = RunStatus.IDLE, None, reason

    # -- inside ------------------------------------------------------------------

    def _in_flight(self, inv_id: int, attempt: int) -> Invocation | None:
        run = self.run
        if (
            run is None
            or self.status is not RunStatus.INVOKING
            or run.current.id != inv_id
            or run.current.attempt != attempt
        ):
            self.stale += 1
            return None
        return run.current

    def _call(self, inv: Invocation, now: float) -> list[Effect]:
        return [
            Call(inv),
            Schedule(now + self.rules.timeout, Token("timeout", inv.id, inv.attempt)),
        ]

    def _next(self, now: float) -> list[Effect]:
        run = self.run
        assert run is not None
        prev = run.current
        seq = prev.sequence + 1
        models = self.rules.models
        inv = Invocation(
            self._new_id(),
            self.rules.network,
            run.id,
            seq,
            models[seq % len(models)],
            prev.output or "",
            "invoking",
            now,
        )
        run.current = inv
        run.live[seq] = inv.id
        self.status, self.next_at = RunStatus.INVOKING, None
        effects: list[Effect] = [Record(inv), *self._call(inv, now)]
        old = seq - self.rules.keep_live
        if old > 0 and old in run.live:  # the genesis always stays: it names the run
            effects.append(Forget((run.live.pop(old),)))
        return effects

    def _end(self, now: float, reason: str, failed: str | None = None) -> list[Effect]:
        run = self.run
        assert run is not None
        effects: list[Effect] = []
        if failed is not None and self.status is RunStatus.INVOKING:
            run.current = replace(run.current, state="failed", ended_at=now, error=failed)
            effects.append(Record(run.current))
        self.status, self.next_at, self.reason = RunStatus.IDLE, None, reason
        effects.append(EndRun(run.id, reason, now))
        return effects
