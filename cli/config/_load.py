"""Config file, options and defaults to a validated `NodeConfig`, with each value's source.

Precedence: command-line option, then environment variable (click reads
both and says which), then the file, then the built-in default. The file is
checked whole against the schema first, so every problem is reported at once
with its key path; checks that span keys (limits that must nest, a pipeline
that must begin with analyze) come from the dataclasses and name their
section. Any problem is a `UsageError` (exit 2) naming the file.

Runs on the CLI's thread; reads one file; never touches the network.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipecast.actors import (
    MEDIA_STAGES,
    STAGE_KINDS,
    EncodeSettings,
    MediaPolicy,
    NodeConfig,
    Pace,
    RunRules,
    StageConfig,
)
from pipecast.actors.cluster import PathMap
from pipecast.cli._errors import UsageError
from pipecast.transport import HistoryLimits, Limits, PipecastError

from ._problems import Problems
from ._schema import STAGE_OPTIONS, ConfigFile, NetworkTable, NodeSection

__all__ = ["LoadedConfig", "load_config", "load_node_config", "read_config"]

# [node] key -> NodeConfig field
NODE_FIELDS = {
    "status": "status_endpoint",
    "sync": "sync_endpoint",
    "control": "control_endpoint",
    "data_dir": "data_dir",
    "heartbeat": "heartbeat_interval",
    "insecure": "insecure",
    "batch": "batch",
    "name": "name",
    "store": "store_url",
    "lease": "lease",
}
DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """The effective config, and for each key path where its value came from."""

    node: NodeConfig
    sources: Mapping[str, str]  # "node.heartbeat" -> "default" | "file PATH" | "env X" | ...
    path: Path | None


def read_config(path: Path, problems: Problems | None = None) -> ConfigFile:
    """The file, checked against the schema. With `problems`, a section that does not
    fit is noted there and left at its defaults, so later checks still run; without,
    `UsageError` listing every problem."""
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path} is not valid TOML: {exc}") from None
    found = problems if problems is not None else Problems(path)
    try:
        return ConfigFile.model_validate(doc)
    except ValidationError as exc:
        found.add_validation(exc, ConfigFile)
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
        if problems is None:
            found.raise_if_any()
    try:  # the sections are independent: the others still count
        return ConfigFile.model_validate({k: v for k, v in doc.items() if k not in bad})
    except ValidationError:
        found.raise_if_any()
        raise AssertionError("unreachable") from None


def load_config(
    path: Path | None,
    roots: tuple[Path, ...] = (),
    options: Mapping[str, tuple[Any, str]] | None = None,
    stage_kinds: Mapping[str, Any] = STAGE_KINDS,
) -> LoadedConfig:
    """The effective config: `options` maps a [node] key to (value, where it came from);
    `roots` (--root), if any, replace the file's `[media] roots`. `UsageError` if invalid."""
    problems = Problems(path)
    file = read_config(path, problems) if path is not None else ConfigFile()
    in_file = f"file {path}"
    sources: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    given = dict(file.node.given())
    for key, (value, source) in (options or {}).items():
        try:
            NodeSection.model_validate({key: value})
        except ValidationError as exc:
            problems.add_validation(exc, NodeSection, label=source)
            continue
        given[key] = value
        sources[f"node.{key}"] = source
    for key, field_name in NODE_FIELDS.items():
        if key in given:
            value = given[key]
            kwargs[field_name] = Path(str(value)).expanduser() if key == "data_dir" else value
        sources.setdefault(f"node.{key}", in_file if key in given else DEFAULT)
    for name, cls, section in (
        ("history", HistoryLimits, file.history),
        ("limits", Limits, file.limits),
        ("media", MediaPolicy, file.media),
        ("encode", EncodeSettings, file.encode),
    ):
        table = section.given()
        for f in fields(cls):
            sources[f"{name}.{f.name}"] = in_file if f.name in table else DEFAULT
        if name == "media" and roots:
            table["roots"] = [str(r.expanduser().absolute()) for r in roots]
            sources["media.roots"] = "option --root"
        table = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
        if table:
            try:
                kwargs[name] = cls(**table)
            except PipecastError as exc:
                problems.add((name,), str(exc))
    kwargs["stages"] = _stages(file, stage_kinds, problems, sources, in_file)
    try:
        kwargs["paths"] = PathMap.from_table(file.paths)
    except PipecastError as exc:
        problems.add(("paths",), str(exc))
    sources["paths"] = in_file if file.paths else DEFAULT
    if file.networks is not None:
        networks = [_network(i, n, problems) for i, n in enumerate(file.networks)]
        kwargs["networks"] = tuple(n for n in networks if n is not None)
    sources["networks"] = in_file if file.networks is not None else DEFAULT
    problems.raise_if_any()
    try:
        cfg = NodeConfig(**kwargs, stage_kinds=stage_kinds)
    except PipecastError as exc:
        raise UsageError(f"config {path}: {exc}" if path else f"configuration: {exc}") from None
    return LoadedConfig(cfg, sources, path)


