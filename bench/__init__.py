"""pipecast.bench: benchmarks that print figures and ratios against raw baselines."""

from ._bus import BusBenchResult, run_bus_bench

__all__ = ["BusBenchResult", "run_bus_bench"]
