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
import queue
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
    # the floor, the same run: as many plain pyzmq SUB sockets, through the same relays
    raw_p50_ms: float = 0.0
    raw_p99_ms: float = 0.0
    raw_cores: float = 0.0
    raw_cpu_us: float = 0.0

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
    shared_thread: bool = True,
) -> None:
    """One process of subscribers: their latencies, and how many ended wrong. With
    `shared_thread`, the process's subscribers share one thread (a `SubscriberHub`);
    else each has its own."""
    import zmq  # noqa: PLC0415 - after the spawn

    from pipecast.transport import (  # noqa: PLC0415
        ClientSecurity,
        Subscriber,
        SubscriberHub,
        Update,
    )

    ctx = zmq.Context(io_threads=2)
    ctx.set(zmq.MAX_SOCKETS, 8 * n + 64)  # each subscriber: SUB, DEALER, two monitors (pairs)
    hub = SubscriberHub(ctx).start() if shared_thread else None
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
            hub=hub,
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
    if hub is not None:
        hub.stop()
    ctx.term()
    result_q.put((latencies, wrong, cpu, wall))


def _raw_crowd(
    endpoint: str, keys: str, n: int, ready: Any, go: Any, stop: Any, result_q: Any
) -> None:
    """The floor: `n` plain pyzmq SUB sockets (CURVE, one thread, one poll), each
    message unpacked and timed; no replica, no recovery, nothing else."""
    import msgpack  # noqa: PLC0415
    import zmq  # noqa: PLC0415

    from pipecast.transport import ClientSecurity  # noqa: PLC0415

    ctx = zmq.Context(io_threads=2)
    ctx.set(zmq.MAX_SOCKETS, 2 * n + 64)
    owner = ClientSecurity.owner(Path(keys))
    poller = zmq.Poller()
    socks = []
    for _ in range(n):
        sock = ctx.socket(zmq.SUB)
        sock.linger = 0
        owner.apply(sock)
        sock.subscribe(b"bench/")
        sock.connect(endpoint)
        poller.register(sock, zmq.POLLIN)
        socks.append(sock)
    heard: set[Any] = set()
    ended: set[Any] = set()  # sockets that heard the end marker: the run is over for them
    latencies: list[float] = []
    unpackb, timed = msgpack.unpackb, False
    cpu0 = time.process_time()
    while len(ended) < n and not stop.is_set():
        for sock, _ in poller.poll(100):
            while True:
                try:
                    topic, body = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                heard.add(sock)
                if timed and topic == b"bench/end":
                    ended.add(sock)
                elif timed and topic.startswith(b"bench/t"):
                    now = time.time()
                    got = unpackb(body)
                    for u in got if type(got) is list else (got,):
                        latencies.append(now - u["data"]["t"])
        if not timed and len(heard) == n:
            ready.set()
            if go.is_set():
                timed, cpu0 = True, time.process_time()
    cpu = time.process_time() - cpu0
    for sock in socks:
        sock.close()
    ctx.term()
    result_q.put((latencies, cpu))


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
        raw = _raw_phase(bridge, s2, str(r2_dir), share, n, rate, topics)
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
        raw_p50_ms=percentile_ms(raw[0], 50),
        raw_p99_ms=percentile_ms(raw[0], 99),
        raw_cores=raw[1] / wall,
        raw_cpu_us=raw[1] / max(1, len(raw[0])) * 1e6,
    )


def _raw_phase(
    bridge: Any, endpoint: str, keys: str, share: list[int], n: int, rate: int, topics: int
) -> tuple[list[float], float]:
    """The same crowd as plain pyzmq sockets on the same relays: latencies and CPU."""
    spawn = mp.get_context("spawn")
    ready = [spawn.Event() for _ in share]
    go, stop, result_q = spawn.Event(), spawn.Event(), spawn.Queue()
    crowd = [
        spawn.Process(target=_raw_crowd, args=(endpoint, keys, k, ev, go, stop, result_q))
        for k, ev in zip(share, ready, strict=True)
    ]
    for member in crowd:
        member.start()
    deadline = time.monotonic() + 300
    t0 = time.monotonic()
    i = 0
    # every socket must hear something before the timing starts: a warm-up topic
    while not all(ev.is_set() for ev in ready):
        if time.monotonic() > deadline or any(m.exitcode is not None for m in crowd):
            raise RuntimeError("a raw subscriber process did not connect")
        pace(t0, i, rate)
        bridge.publish("bench/warm", "k", {"t": time.time(), "i": i})
        i += 1
    go.set()
    bridge.publish("bench/warm", "k", {"t": time.time(), "i": -1})  # wakes them to see go
    t0 = time.monotonic()
    for i in range(n):
        pace(t0, i, rate)
        bridge.publish(f"bench/t{i % topics}", "k", {"t": time.time(), "i": -i})
    bridge.publish("bench/end", "k", {"t": time.time()})  # each socket stops on hearing it
    latencies: list[float] = []
    cpu = 0.0
    for _ in crowd:
        try:
            lat, cpu_s = result_q.get(timeout=60)
        except queue.Empty:  # a socket never heard the end: stop them all, report what came
            stop.set()
            lat, cpu_s = result_q.get(timeout=60)
        latencies += lat
        cpu += cpu_s
    for member in crowd:
        member.join(60)
    return latencies, cpu
