"""`pipecast bench bus`: the status bus against raw pyzmq, in one run.

Each measurement runs publisher and subscriber in separate processes over tcp
loopback. The raw baseline is plain pyzmq PUB->SUB sending the same msgpack
update map (about 200 bytes) with no pipecast code at all; the pipecast run
goes through `BridgeHandle.publish` (an actor tell), the bridge's sequencing
and history, and a `Subscriber` with its replica. Both sides use the same
high-water marks, large enough that neither run loses messages, so the ratio
compares work done, not luck.

Each is measured twice: in plain ZMTP, and with CURVE, where the raw baseline
is plain pyzmq with CURVE too (a server keypair, any client key) and the
pipecast run is a bridge with the node's security: its keys, the allow-list
and the ZAP handler, the subscriber holding the owner's key.

Timing uses CLOCK_MONOTONIC, which is shared by all processes on the machine.
A last measurement, in one process, splits the publishing side: CPU per
publication through the bridge actor, and sequenced and sent in the caller's
own thread; the difference is what the actor hop costs.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import msgpack

from ._figures import pace, percentile_ms

__all__ = ["BusBenchResult", "run_bus_bench"]

TOPIC = "bench/stage"
_HWM = 2_000_000


def status_value(i: int, sent: float = 0.0) -> dict[str, Any]:
    """A realistic ~200-byte stage state (status and progress in one value)."""
    return {
        "status": "running",
        "file": "/media/library/show/season01/episode01.mkv",
        "progress": i / 1000.0,
        "fps": 23.976,
        "eta": 1234.5,
        "done": i,
        "failed": 0,
        "queue": 42,
        "velocity": 17.5,
        "sent": sent,
    }


@dataclass(frozen=True, slots=True)
class BusBenchResult:
    count: int
    repeats: int
    raw_throughput: float
    pipecast_throughput: float
    ratio: float
    latency_rate: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    raw_latency_p50_ms: float
    raw_latency_p99_ms: float
    unrecovered_gaps: int
    replay_count: int
    replay_ms: float
    raw_pub_cpu_us: float
    raw_sub_cpu_us: float
    pipecast_pub_cpu_us: float
    pipecast_sub_cpu_us: float
    # one process, no subscriber: CPU per publication through the bridge actor,
    # and sequenced and sent in the caller's own thread (what the actor hop costs)
    hop_bridge_cpu_us: float
    hop_direct_cpu_us: float
    # the same with CURVE on both sides, raw pyzmq with CURVE as the baseline
    curve_raw_throughput: float = 0.0
    curve_pipecast_throughput: float = 0.0
    curve_ratio: float = 0.0
    curve_latency_p50_ms: float = 0.0
    curve_latency_p99_ms: float = 0.0
    curve_raw_latency_p50_ms: float = 0.0
    curve_raw_latency_p99_ms: float = 0.0
    # one message per update (batching off), the same updates in the same run
    unbatched_throughput: float = 0.0
    unbatched_ratio: float = 0.0
    unbatched_pub_cpu_us: float = 0.0
    unbatched_sub_cpu_us: float = 0.0
    curve_unbatched_throughput: float = 0.0
    curve_unbatched_ratio: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- raw baseline ---------------------------------------------------------------


def _raw_pub(endpoint_q: Any, ready: Any, count: int, rate: int, curve: Any) -> None:
    import zmq  # noqa: PLC0415 - import after the process start, never before a fork

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    if curve is not None:  # (server public, server secret, client public, client secret)
        pub.curve_server = True
        pub.curve_publickey, pub.curve_secretkey = curve[0], curve[1]
    pub.sndhwm = _HWM
    pub.linger = 2000
    pub.bind("tcp://127.0.0.1:*")
    endpoint_q.put(pub.get_string(zmq.LAST_ENDPOINT))
    while not ready.wait(0.01):
        pub.send_multipart([b"warmup", b""])
    packb = msgpack.packb
    topic = TOPIC.encode()
    # the fastest plain pyzmq calls (int flags), so the baseline is not slowed
    # by send_multipart's flag arithmetic that pipecast avoids too
    send, sndmore = pub.send, int(zmq.SNDMORE)
    start = time.monotonic()
    endpoint_q.put(start)
    cpu0 = time.process_time()
    for i in range(count):
        if rate:
            pace(start, i, rate)
        now = time.monotonic()
        body = packb(
            {
                "v": 1,
                "epoch": "0123456789abcdef",
                "seq": i + 1,
                "ts": time.time(),
                "key": "encoder",
                "data": status_value(i, now),
                "cid": None,
            }
        )
        send(topic, sndmore)
        send(body, 0)
    endpoint_q.put(time.process_time() - cpu0)
    pub.close()
    ctx.term()


def _raw_sub(endpoint: str, ready: Any, result_q: Any, count: int, curve: Any) -> None:
    import zmq  # noqa: PLC0415

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    if curve is not None:
        sub.curve_serverkey = curve[0]
        sub.curve_publickey, sub.curve_secretkey = curve[2], curve[3]
    sub.rcvhwm = _HWM
    sub.linger = 0
    sub.subscribe(b"")
    sub.connect(endpoint)
    while sub.recv_multipart()[0] == b"warmup":
        if not ready.is_set():
            ready.set()
    unpackb = msgpack.unpackb
    recv = sub.recv
    lat: list[float] = []
    cpu0 = time.process_time()
    n = 1  # the first data message ended the warm-up loop
    while n < count:
        topic, body_b = recv(0), recv(0)
        if topic == b"warmup":
            continue
        body = unpackb(body_b)
        lat.append(time.monotonic() - body["data"]["sent"])
        n += 1
    result_q.put((time.monotonic(), lat, 0, time.process_time() - cpu0))
    sub.close()
    ctx.term()


# -- pipecast -------------------------------------------------------------------------


def _pc_pub(
    endpoint_q: Any, ready: Any, count: int, rate: int, done: Any, keys: Any, batch: bool = True
) -> None:
    """`keys`: a data directory whose keys to serve with (CURVE), or None; `batch`:
    the bridge's status batches (off: one message per update)."""
    from pathlib import Path  # noqa: PLC0415

    import zmq  # noqa: PLC0415

    from pipecast.actors import BridgeConfig, start_bridge  # noqa: PLC0415
    from pipecast.transport import NodeAuthenticator, ServerSecurity  # noqa: PLC0415

    ctx, security, zap = zmq.Context(), None, None
    if keys is not None:
        security = ServerSecurity.for_node(Path(keys))
        zap = NodeAuthenticator(ctx, security.allowed)
        zap.start()
    config = BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", sndhwm=_HWM, batch=batch)
    handle = start_bridge(config, context=ctx, security=security)
    endpoint_q.put((handle.status_endpoint, handle.sync_endpoint))
    while not ready.wait(0.01):
        handle.publish("warmup", "k", {"t": time.monotonic()})
    publish = handle.publish
    start = time.monotonic()
    endpoint_q.put(start)
    cpu0 = time.process_time()
    for i in range(count):
        if rate:
            pace(start, i, rate)
        publish(TOPIC, "encoder", status_value(i, time.monotonic()))
    handle.statistics(timeout=120)  # returns once the bridge has sent everything
    endpoint_q.put(time.process_time() - cpu0)
    done.wait(120)
    handle.stop()
    if zap is not None:
        zap.stop()
    ctx.term()


