"""The network runner: one actor per network, a thin shell around `RunMachine`.

It carries out the machine's effects: stores invocations (`InvocationLog`),
publishes them on `invocation/<network>` (key = invocation id; key `run` =
the runner's whole state, with the absolute `ready_at` and `next_at`, so
displays count down by themselves), hands model calls to a small worker pool
(so pause, stop and status stay responsive while a model works) and keeps
the machine's timers in a heap that drives its inbox's timer. Every timer and
every model result carries what it belongs to; the machine drops stale ones.

All of it runs in the runner's thread except the model calls; a model's
result comes back as a message. A store failure kills the runner (published
on `actor/network/<name>`); its next incarnation reports the interrupted run.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from pipecast.actors.presence import PresenceCounts
from pipecast.actors.runtime import BridgeHandle, PollingActor, Supervised, TimerDue
from pipecast.transport import BadRequest, PipecastError

from ._invocation_log import InvocationLog
from ._models import Model, ModelError, invoke_model
from ._resolve import resolve_model
from ._run_rules import Call, Effect, EndRun, Forget, Record, RunMachine, RunRules, Schedule, Token

__all__ = ["NetworkRunner", "RunRequest", "runner_name"]

log = logging.getLogger("pipecast.network")

Reply = Callable[[Any], None]


def runner_name(network: str) -> str:
    return f"network/{network}"


@dataclass(frozen=True, slots=True)
class RunRequest:
    """op: run (prompt), stop, invocations (run, limit), runs (limit). Validated by the sender."""

    op: str
    args: dict[str, Any]
    cid: str | None
    reply: Reply


@dataclass(frozen=True, slots=True)
class _Result:
    inv_id: int
    attempt: int
    output: str | None
    error: str | None


class NetworkRunner(PollingActor, Supervised):
    """See module docstring. Started by the node's supervisor as `network/<name>`."""

    OPTIONS = frozenset({"rules", "log", "images", "counts"})

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any],
        bridge: BridgeHandle,
        rules: RunRules,
        log: InvocationLog,
        images: Path,
        counts: PresenceCounts,
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.rules = rules
        self.log = log
        self.images = images
        self.counts = counts
        self.topic = f"invocation/{rules.network}"
        self.machine = RunMachine(rules, log.new_id)
        self.models: dict[str, Model] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._timers: list[tuple[float, int, Token]] = []  # continuations, stale ones too
        # one model call is in flight at a time, so one timeout: (due, token)
        self._deadline: tuple[float, Token] | None = None
        self._order = itertools.count()
        self._overhead = 0.0  # runner time since the last model call (one invocation's)
        self._samples: deque[float] = deque(maxlen=100_000)
        self._calls = 0
        self._results = 0
        self._in_flight = 0
        self._run_value: dict[str, Any] | None = None  # the `run` key last published

    # -- lifecycle (runner thread) ----------------------------------------------

    def on_begin(self) -> None:
        self.models = {m: resolve_model(m) for m in set(self.rules.models)}
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix=f"model-{self.rules.network}"
        )
        self.poll_every(0.1 if self.rules.only_when_watched else 1.0)
        now = time.time()
        if n := self.log.interrupted(self.rules.network, now):
            log.warning("%s: %d invocation(s) interrupted by a stop", self.actor_name, n)
        self._restore()
        self.machine.viewers(self.counts.count(self.topic), now)
        self._publish_run(None)

    def _restore(self) -> None:
        last = self.log.last_run(self.rules.network)
        if last is None:
            return
        keep = self.log.invocations(self.rules.network, last["run"], self.rules.keep_live)
        genesis = self.log.genesis(self.rules.network, last["run"])
        if genesis is not None and all(i.sequence for i in keep):
            keep.insert(0, genesis)
        self.machine.restore(last["run"], last["prompt"], last["started_at"], last["reason"], keep)
        for inv in keep:
            self.bridge.publish(self.topic, str(inv.id), inv.value())

    def on_end(self, error: str | None) -> None:
        try:
            if self._pool is None:
                return  # never began
            try:
                self._apply(self.machine.stop(time.time(), "node stopped"), None)
                self._publish_run(None)
            except PipecastError:
                log.exception("%s: the final state was not recorded", self.actor_name)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self.stop_polling()
        finally:
            self.log.store.release()

    def statistics(self) -> dict[str, Any]:
        samples = sorted(self._samples)

        def pct(p: float) -> float | None:
            return round(samples[int(p * (len(samples) - 1))] * 1e6, 1) if samples else None

        return {
            "status": self.machine.status.value,
            "model_calls": self._calls,
            "model_results": self._results,
            "models_in_flight": self._in_flight,
            "stale": self.machine.stale,
            "locked_out": self.machine.locked_out,
            "timers": len(self._timers) + (self._deadline is not None),
            "overhead_us_p50": pct(0.5),
            "overhead_us_p99": pct(0.99),
            "overhead_samples": len(samples),
        }

    # -- messages (runner thread) -------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        t0 = time.perf_counter()
        if isinstance(message, _Result):
            self._results += 1
            now = time.time()
            if self._deadline is not None and self._deadline[1].a == message.inv_id:
                self._deadline = None
            if message.error is None:
                assert message.output is not None
                effects = self.machine.completed(
                    message.inv_id, message.attempt, message.output, now
                )
            else:
                effects = self.machine.failed(message.inv_id, message.attempt, message.error, now)
            self._handled(effects, None, t0)
        elif isinstance(message, TimerDue):
            self._tick(t0)
        elif isinstance(message, RunRequest):
            self._request(message, t0)
        else:
            return super().on_receive(message)
        return None

    def _tick(self, t0: float) -> None:
        now_m, now = time.monotonic(), time.time()
        effects: list[Effect] = []
        fed = False  # the machine may have changed even without effects (e.g. held)
        if self.rules.only_when_watched:
            effects += self.machine.viewers(self.counts.count(self.topic), now)
            fed = True
        if self._deadline is not None and self._deadline[0] <= now_m:
            token, self._deadline = self._deadline[1], None
            effects += self.machine.due(token, now)
            fed = True
        while self._timers and self._timers[0][0] <= now_m:
            _, _, token = heapq.heappop(self._timers)
            effects += self.machine.due(token, now)
            fed = True
        if fed:
            self._handled(effects, None, t0)
        if self._timers:
            self.inbox.wake_at(self._timers[0][0])
        if self._deadline is not None:
            self.inbox.wake_at(self._deadline[0])

    def _request(self, req: RunRequest, t0: float) -> None:
        now = time.time()
        try:
            if req.op == "run":
                effects = self.machine.start(req.args["prompt"], now)
                self._handled(effects, req.cid, t0)
                genesis = next(
                    e.invocation for e in effects if isinstance(e, Record) and e.new_run_prompt
                )
                log.info("%s: run %d started [cid=%s]", self.actor_name, genesis.run, req.cid)
                req.reply(genesis.value())
            elif req.op == "stop":
                run = self.machine.run
                effects = self.machine.stop(now)
                self._handled(effects, req.cid, t0)
                req.reply({"stopped": bool(effects), "run": None if run is None else run.id})
            elif req.op == "invocations":
                req.reply(self._invocations(req.args))
            elif req.op == "runs":
                req.reply(self.log.runs(self.rules.network, req.args.get("limit", 20)))
            else:
                req.reply(PipecastError(f"unknown network request {req.op!r}"))
        except PipecastError as exc:  # LockedOut, BadRequest: the caller's, not ours
            log.info("%s: %s refused [cid=%s]: %s", self.actor_name, req.op, req.cid, exc)
            req.reply(exc)

    def _invocations(self, args: dict[str, Any]) -> dict[str, Any]:
        run = args.get("run")
        if run is None:
            current = self.machine.run
            run = current.id if current is not None else None
        if run is None:
            return {"network": self.rules.network, "run": None, "invocations": []}
        if not self.log.has_run(self.rules.network, run):
            raise BadRequest(f"{self.rules.network} has no run {run} (see `runs`)")
        rows = self.log.invocations(self.rules.network, run, args.get("limit", 100))
        return {"network": self.rules.network, "run": run, "invocations": [i.value() for i in rows]}

    # -- effects -------------------------------------------------------------------

    def _handled(self, effects: list[Effect], cid: str | None, t0: float) -> None:
        called = self._apply(effects, cid)
        self._publish_run(cid)
        self._overhead += time.perf_counter() - t0
        if called:
            self._samples.append(self._overhead)
            self._overhead = 0.0

    def _apply(self, effects: list[Effect], cid: str | None) -> bool:
        """Carry out effects: durable first (one transaction), then publish, call, schedule.

        A continuation due at once (a pace of 0) runs in this same turn, so
        its invocation shares the transaction and skips a trip through the
        timer heap.
        """
        now = time.time()
        todo: list[Effect] = []
        pending = list(effects)
        while pending:
            effect = pending.pop(0)
            if isinstance(effect, Schedule) and effect.token.kind == "next" and effect.at <= now:
                pending[:0] = self.machine.due(effect.token, now)
            else:
                todo.append(effect)
        durable = [e for e in todo if isinstance(e, Record | EndRun)]
        if durable:
            self.log.write(durable)
        called = False
        for effect in todo:
            if isinstance(effect, Record):
                inv = effect.invocation
                self.bridge.publish(self.topic, str(inv.id), inv.value(), cid)
            elif isinstance(effect, Call):
                self._call(effect)
                called = True
            elif isinstance(effect, Schedule):
                due = time.monotonic() + (effect.at - now)
                if effect.token.kind == "timeout":
                    self._deadline = (due, effect.token)
                else:
                    heapq.heappush(self._timers, (due, next(self._order), effect.token))
                self.inbox.wake_at(due)
            elif isinstance(effect, Forget):
                for inv_id in effect.ids:
                    self.bridge.publish(self.topic, str(inv_id), None, cid)
            elif isinstance(effect, EndRun):
                log.info("%s: run %d ended: %s", self.actor_name, effect.run, effect.reason)
        return called

    def _call(self, effect: Call) -> None:
        inv = effect.invocation
        assert self._pool is not None
        self._calls += 1
        self._in_flight += 1
        me = self.actor_ref
        future = self._pool.submit(invoke_model, self.models[inv.model], inv.input, self.images)

        def done(f: concurrent.futures.Future[str]) -> None:  # a model worker's thread
            if f.cancelled():
                return
            exc = f.exception()
            if exc is None:
                msg = _Result(inv.id, inv.attempt, f.result(), None)
            elif isinstance(exc, ModelError):
                msg = _Result(inv.id, inv.attempt, None, str(exc))
            else:
                msg = _Result(inv.id, inv.attempt, None, f"{type(exc).__name__}: {exc}")
            # a dead runner's next incarnation reports the interruption itself
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(msg)

        future.add_done_callback(done)

    def _publish_run(self, cid: str | None) -> None:
        self._in_flight = self._calls - self._results
        value = self.machine.value()
        if value == self._run_value:
            return  # the bridge would skip it too; this saves the trip
        self._run_value = value
        self.bridge.publish(self.topic, "run", {"network": self.rules.network, **value}, cid)
