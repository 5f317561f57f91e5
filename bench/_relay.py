"""`pipecast bench relay`: a crowd of remote subscribers through two relays.

A bridge in this process (the node's bus, CURVE on) publishes `rate` updates
a second over `topics` topics; `pipecast relay` runs twice as its own
process, the second following the first; `subscribers` Subscribers, spread
over `processes` processes (sharing one ZeroMQ context per process), follow
the second relay. Each update carries its publish time, so every delivery
is timed. The baseline, in the same run: one subscriber on the node itself.
At the end every subscriber's state must equal the node's (`unrecovered`
counts those that do not); the relays' CPU and RSS are read from /proc.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._figures import pace, percentile_ms, process_cpu_seconds, process_rss_mb

__all__ = ["RelayBenchResult", "run_relay_bench"]

_UP = re.compile(r"pipecast relay up: status (\S+) sync (\S+)")
_ANY = "tcp://127.0.0.1:*"


@dataclass(frozen=True, slots=True)
class RelayBenchResult:
    subscribers: int
    processes: int
    rate: int
    topics: int
    seconds: float
    sent: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    direct_p50_ms: float
    direct_p99_ms: float
    unrecovered: int  # subscribers whose final state was not the node's
    relay_cpu_percent: tuple[float, ...]  # each relay, of one core, over the publishing
    relay_rss_mb: tuple[float, ...]
    # the subscribers' own cost, over the publishing (the machine has 2 cores in all)
    subscriber_cores: float = 0.0
    subscriber_cpu_us: float = 0.0  # CPU per delivery, all subscriber processes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _crowd(
    endpoints: tuple[str, str],
    keys: str,
    n: int,
    ready: Any,
    go: Any,
    expected_q: Any,
    result_q: Any,
) -> None:
    """One process of subscribers: their latencies, and how many ended wrong."""
    import zmq  # noqa: PLC0415 - after the spawn

    from pipecast.transport import ClientSecurity, Subscriber, Update  # noqa: PLC0415

    ctx = zmq.Context(io_threads=2)
    ctx.set(zmq.MAX_SOCKETS, 8 * n + 64)  # each subscriber: SUB, DEALER, two monitors (pairs)
    owner = ClientSecurity.owner(Path(keys))
    latencies: list[float] = []
    lock = threading.Lock()

    def on_event(ev: object) -> None:
        if type(ev) is Update and ev.topic.startswith("bench/") and ev.data:
            lag = time.time() - ev.data["t"]
            with lock:
                latencies.append(lag)

    subs = [
        Subscriber(
            *endpoints,
            ("bench/",),
            on_event=on_event,
            security=owner,
            context=ctx,
            request_timeout=5.0,
            stale_after=10.0,
        )
        for _ in range(n)
    ]
    for s in subs:
        s.start()
    for s in subs:
        s.wait_synced(60)
    cpu0, t0 = time.process_time(), time.monotonic()
    ready.set()
    go.wait(600)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    expected = expected_q.get(timeout=600)
    wrong = 0
    for s in subs:
        if not s.wait_for(lambda x: x.state() == expected, 30):
            wrong += 1
    for s in subs:
        s.stop()
    ctx.term()
    result_q.put((latencies, wrong, cpu, wall))


def _relay(upstream: str, key: Path, data: Path) -> tuple[subprocess.Popen[str], str, str]:
    cmd = [
        sys.executable,
        "-c",
        "from pipecast.cli import main; main()",
        "relay",
        "--upstream",
        upstream,
        "--key",
        str(key),
        "--status",
        _ANY,
        "--sync",
        _ANY,
        "--control",
        _ANY,
        "--data-dir",
        str(data),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    up = _UP.search(line)
    if up is None:
        proc.kill()
        raise RuntimeError(f"the relay did not come up: {line!r}")
    return proc, up.group(1), up.group(2)


def _allow(folder: Path, name: str, upstream_dir: Path) -> Path:
    from pipecast.transport import (  # noqa: PLC0415
        Keypair,
        Role,
        allow_list,
        ensure_node_keys,
        write_keypair,
    )

    keys = Keypair.new()
    ensure_node_keys(upstream_dir)
    allow_list(upstream_dir).allow(name, keys.public, Role.WATCH)
    return write_keypair(folder, name, keys)


def run_relay_bench(
    subscribers: int = 1000,
    processes: int = 4,
    rate: int = 50,
    topics: int = 20,
    seconds: float = 20.0,
) -> RelayBenchResult:
    """Run it (see module docstring); blocks for `seconds` plus start-up."""
    import zmq  # noqa: PLC0415

    from pipecast.actors import BridgeConfig, start_bridge  # noqa: PLC0415
    from pipecast.transport import (  # noqa: PLC0415
        ClientSecurity,
        NodeAuthenticator,
        ServerSecurity,
        Subscriber,
        Update,
        node_public_key,
    )

    tmp = tempfile.TemporaryDirectory(prefix="pipecast-bench-relay-")
    root = Path(tmp.name)
    node_dir, r1_dir, r2_dir = root / "node", root / "r1", root / "r2"
    for d in (node_dir, r1_dir, r2_dir):
        d.mkdir(mode=0o700)
    ctx = zmq.Context()
    security = ServerSecurity.for_node(node_dir)
    zap = NodeAuthenticator(ctx, security.allowed)
    zap.start()
    bridge = start_bridge(BridgeConfig(_ANY, _ANY), context=ctx, security=security)
    relays: list[subprocess.Popen[str]] = []
    direct: list[float] = []
    try:
        r1, s1, y1 = _relay(
            f"{bridge.status_endpoint},{bridge.sync_endpoint},{node_public_key(node_dir)}",
            _allow(root, "relay1", node_dir),
            r1_dir,
        )
        relays.append(r1)
        r2, s2, y2 = _relay(
            f"{s1},{y1},{node_public_key(r1_dir)}", _allow(root, "relay2", r1_dir), r2_dir
        )
        relays.append(r2)

        def on_direct(ev: object) -> None:
            if type(ev) is Update and ev.topic.startswith("bench/") and ev.data:
                direct.append(time.time() - ev.data["t"])

        baseline = Subscriber(
            bridge.status_endpoint,
            bridge.sync_endpoint,
            ("bench/",),
            on_event=on_direct,
            security=ClientSecurity.owner(node_dir),
        )
        baseline.start()
        baseline.wait_synced(30)
        spawn = mp.get_context("spawn")
        ready = [spawn.Event() for _ in range(processes)]
        go, expected_q, result_q = spawn.Event(), spawn.Queue(), spawn.Queue()
        share = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
        crowd = [
            spawn.Process(
                target=_crowd, args=((s2, y2), str(r2_dir), n, ev, go, expected_q, result_q)
            )
            for n, ev in zip(share, ready, strict=True)
        ]
        for member in crowd:
            member.start()
        deadline = time.monotonic() + 300
        for ev, member in zip(ready, crowd, strict=True):
            while not ev.wait(0.5):  # ready, or its process died, or the deadline
                if member.exitcode is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"a subscriber process did not sync (exit code {member.exitcode})"
                    )
        cpu0 = [process_cpu_seconds(p.pid) for p in relays]
        t0 = time.monotonic()
        n = int(rate * seconds)
        final: dict[str, dict[str, Any]] = {}
        for i in range(n):
            pace(t0, i, rate)
            value = {"t": time.time(), "i": i}
            topic = f"bench/t{i % topics}"
            bridge.publish(topic, "k", value)
            final[topic] = {"k": value}
        wall = time.monotonic() - t0
        spent = [process_cpu_seconds(p.pid) - c for p, c in zip(relays, cpu0, strict=True)]
        cpu = tuple(s / wall * 100 for s in spent)
        rss = tuple(process_rss_mb(p.pid) for p in relays)
        go.set()
        for _ in crowd:
            expected_q.put(final)
        latencies: list[float] = []
        wrong = 0
        crowd_cpu = 0.0
        for _ in crowd:
            lat, bad, cpu_s, _wall = result_q.get(timeout=900)
            latencies += lat
            wrong += bad
            crowd_cpu += cpu_s
        for member in crowd:
            member.join(60)
        baseline.stop()
    finally:
        for p in relays:
            p.terminate()
            p.wait(10)
        bridge.stop()
        zap.stop()
        ctx.term()
        tmp.cleanup()
    return RelayBenchResult(
        subscribers=subscribers,
        processes=processes,
        rate=rate,
        topics=topics,
        seconds=seconds,
        sent=n,
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        max_ms=percentile_ms(latencies, 100),
        direct_p50_ms=percentile_ms(direct, 50),
        direct_p99_ms=percentile_ms(direct, 99),
        unrecovered=wrong,
        relay_cpu_percent=cpu,
        relay_rss_mb=rss,
        subscriber_cores=crowd_cpu / wall,
        subscriber_cpu_us=crowd_cpu / max(1, len(latencies)) * 1e6,
    )