def _pc_sub(endpoints: tuple[str, str], ready: Any, result_q: Any, count: int, keys: Any) -> None:
    import threading  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from pipecast.transport import ClientSecurity, Subscriber, Update  # noqa: PLC0415

    finished = threading.Event()
    lat: list[float] = []
    t_end = [0.0]
    seen = [0]

    def on_event(ev: object) -> None:
        if type(ev) is Update:
            if ev.topic == TOPIC:
                now = time.monotonic()
                lat.append(now - ev.data["sent"])
                seen[0] = ev.data["done"]
                if seen[0] == count - 1:
                    t_end[0] = now
                    finished.set()
            elif not ready.is_set():
                ready.set()

    owner = None if keys is None else ClientSecurity.owner(Path(keys))
    sub = Subscriber(
        endpoints[0], endpoints[1], ["bench/", "warmup"], on_event=on_event, security=owner
    )
    sub.start()
    sub.wait_synced(10)
    cpu0 = time.process_time()
    finished.wait(120)
    cpu = time.process_time() - cpu0
    # unrecovered = the replica does not hold the final value once it is quiet
    sub.wait_for(lambda s: not s.replica.recovering, 10)
    final = sub.topic(TOPIC).get("encoder", {})
    unrecovered = 0 if final.get("done") == count - 1 else 1
    sub.stop()
    result_q.put((t_end[0], lat, unrecovered, cpu))


@dataclass(frozen=True, slots=True)
class _Pair:
    throughput: float
    latencies: list[float]
    unrecovered: int
    pub_cpu_us: float  # CPU time per update of the publishing process, all threads
    sub_cpu_us: float


