"""`pipecast bench network`: invocations per second and the runner's own overhead.

A node runs a network of one no-op model (`echo`) with no pace and a maximum
run length; a watcher in another process follows `invocation/bench` over tcp
loopback and counts what it sees, so the figure includes publishing to a real
remote watcher and nothing is lost on the way. The rate is the run's
invocations over the time from the genesis to the last completion (from the
store). The overhead per invocation (store, publish, schedule; the model
excluded) is the runner's own `statistics()`, the same numbers as the `stats`
op. The raw baseline, measured in the same run: a plain loop calling the
model and recording each invocation in SQLite (one transaction each).
Targets: >= 1,000 invocations/s, p99 overhead <= 2 ms.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["NetworkBenchResult", "run_network_bench"]

_WATCHER = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path
    from pipecast.transport import ClientSecurity, Subscriber, Update
    done = threading.Event()
    seen = {"completed": 0, "updates": 0}
    def on_event(ev):
        if isinstance(ev, Update):
            seen["updates"] += 1
            if ev.key == "run":
                if (ev.data or {}).get("reason") == "max_invocations":
                    done.set()
            elif ev.data and ev.data.get("state") == "completed":
                seen["completed"] += 1
    owner = ClientSecurity.owner(Path(sys.argv[4]))
    sub = Subscriber(
        sys.argv[1], sys.argv[2], ["invocation/bench"], on_event=on_event, security=owner
    )
    with sub:
        sub.wait_synced(10)
        print("ready", flush=True)
        ok = done.wait(float(sys.argv[3]))
        stats = sub.statistics()
    seen.update(finished=ok, gaps=stats.replica.gaps, recoveries=dict(stats.replica.recoveries))
    print(json.dumps(seen))
    """
)


@dataclass(frozen=True, slots=True)
class NetworkBenchResult:
    invocations: int
    repeats: int
    pipecast_per_second: float
    raw_per_second: float
    ratio: float
    overhead_p50_us: float
    overhead_p99_us: float
    watcher_completed: int
    watcher_gaps: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _raw(n: int, path: Path) -> float:
    """The baseline: call the model, record the invocation; one transaction each."""
    from pipecast.actors import resolve_model  # noqa: PLC0415

    echo = resolve_model("echo").fn
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE inv (id INTEGER PRIMARY KEY, run INTEGER, sequence INTEGER, model TEXT, "
        "input TEXT, output TEXT, state TEXT, started_at REAL, ended_at REAL)"
    )
    value = "seed"
    t0 = time.perf_counter()
    for k in range(n):
        started = time.time()
        value = echo(value)
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO inv VALUES (?,?,?,?,?,?,?,?,?)",
            (k + 1, 1, k, "echo", value, value, "completed", started, time.time()),
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return n / elapsed


def _pipecast(n: int, data: Path) -> tuple[float, dict[str, Any], dict[str, Any]]:
    from pipecast.actors import Node, NodeConfig, Pace, RunRules  # noqa: PLC0415

    rules = RunRules(
        "bench", ("echo",), lockout=0.0, pace=Pace(((None, 0.0),)), max_invocations=n, timeout=10
    )
    loop = "tcp://127.0.0.1:*"
    node = Node(NodeConfig(loop, loop, loop, data_dir=data, stages=(), networks=(rules,))).start()
    try:
        assert node.bridge is not None
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WATCHER,
                node.bridge.status_endpoint,
                node.bridge.sync_endpoint,
                str(60 + n / 200),
                str(data),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdout is not None
        if watcher.stdout.readline().strip() != "ready":
            raise RuntimeError("the bench watcher did not start")
        client = node.client(10)
        genesis = client.call("run", network="bench", prompt="seed")
        seen = json.loads(watcher.communicate(timeout=120 + n / 100)[0])
        if not seen["finished"]:
            raise RuntimeError(f"the run did not finish: {seen}")
        stats = client.call("stats")["network/bench"]
        (last,) = client.call("invocations", network="bench", limit=1)["invocations"]
        rate = n / (last["ended_at"] - genesis["started_at"])
    finally:
        node.stop()
    return rate, stats, seen


def run_network_bench(invocations: int = 5000, repeats: int = 3) -> NetworkBenchResult:
    """Blocks for a few seconds per 5,000 invocations and repeat."""
    logging.getLogger("pipecast").setLevel(logging.WARNING)
    rates, raws, p50s, p99s, completed, gaps = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="pipecast-bench-") as tmp:
        for i in range(repeats):
            raws.append(_raw(invocations, Path(tmp) / f"raw{i}.db"))
            rate, stats, seen = _pipecast(invocations, Path(tmp) / f"node{i}")
            rates.append(rate)
            p50s.append(stats["overhead_us_p50"])
            p99s.append(stats["overhead_us_p99"])
            completed.append(seen["completed"])
            gaps.append(seen["gaps"])
    rate, raw = statistics.median(rates), statistics.median(raws)
    return NetworkBenchResult(
        invocations=invocations,
        repeats=repeats,
        pipecast_per_second=round(rate, 1),
        raw_per_second=round(raw, 1),
        ratio=round(rate / raw, 3),
        overhead_p50_us=statistics.median(p50s),
        overhead_p99_us=statistics.median(p99s),
        watcher_completed=min(completed),
        watcher_gaps=max(gaps),
    )
