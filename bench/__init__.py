"""pipecast.bench: benchmarks that print figures and ratios against raw baselines."""

from ._ab_av1 import AbAv1Search
from ._bus import BusBenchResult, run_bus_bench
from ._cluster import ClusterBenchResult, ClusterRun, run_cluster_bench
from ._crf import CrfBenchResult, run_crf_bench
from ._crf_strategy import StrategyRow, run_crf_strategy_bench
from ._network import NetworkBenchResult, run_network_bench
from ._pipeline import PipelineBenchResult, run_pipeline_bench
from ._relay import RelayBenchResult, run_relay_bench
from ._soak import SoakBenchResult, run_soak_bench
from ._supervision import SupervisionBenchResult, run_supervision_bench
from ._watchers import WatchersBenchResult, run_watchers_bench
from ._web import WebBenchResult, run_web_bench

__all__ = [
    "AbAv1Search",
    "BusBenchResult",
    "ClusterBenchResult",
    "ClusterRun",
    "CrfBenchResult",
    "NetworkBenchResult",
    "PipelineBenchResult",
    "RelayBenchResult",
    "SoakBenchResult",
    "StrategyRow",
    "SupervisionBenchResult",
    "WatchersBenchResult",
    "WebBenchResult",
    "run_bus_bench",
    "run_cluster_bench",
    "run_crf_bench",
    "run_crf_strategy_bench",
    "run_network_bench",
    "run_pipeline_bench",
    "run_relay_bench",
    "run_soak_bench",
    "run_supervision_bench",
    "run_watchers_bench",
    "run_web_bench",
]