def _run_pair(kind: str, count: int, rate: int, curve: bool = False) -> _Pair:
    import tempfile  # noqa: PLC0415

    import zmq  # noqa: PLC0415

    ctx = mp.get_context("spawn")
    q_pub, q_res = ctx.Queue(), ctx.Queue()
    ready, done = ctx.Event(), ctx.Event()
    keys_dir = tempfile.TemporaryDirectory(prefix="pipecast-bench-keys-")
    if kind == "raw":
        raw_keys = (*zmq.curve_keypair(), *zmq.curve_keypair()) if curve else None
        pub = ctx.Process(target=_raw_pub, args=(q_pub, ready, count, rate, raw_keys))
        pub.start()
        endpoint = q_pub.get(timeout=30)
        sub = ctx.Process(target=_raw_sub, args=(endpoint, ready, q_res, count, raw_keys))
    else:  # "pipecast" (batched, the default) or "unbatched"
        keys = keys_dir.name if curve else None
        batch = kind != "unbatched"
        pub = ctx.Process(target=_pc_pub, args=(q_pub, ready, count, rate, done, keys, batch))
        pub.start()
        endpoints = q_pub.get(timeout=30)
        sub = ctx.Process(target=_pc_sub, args=(endpoints, ready, q_res, count, keys))
    sub.start()
    start = q_pub.get(timeout=60)
    pub_cpu = q_pub.get(timeout=300)
    t_end, lat, unrecovered, sub_cpu = q_res.get(timeout=300)
    done.set()
    sub.join(30)
    pub.join(30)
    keys_dir.cleanup()
    return _Pair(
        count / (t_end - start), lat, unrecovered, pub_cpu / count * 1e6, sub_cpu / count * 1e6
    )


