"""Node configuration from a TOML file, `PIPECAST_*` variables and options.

Precedence: command-line option, then environment variable (click reads both),
then the config file, then the built-in defaults (loopback endpoints 7701-7703,
data in ~/.local/share/pipecast, one `checksum` stage). Every value is
validated; a bad one is a `UsageError` (exit 2) naming the value and the file.

    [node]
    status = "tcp://127.0.0.1:7701"
    sync = "tcp://127.0.0.1:7702"
    control = "tcp://127.0.0.1:7703"
    data_dir = "/var/lib/pipecast"
    heartbeat = 1.0

    [history]
    max_updates = 10000
    max_age = 60.0

    [[stages]]
    name = "checksum"
    kind = "checksum"
    options = { step_bytes = 4194304 }
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pipecast.actors import NodeConfig, StageConfig
from pipecast.transport import HistoryLimits, PipecastError

from ._errors import UsageError

__all__ = ["load_node_config"]

_NODE_KEYS = {"status", "sync", "control", "data_dir", "heartbeat"}


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path} is not valid TOML: {exc}") from None


def load_node_config(config: Path | None, **options: Any) -> NodeConfig:
    """Merge file and options (None = not given) into a validated `NodeConfig`."""
    doc = _read(config) if config is not None else {}
    where = f" in {config}" if config is not None else ""
    unknown = set(doc) - {"node", "history", "stages"}
    if unknown:
        raise UsageError(f"unknown config section(s) {sorted(unknown)}{where}")
    node = doc.get("node", {})
    if not isinstance(node, dict) or set(node) - _NODE_KEYS:
        raise UsageError(f"[node] accepts only {sorted(_NODE_KEYS)}{where}")
    merged = {**node, **{k: v for k, v in options.items() if v is not None}}
    kwargs: dict[str, Any] = {}
    try:
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
        if "heartbeat" in merged:
            hb = merged["heartbeat"]
            if type(hb) not in (int, float) or not 0.01 <= hb <= 60:
                raise UsageError(f"heartbeat {hb!r} must be 0.01 to 60 seconds{where}")
            kwargs["heartbeat_interval"] = float(hb)
        history = doc.get("history")
        if history is not None:
            if not isinstance(history, dict) or set(history) - {"max_updates", "max_age"}:
                raise UsageError(f"[history] accepts max_updates and max_age{where}")
            kwargs["history"] = HistoryLimits(**history)
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
        return NodeConfig(**kwargs)
    except UsageError:
        raise
    except (PipecastError, TypeError, ValueError) as exc:
        raise UsageError(f"invalid configuration{where}: {exc}") from None
