"""`pipecast bench ...`: benchmarks that print figures and ratios."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TypeVar

import click

from ._app import main
from ._errors import EXIT_CODES

N = TypeVar("N", int, float)


def _listed(
    text: str, kind: type[N], low: N, high: N, not_numbers: str, out_of_range: str
) -> tuple[N, ...]:
    """A comma-separated option as numbers within [low, high]; BadParameter (exit 2) else."""
    try:
        values = tuple(kind(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(not_numbers) from None
    if not values or not all(low <= v <= high for v in values):
        raise click.BadParameter(out_of_range)
    return values


@main.group(epilog=EXIT_CODES)
def bench() -> None:
    """Benchmarks that print figures and ratios against raw baselines."""


@bench.command("bus", epilog=EXIT_CODES)
@click.option(
    "--count",
    type=click.IntRange(1000, 10_000_000),
    default=200_000,
    show_default=True,
    help="updates per throughput run",
)
@click.option(
    "--rate",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="updates per second for the latency run",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.5, 600),
    default=5.0,
    show_default=True,
    help="length of the latency run",
)
@click.option(
    "--repeats",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="alternating raw/pipecast throughput runs; medians are reported",
)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_bus(count: int, rate: int, seconds: float, repeats: int, as_json: bool) -> None:
    """The status bus against raw pyzmq PUB->SUB, in one run, across processes."""
    from pipecast.bench import run_bus_bench  # noqa: PLC0415 - heavy, only here

    r = run_bus_bench(count=count, rate=rate, seconds=seconds, repeats=repeats)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(f"throughput   (median of {r.repeats} alternating runs of {r.count:,} updates)")
    click.echo(f"             raw pyzmq {r.raw_throughput:>10,.0f} /s")
    click.echo(
        f"             pipecast  {r.pipecast_throughput:>10,.0f} /s   "
        f"ratio {r.ratio:.2f} (batched; target >= 1.00)"
    )
    click.echo(
        f"             unbatched {r.unbatched_throughput:>10,.0f} /s   "
        f"ratio {r.unbatched_ratio:.2f} (one message per update)"
    )
    click.echo(
        f"latency at {r.latency_rate}/s  pipecast p50 {r.latency_p50_ms:.3f} ms  "
        f"p99 {r.latency_p99_ms:.3f} ms  p99.9 {r.latency_p999_ms:.3f} ms"
    )
    click.echo(
        f"             raw pyzmq p50 {r.raw_latency_p50_ms:.3f} ms  "
        f"p99 {r.raw_latency_p99_ms:.3f} ms"
    )
    click.echo(
        f"CPU per update   raw pub {r.raw_pub_cpu_us:.1f} us  sub {r.raw_sub_cpu_us:.1f} us;"
        f"  pipecast pub {r.pipecast_pub_cpu_us:.1f} us  sub {r.pipecast_sub_cpu_us:.1f} us;"
        f"  unbatched pub {r.unbatched_pub_cpu_us:.1f} us  sub {r.unbatched_sub_cpu_us:.1f} us"
    )
    click.echo(
        f"publish CPU in one process: through the bridge {r.hop_bridge_cpu_us:.1f} us, in the "
        f"caller's thread {r.hop_direct_cpu_us:.1f} us (the actor hop: "
        f"{r.hop_bridge_cpu_us - r.hop_direct_cpu_us:.1f} us)"
    )
    click.echo(f"with CURVE   (raw pyzmq with CURVE is the baseline; {r.repeats} runs each)")
    click.echo(f"             raw pyzmq {r.curve_raw_throughput:>10,.0f} /s")
    click.echo(
        f"             pipecast  {r.curve_pipecast_throughput:>10,.0f} /s   "
        f"ratio {r.curve_ratio:.2f};  unbatched {r.curve_unbatched_throughput:,.0f} /s "
        f"ratio {r.curve_unbatched_ratio:.2f};  vs plain: raw "
        f"{r.curve_raw_throughput / r.raw_throughput:.2f}, pipecast "
        f"{r.curve_pipecast_throughput / r.pipecast_throughput:.2f}"
    )
    click.echo(
        f"latency at {r.latency_rate}/s  pipecast p50 {r.curve_latency_p50_ms:.3f} ms  "
        f"p99 {r.curve_latency_p99_ms:.3f} ms;  raw pyzmq p50 "
        f"{r.curve_raw_latency_p50_ms:.3f} ms  p99 {r.curve_raw_latency_p99_ms:.3f} ms"
    )
    click.echo(f"replay of {r.replay_count} missed updates: {r.replay_ms:.1f} ms (median of 5)")
    click.echo(f"unrecovered gaps: {r.unrecovered_gaps}")


@bench.command("supervision", epilog=EXIT_CODES)
@click.option("--crashes", type=click.IntRange(5, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_supervision(crashes: int, as_json: bool) -> None:
    """Time from an actor's crash to its death applied by a remote watcher."""
    from pipecast.bench import run_supervision_bench  # noqa: PLC0415

    r = run_supervision_bench(crashes)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(f"actor death -> published -> applied by a remote subscriber, {r.crashes} crashes")
    click.echo(
        f"  median {r.median_ms:.2f} ms  p95 {r.p95_ms:.2f} ms  max {r.max_ms:.2f} ms"
        f"  (target: all <= 100 ms)  restarts seen {r.restarts_seen}/{r.crashes}"
    )