def _replay_bench(n: int) -> float:
    """Time for a subscriber resuming n updates behind to be exact again (ms)."""
    import threading  # noqa: PLC0415

    from pipecast.actors import BridgeConfig, start_bridge  # noqa: PLC0415
    from pipecast.transport import Recovered, Subscriber  # noqa: PLC0415

    handle = start_bridge(BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*"))
    try:
        handle.publish(TOPIC, "encoder", status_value(-1))
        with Subscriber(handle.status_endpoint, handle.sync_endpoint, [TOPIC]) as s:
            s.wait_synced(10)
            cp = s.checkpoint()
        for i in range(n):
            handle.publish(TOPIC, "encoder", status_value(i))
        handle.statistics()  # everything above is sequenced once this returns
        recovered = threading.Event()
        t0 = time.monotonic()
        sub = Subscriber(
            handle.status_endpoint,
            handle.sync_endpoint,
            [TOPIC],
            resume=cp,
            on_event=lambda ev: recovered.set() if isinstance(ev, Recovered) else None,
        ).start()
        recovered.wait(30)
        elapsed = time.monotonic() - t0
        assert sub.replica.last_seq(TOPIC) == n + 1
        sub.stop()
        return elapsed * 1000.0
    finally:
        handle.stop()


def _hop_bench(n: int) -> tuple[float, float]:
    """CPU per publication (us): through the bridge, and in the caller's thread.

    Both in this process with nobody subscribed (the PUB socket drops), so the
    difference is the actor hop alone: the mailbox, and the publishing thread
    contending for the GIL, which pyzmq releases around every send.
    """
    import zmq  # noqa: PLC0415

    from pipecast.actors import BridgeConfig, start_bridge  # noqa: PLC0415
    from pipecast.transport import Sequencer  # noqa: PLC0415

    handle = start_bridge(BridgeConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", sndhwm=_HWM))
    try:
        publish = handle.publish
        cpu0 = time.process_time()
        for i in range(n):
            publish(TOPIC, "encoder", status_value(i))
        handle.statistics(timeout=120)  # everything above is sent once this returns
        bridge = (time.process_time() - cpu0) / n * 1e6
    finally:
        handle.stop()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.bind("tcp://127.0.0.1:*")
    seq, send, more = Sequencer("0123456789abcdef"), pub.send, int(zmq.SNDMORE)
    topic = TOPIC.encode()
    cpu0 = time.process_time()
    for i in range(n):
        out = seq.publish(TOPIC, "encoder", status_value(i), None, time.time())
        assert out is not None
        send(topic, more)
        send(out.body, 0)
    direct = (time.process_time() - cpu0) / n * 1e6
    pub.close()
    ctx.term()
    return bridge, direct


def run_bus_bench(
    count: int = 200_000, rate: int = 1000, seconds: float = 5.0, repeats: int = 3
) -> BusBenchResult:
    """Run every measurement; blocks for a minute or two on the 2-core machine."""
    # Alternate the two, twice, and keep each one's median: on a noisy 2-core
    # machine a single back-to-back pair can differ by half from run to run.
    raw_runs: list[_Pair] = []
    pc_runs: list[_Pair] = []
    one_runs: list[_Pair] = []
    for _ in range(repeats):
        raw_runs.append(_run_pair("raw", count, 0))
        pc_runs.append(_run_pair("pipecast", count, 0))
        one_runs.append(_run_pair("unbatched", count, 0))
    raw_tp = statistics.median(r.throughput for r in raw_runs)
    pc_tp = statistics.median(r.throughput for r in pc_runs)
    one_tp = statistics.median(r.throughput for r in one_runs)
    n_lat = int(rate * seconds)
    raw_lat = _run_pair("raw", n_lat, rate).latencies
    pc_lat_run = _run_pair("pipecast", n_lat, rate)
    pc_lat = pc_lat_run.latencies
    replay_ms = statistics.median(_replay_bench(1000) for _ in range(5))
    hops = [_hop_bench(min(count, 100_000)) for _ in range(3)]
    curve_raw, curve_pc, curve_one = [], [], []
    for _ in range(repeats):
        curve_raw.append(_run_pair("raw", count, 0, curve=True))
        curve_pc.append(_run_pair("pipecast", count, 0, curve=True))
        curve_one.append(_run_pair("unbatched", count, 0, curve=True))
    curve_raw_tp = statistics.median(r.throughput for r in curve_raw)
    curve_pc_tp = statistics.median(r.throughput for r in curve_pc)
    curve_one_tp = statistics.median(r.throughput for r in curve_one)
    curve_raw_lat = _run_pair("raw", n_lat, rate, curve=True).latencies
    curve_pc_lat_run = _run_pair("pipecast", n_lat, rate, curve=True)
    return BusBenchResult(
        count=count,
        repeats=repeats,
        raw_throughput=raw_tp,
        pipecast_throughput=pc_tp,
        ratio=pc_tp / raw_tp,
        latency_rate=rate,
        latency_p50_ms=percentile_ms(pc_lat, 50),
        latency_p99_ms=percentile_ms(pc_lat, 99),
        latency_p999_ms=percentile_ms(pc_lat, 99.9),
        raw_latency_p50_ms=percentile_ms(raw_lat, 50),
        raw_latency_p99_ms=percentile_ms(raw_lat, 99),
        unbatched_throughput=one_tp,
        unbatched_ratio=one_tp / raw_tp,
        unbatched_pub_cpu_us=statistics.median(r.pub_cpu_us for r in one_runs),
        unbatched_sub_cpu_us=statistics.median(r.sub_cpu_us for r in one_runs),
        curve_unbatched_throughput=curve_one_tp,
        curve_unbatched_ratio=curve_one_tp / curve_raw_tp,
        unrecovered_gaps=sum(r.unrecovered for r in [*pc_runs, *one_runs, *curve_pc, *curve_one])
        + pc_lat_run.unrecovered
        + curve_pc_lat_run.unrecovered,
        raw_pub_cpu_us=statistics.median(r.pub_cpu_us for r in raw_runs),
        raw_sub_cpu_us=statistics.median(r.sub_cpu_us for r in raw_runs),
        pipecast_pub_cpu_us=statistics.median(r.pub_cpu_us for r in pc_runs),
        pipecast_sub_cpu_us=statistics.median(r.sub_cpu_us for r in pc_runs),
        replay_count=1000,
        replay_ms=replay_ms,
        hop_bridge_cpu_us=statistics.median(h[0] for h in hops),
        hop_direct_cpu_us=statistics.median(h[1] for h in hops),
        curve_raw_throughput=curve_raw_tp,
        curve_pipecast_throughput=curve_pc_tp,
        curve_ratio=curve_pc_tp / curve_raw_tp,
        curve_latency_p50_ms=percentile_ms(curve_pc_lat_run.latencies, 50),
        curve_latency_p99_ms=percentile_ms(curve_pc_lat_run.latencies, 99),
        curve_raw_latency_p50_ms=percentile_ms(curve_raw_lat, 50),
        curve_raw_latency_p99_ms=percentile_ms(curve_raw_lat, 99),
    )
