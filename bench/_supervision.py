"""`pipecast bench supervision`: how fast an actor's death reaches a watcher.

A stage is crashed (a handler raises) `crashes` times; each time the clock
runs from the crash being told to the `restarting` state of `actor/<name>`
being applied by a remote `Subscriber` over tcp loopback. The target: every
death published within 100 ms.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["SupervisionBenchResult", "run_supervision_bench"]


class _Boom:
    """Told to the crash stage: its handler raises."""


@dataclass(frozen=True, slots=True)
class SupervisionBenchResult:
    crashes: int
    median_ms: float
    p95_ms: float
    max_ms: float
    restarts_seen: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_supervision_bench(crashes: int = 50) -> SupervisionBenchResult:
    """Blocks for about a second per 50 crashes."""
    from pipecast.actors import (  # noqa: PLC0415
        BridgeConfig,
        ChildSpec,
        Registry,
        RestartPolicy,
        Stage,
        Store,
        Supervisor,
        start_bridge,
    )
    from pipecast.actors.runtime import begin_shutdown, start_child  # noqa: PLC0415
    from pipecast.transport import Subscriber, Update  # noqa: PLC0415

    class CrashStage(Stage):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, _Boom):
                raise RuntimeError("crash on purpose")
            return super().on_receive(message)

    seen = threading.Event()
    t_seen = [0.0]

    def on_event(ev: object) -> None:
        if type(ev) is Update and ev.topic == "actor/crash" and ev.data["status"] == "restarting":
            t_seen[0] = time.monotonic()
            seen.set()

    quiet = logging.getLogger("pipecast")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # each crash logs a traceback on purpose
    with tempfile.TemporaryDirectory(prefix="pipecast-bench-") as tmp:
        bridge = start_bridge(BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*"))
        store = Store(Path(tmp) / "s.db")
        registry = Registry()
        sup = Supervisor.start(bridge, registry)
        sub = Subscriber(
            bridge.status_endpoint, bridge.sync_endpoint, ["actor/"], on_event=on_event
        ).start()
        lat: list[float] = []
        try:
            sub.wait_synced(10)
            start_child(
                sup,
                ChildSpec(
                    "crash", CrashStage, {"store": store}, RestartPolicy(crashes + 1, 3600.0)
                ),
            )
            registry.wait_for(["crash"], 10)
            for _ in range(crashes):
                ref = registry.get("crash")
                assert ref is not None
                seen.clear()
                t0 = time.monotonic()
                ref.tell(_Boom())
                if seen.wait(5):
                    lat.append((t_seen[0] - t0) * 1000.0)
                deadline = time.monotonic() + 5
                while registry.get("crash") is ref and time.monotonic() < deadline:
                    time.sleep(0.001)  # the restart is an instant away; nothing to wait on
        finally:
            begin_shutdown(sup)
            current = registry.get("crash")
            if current is not None:
                current.stop()
            sup.stop()
            sub.stop()
            bridge.stop()
            store.close()
            quiet.setLevel(level)
    lat.sort()
    return SupervisionBenchResult(
        crashes=crashes,
        median_ms=statistics.median(lat),
        p95_ms=lat[int(0.95 * (len(lat) - 1))],
        max_ms=lat[-1],
        restarts_seen=len(lat),
    )