def load_node_config(
    config: Path | None, roots: tuple[Path, ...] = (), **options: Any
) -> NodeConfig:
    """`load_config` for callers with plain [node] values (None = not given)."""
    given = {k: (v, f"option --{k.replace('_', '-')}") for k, v in options.items() if v is not None}
    return load_config(config, roots, given).node


def _stages(
    file: ConfigFile,
    kinds: Mapping[str, Any],
    problems: Problems,
    sources: dict[str, str],
    in_file: str,
) -> tuple[StageConfig, ...]:
    """The pipeline ([[stages]] or the default), with [stage.NAME] options laid over it."""
    declared: list[tuple[str, str, dict[str, Any]]] = []
    if file.stages is None:
        declared = [(s.name, s.kind, dict(s.options)) for s in MEDIA_STAGES]
    for i, table in enumerate(file.stages or ()):
        if table.kind not in kinds:
            known = ", ".join(sorted(kinds))
            problems.add(
                ("stages", i, "kind"), f"unknown stage kind {table.kind!r}; known: {known}"
            )
            continue
        _check_options(table.kind, table.options, kinds, problems, ("stages", i, "options"))
        declared.append((table.name, table.kind, dict(table.options)))
    sources["stages"] = in_file if file.stages is not None else DEFAULT
    by_name = {name: (kind, options) for name, kind, options in declared}
    for name, options in file.stage.items():
        if name not in by_name:
            names = ", ".join(by_name) or "none"
            problems.add(("stage", name), f"no stage of that name in the pipeline ({names})")
            continue
        kind, current = by_name[name]
        if _check_options(kind, options, kinds, problems, ("stage", name)):
            current.update(options)
            for key in options:
                sources[f"stage.{name}.{key}"] = in_file
    out: list[StageConfig] = []
    for i, (name, kind, options) in enumerate(declared):
        try:
            out.append(StageConfig(name, kind, options))
        except PipecastError as exc:
            problems.add(("stages", i, "name"), str(exc))
    return tuple(out)


def _check_options(
    kind: str,
    options: dict[str, Any],
    kinds: Mapping[str, Any],
    problems: Problems,
    loc: tuple[str | int, ...],
) -> bool:
    """Whether `options` suit a stage of `kind`; what does not is a problem at `loc`."""
    schema = STAGE_OPTIONS.get(kind)
    if schema is not None:
        try:
            schema.model_validate(options)
        except ValidationError as exc:
            problems.add_validation(exc, schema, loc)
            return False
        return True
    unknown = sorted(set(options) - kinds[kind].OPTIONS)
    for key in unknown:
        allowed = ", ".join(sorted(kinds[kind].OPTIONS)) or "none"
        problems.add((*loc, key), f"unknown option; allowed: {allowed}")
    return not unknown


def _network(i: int, table: NetworkTable, problems: Problems) -> RunRules | None:
    given = table.given()
    kwargs = {k: v for k, v in given.items() if k not in ("name", "models", "pace")}
    try:
        if table.pace is not None:
            kwargs["pace"] = Pace(tuple((step.until, step.delay) for step in table.pace))
        return RunRules(table.name, tuple(table.models), **kwargs)
    except PipecastError as exc:
        problems.add(("networks", i), str(exc))
        return None