@bench.command("watchers", epilog=EXIT_CODES)
@click.option(
    "--sizes",
    default="1000,10000",
    show_default=True,
    help="comma-separated watcher counts for the dispatch runs",
)
@click.option("--rounds", type=click.IntRange(3, 10_000), default=30, show_default=True)
@click.option(
    "--churn",
    type=click.IntRange(100, 10_000_000),
    default=100_000,
    show_default=True,
    help="watcher joins and leaves",
)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_watchers(sizes: str, rounds: int, churn: int, as_json: bool) -> None:
    """Dispatch to many watchers vs one actor per watcher; churn; count reads."""
    from pipecast.bench import run_watchers_bench  # noqa: PLC0415

    parsed = _listed(
        sizes, int, 1, 50_000, "sizes must be comma-separated integers",
        "each size must be 1 to 50,000",
    )  # fmt: skip
    r = run_watchers_bench(parsed, rounds, churn)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    for n, d in r.dispatch.items():
        click.echo(
            f"dispatch to {n:>6,} watchers: hub p50 {d['hub_p50_ms']:.2f} ms "
            f"p99 {d['hub_p99_ms']:.2f} ms | one actor each p50 {d['naive_p50_ms']:.2f} ms "
            f"p99 {d['naive_p99_ms']:.2f} ms | {d['speedup_p50']:.1f}x"
        )
    click.echo(
        f"churn: {r.churn_joins:,} joins and leaves -> leftover watchers "
        f"{r.churn_leftover_watchers}, presence {r.churn_leftover_presence}, "
        f"RSS growth {r.churn_rss_growth_mb:.2f} MB (target < 5)"
    )
    click.echo(f"presence count reads: {r.count_reads_per_second:,.0f}/s (target >= 1,000,000)")


