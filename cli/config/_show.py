"""The effective config as a document, where each value came from, and as TOML text.

`document` lists every key the schema knows, with its effective value, and
every option of every stage (defaults included, read from the stage kind's
signature); `sources` says, per key path, `default`, `file PATH`,
`env NAME` or `option --NAME`. `as_toml` writes both as a config file with
the source after each value, which loads back to the same config. Pure.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import asdict
from typing import Any

from pipecast.actors import RunRules

from ._load import DEFAULT, LoadedConfig

__all__ = ["as_toml", "document", "sources"]


def _stage_defaults(kind: type) -> dict[str, Any]:
    params = inspect.signature(kind).parameters
    options: frozenset[str] = getattr(kind, "OPTIONS", frozenset())
    return {
        name: params[name].default
        for name in sorted(options)
        if name in params and params[name].default is not inspect.Parameter.empty
    }


def _listed(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _network(rules: RunRules) -> dict[str, Any]:
    table: dict[str, Any] = {"name": rules.network, "models": list(rules.models)}
    for key in ("lockout", "max_invocations", "max_duration", "timeout", "retries"):
        if (value := getattr(rules, key)) is not None:  # TOML has no null: unset is absent
            table[key] = value
    table["only_when_watched"] = rules.only_when_watched
    table["keep_live"] = rules.keep_live
    table["pace"] = [
        {"delay": delay} if until is None else {"until": until, "delay": delay}
        for until, delay in rules.pace.steps
    ]
    return table


def document(loaded: LoadedConfig) -> dict[str, Any]:
    """Every section and key with its effective value (None-valued keys left out)."""
    cfg = loaded.node
    return {
        "node": {
            "status": cfg.status_endpoint,
            "sync": cfg.sync_endpoint,
            "control": cfg.control_endpoint,
            "data_dir": str(cfg.data_dir),
            "heartbeat": cfg.heartbeat_interval,
            "insecure": cfg.insecure,
            "batch": cfg.batch,
            "name": cfg.name,
            **({"store": _without_password(cfg.store_url)} if cfg.store_url else {}),
            "lease": cfg.lease,
        },
        "history": asdict(cfg.history),
        "limits": cfg.limits.as_dict(),
        "stages": [
            {
                "name": s.name,
                "kind": s.kind,
                "options": {**_stage_defaults(cfg.stage_kinds[s.kind]), **s.options},
            }
            for s in cfg.stages
        ],
        "media": _listed(asdict(cfg.media)),
        "encode": _listed(asdict(cfg.encode)),
        "networks": [_network(r) for r in cfg.networks],
        "paths": {str(local): str(shared) for local, shared in cfg.paths.entries},
    }


def sources(loaded: LoadedConfig, doc: dict[str, Any]) -> dict[str, str]:
    """Key path -> where its value came from, for every key of `doc`."""
    known = loaded.sources
    out: dict[str, str] = {}
    for section, table in doc.items():
        if isinstance(table, dict):
            for key in table:
                out[f"{section}.{key}"] = known.get(f"{section}.{key}", DEFAULT)
    out["networks"] = known.get("networks", DEFAULT)
    out["stages"] = known.get("stages", DEFAULT)
    for stage in loaded.node.stages:
        for key in doc_options(doc, stage.name):
            given = key in stage.options
            where = known.get(f"stage.{stage.name}.{key}", out["stages"]) if given else DEFAULT
            out[f"stage.{stage.name}.{key}"] = where
    return out


def doc_options(doc: dict[str, Any], stage: str) -> dict[str, Any]:
    """The options of the stage named `stage` in `doc`."""
    for s in doc["stages"]:
        if s["name"] == stage:
            return dict(s["options"])
    return {}


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: the same escapes
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}")


def _lines(table: dict[str, Any], where: dict[str, str], prefix: str) -> list[str]:
    rows = [(f"{k} = {_value(v)}", where.get(f"{prefix}{k}", "")) for k, v in table.items()]
    width = max((len(text) for text, _ in rows), default=0)
    return [f"{text:<{width}}  # {src}" if src else text for text, src in rows]


def as_toml(doc: dict[str, Any], where: dict[str, str]) -> str:
    """`doc` as a config file, each value followed by `# its source`."""
    out = ["# the effective configuration; after each value, where it came from", ""]
    for listed in ("stages", "networks"):  # none at all: said before any table, as TOML wants
        if not doc[listed]:
            out += [f"{listed} = []  # {where[listed]}", ""]
    for section in ("node", "history", "limits", "media", "encode"):
        out += [f"[{section}]", *_lines(doc[section], where, f"{section}."), ""]
    for stage in doc["stages"]:
        head = {"name": stage["name"], "kind": stage["kind"]}
        out += [f"[[stages]]  # {where['stages']}", *_lines(head, {}, "")]
        if stage["options"]:
            out += ["[stages.options]", *_lines(stage["options"], where, f"stage.{stage['name']}.")]
        out.append("")
    for network in doc["networks"]:
        out += [f"[[networks]]  # {where['networks']}", *_lines(network, {}, ""), ""]
    return "\n".join(out)


def _without_password(url: str) -> str:
    """A store URL fit to print: a password in it is shown as ***."""
    return re.sub(r"^(\w+://[^:/@]*):[^/]*@", r"\1:***@", url)  # to the host's @
