"""Node configuration from a TOML file, `PIPECAST_*` variables and options.

Precedence: command-line option, then environment variable (click reads both),
then the config file, then the built-in defaults (loopback endpoints 7701-7703,
data in ~/.local/share/pipecast, the media stages analyze, crf_search and
encode, the `demo` network). Every value is
validated; a bad one is a `UsageError` (exit 2) naming the value and the file.

    [node]
    status = "tcp://127.0.0.1:7701"
    sync = "tcp://127.0.0.1:7702"
    control = "tcp://127.0.0.1:7703"
    data_dir = "/var/lib/pipecast"
    heartbeat = 1.0
    insecure = false        # true: no CURVE (only with loopback or ipc endpoints)

    [history]
    max_updates = 10000
    max_age = 60.0

    [limits]                # what the node accepts from outside (docs/PROTOCOL.md, "Limits")
    request_bytes = 1048576
    depth = 16
    value_bytes = 262144

    [[stages]]              # replaces the default stages when given
    name = "analyze"
    kind = "analyze"        # kinds: analyze, crf, crf_search, encode

    [[stages]]
    name = "crf_search"
    kind = "crf_search"
    options = { target = 95.0, max_percent = 80.0, max_probes = 6 }

    [[stages]]
    name = "encode"
    kind = "encode"

    [media]                 # the library's policy (docs/media.md)
    roots = ["/srv/videos"] # the only folders it enqueues from and writes in (none: none)
    replace = false         # true: the encode replaces the original once verified
    suffix = ".av1"         # keep mode: <name>.av1.mkv beside the original
    min_bytes = 65536       # smaller sources are skipped (too_small)
    max_output_ratio = 1.0  # outputs not below source size * this: skipped (not_beneficial)
    stall_timeout = 300.0   # seconds without frame progress (not counting suspended time)
    max_attempts = 3        # automatic attempts for retryable failures (stalled, resource)

    [encode]
    encoder = "libsvtav1"
    preset = 8              # SVT-AV1: lower is slower and smaller at the same quality
    crf = 35.0              # until a CRF search chooses one per file
    audio = "copy"          # or "drop"
    subtitles = "copy"

    [[networks]]            # replaces the built-in `demo` network when given
    name = "demo"
    models = ["paint", "caption", "remix"]   # built-ins, entry points or module:attr
    lockout = 30.0          # seconds after a genesis during which prompts are refused
    pace = [{ until = 600, delay = 1.0 }, { until = 3600, delay = 15.0 }, { delay = 600.0 }]
    max_invocations = 1000  # optional
    max_duration = 86400.0  # optional, seconds
    timeout = 60.0          # per invocation
    retries = 0
    only_when_watched = false
    keep_live = 1000        # invocations of the current run kept on the live topic
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipecast.actors import EncodeSettings, MediaPolicy, NodeConfig, Pace, RunRules, StageConfig
from pipecast.transport import HistoryLimits, Limits, PipecastError

from ._errors import UsageError

__all__ = ["load_node_config"]

_NODE_KEYS = {"status", "sync", "control", "data_dir", "heartbeat", "insecure"}


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path} is not valid TOML: {exc}") from None


def _node_section(merged: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate the merged `[node]` table and command-line options."""
    kwargs: dict[str, Any] = {}
    for key, field_name in (
        ("status", "status_endpoint"),
        ("sync", "sync_endpoint"),
        ("control", "control_endpoint"),
    ):
        if key in merged:
            if type(merged[key]) is not str or "://" not in merged[key]:
                raise UsageError(f"{key} endpoint {merged[key]!r} is not an endpoint{where}")
            kwargs[field_name] = merged[key]
    if "data_dir" in merged:
        kwargs["data_dir"] = Path(str(merged["data_dir"])).expanduser()
    if "insecure" in merged:
        if type(merged["insecure"]) is not bool:
            raise UsageError(f"insecure must be true or false{where}")
        kwargs["insecure"] = merged["insecure"]
    if "heartbeat" in merged:
        hb = merged["heartbeat"]
        if type(hb) not in (int, float) or not 0.01 <= hb <= 60:
            raise UsageError(f"heartbeat {hb!r} must be 0.01 to 60 seconds{where}")
        kwargs["heartbeat_interval"] = float(hb)
    return kwargs