@bench.command("network", epilog=EXIT_CODES)
@click.option("--invocations", type=click.IntRange(100, 1_000_000), default=5000, show_default=True)
@click.option("--repeats", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_network(invocations: int, repeats: int, as_json: bool) -> None:
    """Invocations per second of a no-op network, and the runner's overhead per invocation."""
    from pipecast.bench import run_network_bench  # noqa: PLC0415

    r = run_network_bench(invocations, repeats)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(
        f"a run of {r.invocations:,} no-op invocations (median of {r.repeats}), watched remotely"
    )
    click.echo(
        f"  pipecast {r.pipecast_per_second:>10,.0f} /s (target >= 1,000)   "
        f"raw loop {r.raw_per_second:,.0f} /s   ratio {r.ratio:.2f}"
    )
    click.echo(
        f"  runner overhead per invocation: p50 {r.overhead_p50_us / 1000:.3f} ms  "
        f"p99 {r.overhead_p99_us / 1000:.3f} ms (target p99 <= 2 ms)"
    )
    click.echo(
        f"  the remote watcher saw {r.watcher_completed:,} of {r.invocations:,} completions "
        f"(fewest in a repeat), gaps {r.watcher_gaps}"
    )


def _frame_size(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Click callback: a WIDTHxHEIGHT option, checked before any clip is made."""
    import re  # noqa: PLC0415

    if not re.fullmatch(r"\d{2,4}x\d{2,4}", value):
        raise click.BadParameter(f"size must be WIDTHxHEIGHT, e.g. {param.default}")
    return value


@bench.command("pipeline", epilog=EXIT_CODES)
@click.option("--clips", type=click.IntRange(1, 50), default=3, show_default=True)
@click.option("--seconds", type=click.FloatRange(1, 600), default=10.0, show_default=True)
@click.option(
    "--size",
    default="1280x720",
    show_default=True,
    callback=_frame_size,
    help="WIDTHxHEIGHT of the clips",
)
@click.option(
    "--preset",
    type=click.IntRange(0, 13),
    default=None,
    help="libsvtav1 preset  [default: the encoder's default, as the node runs it]",
)
@click.option("--repeats", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_pipeline(
    clips: int, seconds: float, size: str, preset: int | None, repeats: int, as_json: bool
) -> None:
    """Wall time of clips through the pipeline vs the same ffmpeg command run directly."""
    from pipecast.bench import run_pipeline_bench  # noqa: PLC0415

    r = run_pipeline_bench(clips, seconds, size, preset, repeats)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(
        f"{r.clips} clips of {r.seconds_per_clip:g} s at {r.size}, libsvtav1 preset {r.preset}, "
        f"median of {r.repeats}"
    )
    click.echo(f"  ffmpeg directly  {r.raw_seconds:8.2f} s")
    click.echo(
        f"  pipecast         {r.pipeline_seconds:8.2f} s   ratio {r.ratio:.3f} (target <= 1.05)"
    )
    click.echo(
        f"  of which encoding {r.encode_share:.1%}, the full-decode check {r.verify_share:.1%}; "
        f"probe, hand-offs and commit {r.own_seconds:.2f} s (node CPU {r.node_cpu_seconds:.2f} s)"
    )
    click.echo(
        f"  without the full-decode gate {r.no_decode_seconds:8.2f} s   "
        f"ratio {r.no_decode_ratio:.3f}"
    )


@bench.command("crf-strategy", epilog=EXIT_CODES)
@click.option("--files", type=click.IntRange(10, 100_000), default=400, show_default=True)
@click.option(
    "--sigmas",
    default="0.05,0.5,1,2",
    show_default=True,
    help="spreads (VMAF) of the samples around the file's curve, comma-separated",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_crf_strategy(files: int, sigmas: str, seed: int, as_json: bool) -> None:
    """The search strategies alone on simulated files: sample encodes and probes."""
    from pipecast.bench import run_crf_strategy_bench  # noqa: PLC0415

    spreads = _listed(
        sigmas, float, 0, 10, "sigmas are numbers, comma-separated", "each sigma is from 0 to 10"
    )
    rows = run_crf_strategy_bench(files, spreads, seed)
    if as_json:
        click.echo(json.dumps({"rows": [asdict(r) for r in rows]}))
        return
    click.echo(f"{files} simulated files per sigma, 5 samples, target VMAF 95")
    click.echo(
        f"{'sigma':>6} {'strategy':<18} {'encodes':>8} {'p90':>5} {'probes':>7} {'below':>6}"
    )
    for r in rows:
        click.echo(
            f"{r.sigma:6g} {r.strategy:<18} {r.encodes:8.2f} {r.encodes_p90:5g} {r.probes:7.2f} "
            f"{r.below_target:6}"
        )


@bench.command("crf", epilog=EXIT_CODES)
@click.option("--seconds", type=click.FloatRange(2, 7200), default=64.0, show_default=True)
@click.option(
    "--size",
    default="320x240",
    show_default=True,
    callback=_frame_size,
    help="WIDTHxHEIGHT of the clips",
)
@click.option("--preset", type=click.IntRange(0, 13), default=10, show_default=True)
@click.option(
    "--kinds",
    default="testsrc2,grain,mandelbrot",
    show_default=True,
    help="clip contents (lavfi sources), comma-separated",
)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_crf(seconds: float, size: str, preset: int, kinds: str, as_json: bool) -> None:
    """Our CRF search vs ab-av1's strategy: probes, search time, prediction error."""
    from pipecast.bench import run_crf_bench  # noqa: PLC0415

    chosen = tuple(k for k in kinds.split(",") if k)
    if not chosen or not set(chosen) <= {"testsrc2", "grain", "mandelbrot", "noise"}:
        raise click.BadParameter("kinds are testsrc2, grain, mandelbrot, noise")
    r = run_crf_bench(seconds, size, preset, chosen)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(f"clips of {seconds:g} s at {size}, libsvtav1 preset {preset}, target VMAF 95")
    click.echo(f"{'clip':<22} {'strategy':<13} {'outcome':<16} {'crf':>6} {'probes':>6} "
               f"{'encodes':>7} {'pred':>6} {'actual':>6} {'error':>6} {'search s':>8} "
               f"{'encode s':>8} {'search%':>8} {'size err%':>9} {'time err%':>9} "
               f"{'k (from n)':>12}")  # fmt: skip

    def num(v: float | None, fmt: str) -> str:
        width = int(fmt.lstrip("+").split(".")[0])
        return f"{'-':>{width}}" if v is None else format(v, fmt)

    for row in r.rows:
        clip = row.clip
        click.echo(
            f"{clip:<22} {row.strategy:<13} {row.outcome:<16} {num(row.crf, '6.2f')} "
            f"{row.probes:>6} {row.sample_encodes:>7} {num(row.predicted, '6.2f')} "
            f"{num(row.actual, '6.2f')} {num(row.error, '+6.2f')} "
            f"{num(row.search_seconds, '8.2f')} {num(row.encode_seconds, '8.2f')} "
            f"{num(row.search_percent, '8.1f')} {num(row.size_error, '+9.1f')} "
            f"{num(row.time_error, '+9.1f')} "
            + ("           -" if row.model_slope is None
               else f"{row.model_slope:7.4f} ({row.slope_learned_from:>2})")
        )  # fmt: skip
    d = r.as_dict()
    mp, w1 = d["median_probes"], d["within_1_vmaf"]
    click.echo(
        f"median probes: ours {mp['ours']:g} (target <= 4), with history {mp['ours+history']:g} "
        f"(target <= 3), ab-av1 {mp['ab-av1']:g}"
    )
    click.echo(
        f"|predicted - actual| <= 1 VMAF: ours {w1['ours']:.0%}, with history "
        f"{w1['ours+history']:.0%}, ab-av1 {w1['ab-av1']:.0%} (target >= 90 %)"
    )
    for name, p in d["predictions_within"].items():
        if p["within"] is not None:
            click.echo(
                f"predicted {name} within {p['limit']:g} % of the actual: ours "
                f"{p['within']:.0%} (worst {p['worst']:+.1f} %)"
            )


@bench.command("soak", epilog=EXIT_CODES)
@click.option(
    "--minutes",
    type=click.FloatRange(0.1, 24 * 60),
    default=1.0,
    show_default=True,
    help="how long the node is loaded",
)
@click.option(
    "--clients",
    type=click.IntRange(1, 1000),
    default=200,
    show_default=True,
    help="concurrent control clients pinging",
)
@click.option(
    "--ping-interval",
    type=click.FloatRange(0.001, 60),
    default=0.1,
    show_default=True,
    help="seconds between one client's pings",
)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_soak(minutes: float, clients: int, ping_interval: float, as_json: bool) -> None:
    """A node under publishing, watcher churn, toggles, hostile requests and many clients."""
    from pipecast.bench import run_soak_bench  # noqa: PLC0415

    r = run_soak_bench(minutes, clients, ping_interval)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(
        f"soak of {r.seconds:g} s with {r.clients} control clients, each pinging every "
        f"{r.ping_interval:g} s"
    )
    click.echo(
        f"node RSS after the warm-up {r.rss_start_mb:.1f} MB -> {r.rss_end_mb:.1f} MB: "
        f"drift {r.rss_drift_percent:+.2f} % (target <= 5 %)"
    )
    click.echo(
        f"ping under load  pipecast p50 {r.ping_p50_ms:.2f} ms  p99 {r.ping_p99_ms:.2f} ms  "
        f"max {r.ping_max_ms:.2f} ms  ({r.pings:,} pings; target p99 <= 10 ms)"
    )
    click.echo(
        f"                 raw pyzmq echo p50 {r.raw_ping_p50_ms:.2f} ms  "
        f"p99 {r.raw_ping_p99_ms:.2f} ms   p99 ratio {r.p99_ratio:.2f}"
    )
    click.echo(
        f"load  {r.publications:,} publications, {r.watcher_joins:,} watcher joins/leaves, "
        f"{r.subscribers_churned} subscribers came and went, {r.toggles} toggles, "
        f"{r.hostile_requests:,} hostile requests"
    )
    click.echo(f"errors by type {json.dumps(r.errors_by_type, sort_keys=True)}")
    click.echo(f"witness recoveries {r.recoveries}, unrecovered gaps {r.unrecovered_gaps}")


@bench.command("web", epilog=EXIT_CODES)
@click.option("--clients", type=click.IntRange(1, 5000), default=200, show_default=True)
@click.option("--rate", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--seconds", type=click.FloatRange(1, 600), default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_web(clients: int, rate: int, seconds: float, as_json: bool) -> None:
    """SSE clients of one gateway process vs the bus alone: latency, RSS, CPU, losses."""
    from pipecast.bench import run_web_bench  # noqa: PLC0415

    r = run_web_bench(clients, rate, seconds)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(
        f"{r.clients} SSE clients, {r.rate} updates/s for {r.seconds:g} s ({r.sent} updates)"
    )
    click.echo(
        f"  gateway   p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms  max {r.max_ms:.1f} ms"
        f"  (target p99 <= 50 ms)"
    )
    click.echo(f"  bus alone p50 {r.bus_p50_ms:.1f} ms  p99 {r.bus_p99_ms:.1f} ms")
    click.echo(
        f"  ratio p99 gateway / bus {r.p99_ms / max(r.bus_p99_ms, 1e-9):.1f};"
        f"  gateway RSS {r.gateway_rss_mb:.0f} MB, CPU {r.gateway_cpu_percent:.0f} % of a core"
    )
    click.echo(f"  lost {r.lost}  clients cut {r.clients_cut}")


@bench.command("relay", epilog=EXIT_CODES)
@click.option("--subscribers", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--processes", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--rate", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--topics", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--seconds", type=click.FloatRange(1, 600), default=20.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_relay(
    subscribers: int, processes: int, rate: int, topics: int, seconds: float, as_json: bool
) -> None:
    """Subscribers through two relays vs one on the node: latency, exactness, relay cost."""
    from pipecast.bench import run_relay_bench  # noqa: PLC0415

    r = run_relay_bench(subscribers, processes, rate, topics, seconds)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(
        f"{r.subscribers} subscribers in {r.processes} processes through 2 relays; "
        f"{r.rate} updates/s over {r.topics} topics for {r.seconds:g} s ({r.sent} updates)"
    )
    click.echo(
        f"  through relays p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms  max {r.max_ms:.1f} ms"
        "  (target p99 <= 50 ms)"
    )
    click.echo(f"  on the node    p50 {r.direct_p50_ms:.1f} ms  p99 {r.direct_p99_ms:.1f} ms")
    cpu = ", ".join(f"{c:.0f} %" for c in r.relay_cpu_percent)
    rss = ", ".join(f"{m:.0f} MB" for m in r.relay_rss_mb)
    click.echo(f"  relays CPU {cpu} of a core; RSS {rss}")
    click.echo(
        f"  subscriber processes: {r.subscriber_cores:.2f} cores busy, "
        f"{r.subscriber_cpu_us:.0f} us CPU per delivery"
    )
    click.echo(
        f"  the floor, plain pyzmq SUB sockets through the same relays: p50 {r.raw_p50_ms:.1f} ms"
        f"  p99 {r.raw_p99_ms:.1f} ms, {r.raw_cores:.2f} cores, {r.raw_cpu_us:.0f} us per delivery"
    )
    click.echo(f"  subscribers not exact at the end: {r.unrecovered}")


@bench.command("cluster", epilog=EXIT_CODES)
@click.option("--clips", type=click.IntRange(1, 50), default=8, show_default=True)
@click.option("--seconds", type=click.FloatRange(1, 60), default=3.0, show_default=True)
@click.option(
    "--size", default="640x360", show_default=True, callback=_frame_size, help="WIDTHxHEIGHT"
)
@click.option("--preset", type=click.IntRange(0, 13), default=10, show_default=True)
@click.option(
    "--lease",
    type=click.FloatRange(1, 60),
    default=3.0,
    show_default=True,
    help="the lease of the take-over measurement",
)
@click.option("--json", "as_json", is_flag=True, help="emit one JSON object")
def bench_cluster(
    clips: int, seconds: float, size: str, preset: int, lease: float, as_json: bool
) -> None:
    """A library encoded by 1, 2 and 3 nodes on one PostgreSQL: jobs per minute, CPU per
    node, claim latency, and the time from a lapsed lease to another node's take-over."""
    from pipecast.bench import run_cluster_bench  # noqa: PLC0415

    r = run_cluster_bench(clips, seconds, size, preset, lease=lease)
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    click.echo(
        f"{r.clips} clips of {r.seconds_per_clip:g} s at {r.size}, libsvtav1 preset {r.preset}; "
        "the nodes share this machine's cores"
    )
    click.echo(f"  ffmpeg directly, one after another  {r.raw_seconds:8.2f} s")
    for run in r.runs:
        click.echo(
            f"  {run.nodes} node(s)  {run.seconds:8.2f} s  {run.jobs_per_minute:7.2f} jobs/min  "
            f"ratio {run.ratio:.3f}  jobs by node {list(run.jobs_by_node)}  "
            f"CPU s by node {list(run.node_cpu_seconds)}  "
            f"claim p99 {run.claim_p99_ms:.2f} ms ({run.claims} claims)"
        )
    took = ", ".join(f"{s:.2f}" for s in r.reclaim_seconds)
    click.echo(f"  lease {r.lease:g} s: its end to another node's take-over: {took} s")
