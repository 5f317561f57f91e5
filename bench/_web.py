"""`pipecast bench web`: many browsers' SSE streams from one gateway, against the bus itself.

A node in this process publishes `ext/bench` at a steady rate; a gateway
runs as its own process (`pipecast web`, so its RSS and CPU are its own);
`clients` SSE connections (asyncio streams, as light as a browser's) read it
and time each update from its publish (the value carries the wall time) to
its arrival. The baseline, in the same run: a plain `Subscriber` of the same
node timing the same updates, i.e. the bus without the gateway. Every client
must get every update (`lost` counts those that did not) and none may be cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipecast.actors import Node, NodeConfig
from pipecast.transport import ClientSecurity, Subscriber, Update

from ._figures import pace, percentile_ms, process_cpu_seconds, process_rss_mb

__all__ = ["WebBenchResult", "run_web_bench"]

_UP = re.compile(r"pipecast web up: http://127\.0\.0\.1:(\d+)/\?token=(\S+)")
_ANY = "tcp://127.0.0.1:*"


@dataclass(frozen=True, slots=True)
class WebBenchResult:
    clients: int
    rate: int
    seconds: float
    sent: int
    lost: int  # updates some client never got
    clients_cut: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    bus_p50_ms: float
    bus_p99_ms: float
    gateway_rss_mb: float
    gateway_cpu_percent: float  # of one core, over the publishing window

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _start_gateway(node: Node, data_dir: Path) -> tuple[subprocess.Popen[str], int, str]:
    assert node.bridge is not None
    cmd = [
        sys.executable,
        "-c",
        "from pipecast.cli import main; main()",
        "web",
        *("--status", node.bridge.status_endpoint, "--sync", node.bridge.sync_endpoint),
        *("--control", node.control_endpoint, "--data-dir", str(data_dir)),
        *("--http", "127.0.0.1:0"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    up = _UP.search(line)
    if up is None:
        proc.kill()
        raise RuntimeError(f"the gateway did not come up: {line!r}")
    return proc, int(up.group(1)), up.group(2)


def _sign_in(port: int, token: str) -> str:
    import http.client  # noqa: PLC0415

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/?token={token}")
    cookie = conn.getresponse().getheader("set-cookie", "")
    conn.close()
    return cookie.split(";")[0]


class _Client:
    """One SSE stream: the latencies of `ext/bench` updates and the last i seen."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last = -1
        self.count = 0
        self.cut = False
        self.synced = asyncio.Event()
        self.done = asyncio.Event()  # set once `last` reaches `wanted`
        self.wanted: int | None = None

    def expect(self, last: int) -> None:
        self.wanted = last
        if self.last >= last:
            self.done.set()

    async def run(self, port: int, cookie: str, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                "GET /api/stream?page=/bench HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        event = ""
        try:
            while not stop.is_set():
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "snapshot":
                    self.synced.set()
                elif line.startswith("data:") and event == "batch":
                    now = time.time()
                    for rec in json.loads(line[5:]):
                        data = rec.get("data")
                        if rec.get("topic") == "ext/bench" and isinstance(data, dict):
                            self.latencies.append(now - data["t"])
                            self.last = max(self.last, data["i"])
                            self.count += 1
                            if self.wanted is not None and self.last >= self.wanted:
                                self.done.set()
                elif event == "cut":
                    self.cut = True
        finally:
            writer.close()


def _publish(node: Node, rate: int, seconds: float) -> int:
    assert node.bridge is not None
    n = int(rate * seconds)
    start = time.monotonic()
    for i in range(n):
        pace(start, i, rate)
        node.bridge.publish("ext/bench", "k", {"t": time.time(), "i": i})
    return n


async def _run(
    port: int, cookie: str, clients: int, node: Node, rate: int, seconds: float, gateway: int
) -> tuple[list[_Client], int, float]:
    stop = asyncio.Event()
    crowd = [_Client() for _ in range(clients)]
    tasks = [asyncio.create_task(c.run(port, cookie, stop)) for c in crowd]
    await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in crowd)), 60)
    cpu0, t0 = process_cpu_seconds(gateway), time.monotonic()
    sent = await asyncio.to_thread(_publish, node, rate, seconds)
    cpu = (process_cpu_seconds(gateway) - cpu0) / (time.monotonic() - t0) * 100
    for c in crowd:
        c.expect(sent - 1)
    with contextlib.suppress(TimeoutError):  # a client that never gets there counts as lost
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in crowd)), 10)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return crowd, sent, cpu


def run_web_bench(clients: int = 200, rate: int = 100, seconds: float = 10.0) -> WebBenchResult:
    """Run it (see module docstring); blocks for about `seconds` plus start-up."""
    with tempfile.TemporaryDirectory(prefix="pipecast-bench-web-") as tmp:
        data = Path(tmp) / "data"
        node = Node(NodeConfig(_ANY, _ANY, _ANY, data_dir=data, stages=(), networks=())).start()
        gateway = None
        bus: list[float] = []
        lock = threading.Lock()

        def on_bus(ev: object) -> None:
            if isinstance(ev, Update) and ev.topic == "ext/bench" and isinstance(ev.data, dict):
                with lock:
                    bus.append(time.time() - ev.data["t"])

        assert node.bridge is not None
        sub = Subscriber(
            node.bridge.status_endpoint,
            node.bridge.sync_endpoint,
            ["ext/"],
            on_event=on_bus,
            security=ClientSecurity.owner(data),
        )
        try:
            sub.start()
            sub.wait_synced(10)
            gateway, port, token = _start_gateway(node, data)
            cookie = _sign_in(port, token)
            crowd, sent, cpu = asyncio.run(
                _run(port, cookie, clients, node, rate, seconds, gateway.pid)
            )
            rss = process_rss_mb(gateway.pid)
        finally:
            sub.stop()
            if gateway is not None:
                gateway.terminate()
                gateway.wait(10)
            node.stop()
    latencies = [x for c in crowd for x in c.latencies]
    return WebBenchResult(
        clients=clients,
        rate=rate,
        seconds=seconds,
        sent=sent,
        lost=sum(max(0, sent - c.count) for c in crowd),
        clients_cut=sum(c.cut for c in crowd),
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        max_ms=percentile_ms(latencies, 100),
        bus_p50_ms=percentile_ms(bus, 50),
        bus_p99_ms=percentile_ms(bus, 99),
        gateway_rss_mb=rss,
        gateway_cpu_percent=cpu,
    )