def load_node_config(
    config: Path | None, roots: tuple[Path, ...] = (), **options: Any
) -> NodeConfig:
    """Merge file and options (None = not given) into a validated `NodeConfig`;
    `roots` (--root), if any, replace the file's `[media] roots`."""
    doc = _read(config) if config is not None else {}
    where = f" in {config}" if config is not None else ""
    unknown = set(doc) - {"node", "history", "limits", "stages", "networks", "media", "encode"}
    if unknown:
        raise UsageError(f"unknown config section(s) {sorted(unknown)}{where}")
    node = doc.get("node", {})
    if not isinstance(node, dict) or set(node) - _NODE_KEYS:
        raise UsageError(f"[node] accepts only {sorted(_NODE_KEYS)}{where}")
    merged = {**node, **{k: v for k, v in options.items() if v is not None}}
    kwargs: dict[str, Any] = {}
    try:
        kwargs.update(_node_section(merged, where))
        history = doc.get("history")
        if history is not None:
            if not isinstance(history, dict) or set(history) - {"max_updates", "max_age"}:
                raise UsageError(f"[history] accepts max_updates and max_age{where}")
            kwargs["history"] = HistoryLimits(**history)
        limits = doc.get("limits")
        if limits is not None:
            if not isinstance(limits, dict) or set(limits) - set(Limits.__slots__):
                raise UsageError(f"[limits] accepts {', '.join(Limits.__slots__)}{where}")
            kwargs["limits"] = Limits(**limits)
        stages = doc.get("stages")
        if stages is not None:
            if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
                raise UsageError(f"[[stages]] must be tables{where}")
            kwargs["stages"] = tuple(
                StageConfig(
                    str(s.get("name", "")), str(s.get("kind", "")), dict(s.get("options", {}))
                )
                for s in stages
            )
        kwargs.update(_media_sections(doc, where))
        if roots:
            given = tuple(str(r.expanduser().absolute()) for r in roots)
            kwargs["media"] = replace(kwargs.get("media", MediaPolicy()), roots=given)
        networks = doc.get("networks")
        if networks is not None:
            if not isinstance(networks, list) or not all(isinstance(n, dict) for n in networks):
                raise UsageError(f"[[networks]] must be tables{where}")
            kwargs["networks"] = tuple(_network(n, where) for n in networks)
        return NodeConfig(**kwargs)
    except UsageError:
        raise
    except (PipecastError, TypeError, ValueError) as exc:
        raise UsageError(f"invalid configuration{where}: {exc}") from None


_NETWORK_KEYS = {
    "name",
    "models",
    "lockout",
    "pace",
    "max_invocations",
    "max_duration",
    "timeout",
    "retries",
    "only_when_watched",
    "keep_live",
}


def _network(table: dict[str, Any], where: str) -> RunRules:
    unknown = set(table) - _NETWORK_KEYS
    if unknown:
        raise UsageError(f"[[networks]] has unknown key(s) {sorted(unknown)}{where}")
    kwargs = {k: v for k, v in table.items() if k not in ("name", "models", "pace")}
    models = table.get("models")
    if not isinstance(models, list):
        raise UsageError(f"network {table.get('name')!r} needs models = [...]{where}")
    if "pace" in table:
        pace = table["pace"]
        if not isinstance(pace, list) or not all(
            isinstance(s, dict) and set(s) <= {"until", "delay"} and "delay" in s for s in pace
        ):
            raise UsageError(f"pace must be a list of {{until, delay}} tables{where}")
        kwargs["pace"] = Pace(tuple((s.get("until"), s["delay"]) for s in pace))
    return RunRules(str(table.get("name", "")), tuple(models), **kwargs)


def _media_sections(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """`[media]` -> MediaPolicy, `[encode]` -> EncodeSettings (each validated)."""
    out: dict[str, Any] = {}
    for section, cls in (("media", MediaPolicy), ("encode", EncodeSettings)):
        table = doc.get(section)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise UsageError(f"[{section}] must be a table{where}")
        for listed in ("extra", "roots"):
            if isinstance(table.get(listed), list):
                table = {**table, listed: tuple(table[listed])}
        out[section] = cls(**table)
    return out
