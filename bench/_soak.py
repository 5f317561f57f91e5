"""`pipecast bench soak`: a node under every kind of load at once, for minutes.

A node runs as `pipecast start` in its own process (so its memory is its own)
while this process drives, together: publications to `ext/` topics, watcher
churn (presence joins and leaves, subscribers that come and go), control
toggles (pause and resume), hostile requests (malformed, too deep, too large,
wrong types), and `clients` concurrent control clients pinging. A witness
subscribes to everything. Printed: the node's RSS drift after the warm-up,
the ping latency under load against a raw pyzmq ROUTER echo driven by the
same clients in the same run, errors by type, the witness's recoveries, and
whether it ended holding exactly the node's state (unrecovered gaps: 0 or 1).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipecast.transport import ClientSecurity, Keypair

from ._figures import process_rss_mb

__all__ = ["SoakBenchResult", "run_soak_bench"]


@dataclass(frozen=True, slots=True)
class SoakBenchResult:
    seconds: float
    clients: int
    ping_interval: float  # each client's
    rss_start_mb: float  # after the warm-up
    rss_end_mb: float
    rss_drift_percent: float  # target <= 5
    pings: int
    ping_p50_ms: float
    ping_p99_ms: float  # target <= 10
    ping_max_ms: float
    raw_ping_p50_ms: float
    raw_ping_p99_ms: float
    p99_ratio: float  # pipecast / raw
    publications: int
    hostile_requests: int
    errors_by_type: dict[str, int]
    watcher_joins: int
    subscribers_churned: int
    toggles: int
    recoveries: int
    unrecovered_gaps: int  # target 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# the baseline speaks CURVE too (any client key; no allow-list), as the node does
_ECHO = """
import sys, msgpack, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
public, secret = zmq.curve_keypair()
s.curve_server = True
s.curve_publickey, s.curve_secretkey = public, secret
s.bind("tcp://127.0.0.1:*")
print(s.get_string(zmq.LAST_ENDPOINT), public.decode(), flush=True)
while True:
    *routing, body = s.recv_multipart()
    req = msgpack.unpackb(body)
    s.send_multipart([*routing, msgpack.packb({"v": 2, "ok": True, "cid": req.get("cid"),
                                               "result": {"pong": True}})])
