"""`pipecast bench watchers`: dispatch to many watchers, churn, and count reads.

Dispatch: N watchers on one topic, hosted by the watch hub; the clock runs
from `publish()` to the last watcher's callback for that update. The naive
baseline, measured in the same run, is one pykka actor per watcher, each told
every update by a dispatcher. Churn: many watcher joins and leaves through a
real node (hub + presence), then nothing may be left anywhere and RSS may not
have grown. Count reads: `PresenceCounts.count()` calls per second.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import timeit
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pykka

from ._figures import percentile_ms

__all__ = ["WatchersBenchResult", "run_watchers_bench"]


@dataclass(frozen=True, slots=True)
class WatchersBenchResult:
    dispatch: dict[int, dict[str, float]]  # watchers -> {hub_p50_ms, hub_p99_ms, naive_...}
    churn_joins: int
    churn_leftover_watchers: int
    churn_leftover_presence: int
    churn_rss_growth_mb: float
    count_reads_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Countdown:
    """Set when `n` watchers have applied the current update."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.left = 0
        self.done = threading.Event()
        self.t_done = 0.0

    def arm(self, n: int) -> None:
        self.left = n
        self.done.clear()

    def hit(self) -> None:
        with self.lock:
            self.left -= 1
            if self.left == 0:
                self.t_done = time.perf_counter()
                self.done.set()


class _NaiveWatcher(pykka.ThreadingActor):
    def __init__(self, countdown: _Countdown) -> None:
        super().__init__()
        self.countdown = countdown
        self.state: Any = None

    def on_receive(self, message: Any) -> None:
        self.state = message
        self.countdown.hit()


def _hub_dispatch(n: int, rounds: int) -> list[float]:
    from pipecast.actors import BridgeConfig, start_bridge  # noqa: PLC0415
    from pipecast.actors.presence import WatchHubHandle  # noqa: PLC0415
    from pipecast.transport import StageView  # noqa: PLC0415

    bridge = start_bridge(BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*"))
    hub = WatchHubHandle.start(bridge)
    cd = _Countdown()
    try:
        cd.arm(n)
        for i in range(n):
            hub.add(f"w{i}", "stage/bench", StageView(), lambda *_: cd.hit())
        cd.done.wait(60)  # every watcher got its initial view
        lat = []
        for r in range(rounds):
            cd.arm(n)
            t0 = time.perf_counter()
            bridge.publish("stage/bench", "state", {"status": "running", "round": r})
            cd.done.wait(60)
            lat.append(cd.t_done - t0)
        return lat
    finally:
        hub.stop()
        bridge.stop()


def _naive_dispatch(n: int, rounds: int) -> list[float]:
    cd = _Countdown()
    refs = [_NaiveWatcher.start(cd) for _ in range(n)]
    try:
        lat = []
        for r in range(rounds):
            cd.arm(n)
            t0 = time.perf_counter()
            update = {"status": "running", "round": r}
            for ref in refs:  # the dispatcher tells each watcher actor
                ref.tell(update)
            cd.done.wait(60)
            lat.append(cd.t_done - t0)
        return lat
    finally:
        for ref in refs:
            ref.stop(block=False)
        for ref in refs:
            ref.actor_stopped.wait(10)


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1e6


def _churn(joins: int) -> tuple[int, int, float]:
    """Two passes of `joins` joins and leaves; RSS is compared across the second.

    The first pass brings the interpreter's memory pools and the bus history
    to their steady size (CPython keeps freed memory for reuse, so a peak is
    not a leak); a leak shows as growth in the second, identical pass.
    """
    from pipecast.testing import start_test_node, wait_for  # noqa: PLC0415
    from pipecast.transport import StageView  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="pipecast-bench-") as tmp:
        node = start_test_node(Path(tmp) / "data")
        try:
            hub = node.watchers
            assert hub is not None

            def one_pass(tag: str) -> None:
                for i in range(joins):
                    hub.add(f"{tag}{i}", "stage/churn", StageView(), lambda *_: None)
                    hub.remove(f"{tag}{i}")
                _ask_stats(hub.ref)  # the hub has handled every add and remove
                _ask_stats(node.registry.get("presence"))  # and so has presence

            one_pass("warm")
            rss0 = _rss_mb()
            one_pass("c")
            hub_left = int(_ask_stats(hub.ref).get("watchers", -1))
            wait_for(lambda: node.presence.count("stage/churn") == 0, 5)
            rss1 = _rss_mb()
            return hub_left, node.presence.count("stage/churn"), rss1 - rss0
        finally:
            node.stop()


def _ask_stats(ref: Any) -> dict[str, Any]:
    from pipecast.actors import StatisticsRequest  # noqa: PLC0415

    done = threading.Event()
    out: dict[str, Any] = {}

    def reply(stats: dict[str, Any]) -> None:
        out.update(stats)
        done.set()

    if ref is not None:
        ref.tell(StatisticsRequest(reply))
        done.wait(120)
    return out


def run_watchers_bench(
    sizes: tuple[int, ...] = (1000, 10_000), rounds: int = 30, churn: int = 100_000
) -> WatchersBenchResult:
    """Blocks for a minute or two; starts up to max(sizes) threads for the baseline."""
    dispatch: dict[int, dict[str, float]] = {}
    for n in sizes:
        hub = _hub_dispatch(n, rounds)
        # thousands of threads make each naive round take seconds: fewer of them
        naive = _naive_dispatch(n, rounds if n <= 2000 else max(3, rounds // 6))
        dispatch[n] = {
            "hub_p50_ms": statistics.median(hub) * 1000.0,
            "hub_p99_ms": percentile_ms(hub, 99),
            "naive_p50_ms": statistics.median(naive) * 1000.0,
            "naive_p99_ms": percentile_ms(naive, 99),
            "speedup_p50": statistics.median(naive) / statistics.median(hub),
        }
    left_hub, left_presence, rss = _churn(churn)
    from pipecast.actors.presence import PresenceCounts  # noqa: PLC0415

    counts = PresenceCounts()
    counts.set_count("invocation/demo", 3)
    reads = 1_000_000
    seconds = timeit.Timer("f('invocation/demo')", globals={"f": counts.count}).timeit(reads)
    return WatchersBenchResult(
        dispatch=dispatch,
        churn_joins=churn,
        churn_leftover_watchers=left_hub,
        churn_leftover_presence=left_presence,
        churn_rss_growth_mb=round(rss, 2),
        count_reads_per_second=reads / seconds,
    )