"""


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


def _ping_load(
    endpoint: str,
    security: ClientSecurity,
    clients: int,
    stop: threading.Event,
    interval: float,
) -> list[float]:
    """`clients` concurrent clients, a DEALER each, each pinging every `interval` s
    (the next once its reply is in), driven by one thread over a poller so that the
    figures are the server's and not 200 Python threads' fight for the GIL; until
    `stop`, the latencies (s). Clients start spread over one interval."""
    import msgpack  # noqa: PLC0415 - only when a bench runs
    import zmq  # noqa: PLC0415

    ping = msgpack.packb({"v": 2, "op": "ping", "cid": "soak"})
    ctx = zmq.Context()
    poller = zmq.Poller()
    sent: dict[zmq.Socket[bytes], float] = {}  # in flight: when it was sent
    due: dict[zmq.Socket[bytes], float] = {}  # waiting: when the next one goes
    latencies: list[float] = []
    start = time.perf_counter()
    try:
        for i in range(clients):
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            security.apply(sock)
            sock.connect(endpoint)
            poller.register(sock, zmq.POLLIN)
            due[sock] = start + interval * i / clients
        while not stop.is_set():
            now = time.perf_counter()
            for sock in [s for s, at in due.items() if at <= now]:
                del due[sock]
                sock.send_multipart([b"", ping])
                sent[sock] = time.perf_counter()
            wait = min(due.values(), default=now + 0.1) - time.perf_counter()
            for sock, _ in poller.poll(max(0, int(wait * 1000))):
                sock.recv_multipart()
                done = time.perf_counter()
                latencies.append(done - sent.pop(sock))
                due[sock] = done + interval
    finally:
        for sock in [*sent, *due]:
            sock.close()
        ctx.term()
    return latencies


def _raw_baseline(clients: int, seconds: float, interval: float) -> list[float]:
    echo = subprocess.Popen([sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None
        endpoint, public = echo.stdout.readline().split()
        stop = threading.Event()
        timer = threading.Timer(seconds, stop.set)
        timer.start()
        return _ping_load(endpoint, ClientSecurity(Keypair.new(), public), clients, stop, interval)
    finally:
        echo.kill()
        echo.wait(10)


def _every(stop: threading.Event, period: float, work: Callable[[], None]) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(period):
            work()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def _hostile_bodies() -> list[bytes]:
    import msgpack  # noqa: PLC0415

    deep: Any = 1
    for _ in range(40):
        deep = {"x": deep}
    return [
        b"\xc1",
        msgpack.packb([1, 2]),
        msgpack.packb({"v": 1, "op": "ping"}),
        msgpack.packb({"v": 2.0, "op": "ping"}),
        msgpack.packb({"v": 2, "op": "presence.join", "watcher": "h", "topic": "t", "meta": deep}),
        msgpack.packb({"v": 2, "op": "publish", "topic": "ext/h", "key": "k", "data": deep}),
        msgpack.packb({"v": 2, "op": "cancel", "id": 2**63}),
        msgpack.packb({"v": 2, "op": "jobs", "state": ["x"]}),
        msgpack.packb({"v": 2, "op": "ping", "pad": "x" * (1024 * 1024 + 10)}),
        msgpack.packb({"v": 2, "op": "nope"}),
    ]


def run_soak_bench(
    minutes: float = 1.0, clients: int = 200, interval: float = 0.1
) -> SoakBenchResult:
    """Run the soak (see module docstring). Blocks for about `minutes` plus a baseline;
    each of the `clients` pings every `interval` seconds."""
    import msgpack  # noqa: PLC0415

    from pipecast.testing import NodeProcess, RawClient  # noqa: PLC0415
    from pipecast.transport import Recovered, Subscriber  # noqa: PLC0415

    seconds = minutes * 60
    raw = _raw_baseline(clients, min(20.0, max(5.0, seconds / 6)), interval)
    with tempfile.TemporaryDirectory(prefix="pipecast-soak-") as tmp:
        node = NodeProcess(Path(tmp) / "data", heartbeat=1.0)
        recoveries: list[Recovered] = []
        counts = {"publications": 0, "hostile": 0, "joins": 0, "subscribers": 0, "toggles": 0}
        rss: list[tuple[float, float]] = []
        stop = threading.Event()
        witness = Subscriber(
            node.status,
            node.sync,
            [""],
            on_event=lambda ev: recoveries.append(ev) if isinstance(ev, Recovered) else None,
            security=node.owner,
        )
        try:
            witness.start()
            witness.wait_synced(10)
            control = RawClient(node.control, node.owner)
            lock = threading.Lock()  # one DEALER, several load threads

            def send(body: bytes) -> None:
                with lock:
                    control.request(body, 10.0)

            def request(op: str, **args: Any) -> None:
                send(msgpack.packb({"v": 2, "op": op, **args}))

            def publish() -> None:
                i = counts["publications"]
                data = {"i": i, "pad": "x" * 200}
                request("publish", topic=f"ext/soak/{i % 50}", key=f"k{i % 7}", data=data)
                counts["publications"] += 1

            def hostile() -> None:
                bodies = _hostile_bodies()
                send(bodies[counts["hostile"] % len(bodies)])
                counts["hostile"] += 1

            def churn() -> None:
                i = counts["joins"]
                request("presence.join", watcher=f"w{i % 100}", topic=f"stage/{i % 3}", ttl=2.0)
                request("presence.leave", watcher=f"w{(i + 50) % 100}")
                counts["joins"] += 1

            def subscriber() -> None:
                with Subscriber(node.status, node.sync, ["ext/soak/1"], security=node.owner) as sub:
                    sub.wait_synced(10)
                counts["subscribers"] += 1

            def toggle() -> None:
                request("toggle", stage="analyze")
                counts["toggles"] += 1

            def sample() -> None:
                rss.append((time.monotonic(), process_rss_mb(node.proc.pid)))

            loops = [
                _every(stop, 0.005, publish),
                _every(stop, 0.05, hostile),
                _every(stop, 0.02, churn),
                _every(stop, 1.0, subscriber),
                _every(stop, 1.0, toggle),
                _every(stop, 1.0, sample),
            ]
            timer = threading.Timer(seconds, stop.set)
            started = time.monotonic()
            timer.start()
            latencies = _ping_load(node.control, node.owner, clients, stop, interval)
            for loop in loops:
                loop.join(15)
            control.close()
            client = node.client(10.0)
            errors = client.call("stats")["control"]["errors_by_type"]
            # the load has stopped: the witness must end holding exactly the node's state
            converged = witness.wait_for(
                lambda s: (
                    {t: kv for t, kv in s.state().items() if kv} == client.call("status")["topics"]
                ),
                10,
            )
        finally:
            stop.set()
            witness.stop()
            node.close()
    warm = started + seconds / 4
    after = [mb for at, mb in rss if at >= warm] or [mb for _, mb in rss] or [0.0]
    p99 = _percentile(latencies, 0.99) * 1000
    raw_p99 = _percentile(raw, 0.99) * 1000
    return SoakBenchResult(
        seconds=round(seconds, 1),
        clients=clients,
        ping_interval=interval,
        rss_start_mb=round(after[0], 1),
        rss_end_mb=round(after[-1], 1),
        rss_drift_percent=round((after[-1] - after[0]) / after[0] * 100, 2) if after[0] else 0.0,
        pings=len(latencies),
        ping_p50_ms=round(statistics.median(latencies) * 1000, 3) if latencies else 0.0,
        ping_p99_ms=round(p99, 3),
        ping_max_ms=round(max(latencies, default=0.0) * 1000, 3),
        raw_ping_p50_ms=round(statistics.median(raw) * 1000, 3) if raw else 0.0,
        raw_ping_p99_ms=round(raw_p99, 3),
        p99_ratio=round(p99 / raw_p99, 2) if raw_p99 else 0.0,
        publications=counts["publications"],
        hostile_requests=counts["hostile"],
        errors_by_type=dict(errors),
        watcher_joins=counts["joins"],
        subscribers_churned=counts["subscribers"],
        toggles=counts["toggles"],
        recoveries=len(recoveries),
        unrecovered_gaps=0 if converged else 1,
    )
