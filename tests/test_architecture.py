"""The layering and the public surface, as tests (trio's test_exports is the model).

Read from the source with `ast`, so a rule is checked without importing
anything: pure cores import no I/O, nothing reaches into another package's
private modules, the wings of `pipecast.actors` import one way, every facade
exports what it says, and what one package takes from another is in that
package's facade.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the repository folders that setup.cfg maps to pipecast.<folder>
PACKAGES = ("actors", "transport", "cli", "bench", "testing", "web")

# Pure cores: no sockets, threads, clocks or processes inside; time is passed in.
PURE_CORES = [
    "transport/_wire.py",
    "transport/_sequencer.py",
    "transport/_replica.py",
    "transport/_replica_events.py",
    "transport/_display.py",
    "transport/_views.py",
    "transport/_throttle.py",
    "transport/_update_gate.py",
    "transport/_limits.py",
    "actors/runtime/_restarts.py",
    "actors/runtime/_stage_status.py",
    "actors/presence/_leases.py",
    "actors/media/_job_states.py",
    "actors/media/_commit_plan.py",
    "actors/media/_verify.py",
    "actors/media/_progress.py",
    "actors/media/crf/_strategy.py",
    "actors/media/crf/_paired.py",
    "actors/media/crf/_probe_book.py",
    "actors/media/crf/_report.py",
    "actors/media/crf/_samples.py",
    "actors/networks/_run_rules.py",
    "actors/relay/_mirror.py",
    "actors/relay/_presence.py",
    "actors/cluster/_model.py",
    "actors/cluster/_holds.py",
    "actors/cluster/_paths.py",
    "bench/_ab_av1.py",
    "web/_stream.py",
    "web/_access.py",
    "web/_chart.py",
    "cli/config/_problems.py",
    "cli/dashboard/_model.py",
]
IO_MODULES = {
    "zmq",
    "pykka",
    "threading",
    "time",
    "subprocess",
    "socket",
    "select",
    "signal",
    "asyncio",
    "sqlite3",
    "av",
}

# Which wings of pipecast.actors each wing may import (besides itself).
WINGS = ("runtime", "presence", "media", "networks", "relay", "cluster")
WING_MAY_IMPORT = {
    "runtime": set(),
    "presence": {"runtime"},
    "media": {"runtime", "cluster"},
    "networks": {"runtime", "presence"},
    "relay": {"runtime"},
    "cluster": {"runtime"},
}
# Which top-level packages each package may import (besides itself).
PACKAGE_MAY_IMPORT = {
    "transport": set(),
    "actors": {"transport"},
    "web": {"transport", "actors"},
    "testing": {"transport", "actors", "web"},
    "bench": {"transport", "actors", "testing"},
    "cli": {"transport", "actors", "bench", "web"},
}
MAX_MODULE_LINES = 600


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module, dotted (pipecast.actors.media._encode)
    target: str  # the module imported from, dotted and absolute
    names: tuple[str, ...]  # what was taken from it (empty: `import target`)
    line: int


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["pipecast", *parts])


def _sources() -> Iterator[Path]:
    for folder in PACKAGES:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    package = _package_of(module, path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = tuple(a.name for a in node.names)
            yield Import(module, base, names, node.lineno)


ALL_IMPORTS = [imp for path in _sources() for imp in _imports(path)]


def _private_modules(imp: Import) -> Iterator[str]:
    """Every private module an import names: `pkg._mod`, or `_mod` taken from `pkg`."""
    if any(part.startswith("_") and part != "__future__" for part in imp.target.split(".")):
        yield imp.target
    for name in imp.names:
        if name.startswith("_") and (ROOT / _path_of(f"{imp.target}.{name}")).exists():
            yield f"{imp.target}.{name}"


def _path_of(dotted: str) -> str:
    parts = dotted.split(".")[1:]
    return "/".join(parts) + ".py"


@pytest.mark.parametrize("core", PURE_CORES)
def test_a_pure_core_imports_no_sockets_threads_clocks_or_processes(core: str) -> None:
    path = ROOT / core
    used = {imp.target.split(".")[0] for imp in _imports(path)}
    assert not used & IO_MODULES, f"{core} imports {sorted(used & IO_MODULES)}"


def test_nothing_imports_another_packages_private_modules() -> None:
    bad = []
    for imp in ALL_IMPORTS:
        if not imp.target.startswith("pipecast."):
            continue
        for private in _private_modules(imp):
            owner = private.rsplit(".", 1)[0]  # the package the private module belongs to
            if not (imp.module == owner or imp.module.startswith(owner + ".")):
                bad.append(f"{imp.module}:{imp.line} imports {private}")
    assert not bad, "\n".join(bad)


def test_the_wings_of_actors_import_one_way() -> None:
    bad = []
    for imp in ALL_IMPORTS:
        wing = imp.module.split(".")[2] if imp.module.startswith("pipecast.actors.") else None
        if wing not in WINGS or not imp.target.startswith("pipecast.actors"):
            continue
        parts = imp.target.split(".")
        target = parts[2] if len(parts) > 2 else None  # None: the actors facade itself
        if target != wing and target not in WING_MAY_IMPORT[wing]:
            bad.append(f"{imp.module}:{imp.line} imports {imp.target} ({wing} -> {target})")
    assert not bad, "\n".join(bad)


def test_packages_import_only_the_packages_below_them() -> None:
    bad = []
    for imp in ALL_IMPORTS:
        if not imp.target.startswith("pipecast."):
            continue
        mine, theirs = imp.module.split(".")[1], imp.target.split(".")[1]
        if theirs != mine and theirs not in PACKAGE_MAY_IMPORT[mine]:
            bad.append(f"{imp.module}:{imp.line} imports {imp.target}")
    assert not bad, "\n".join(bad)


def _facades() -> list[str]:
    return sorted(_module_name(p) for p in _sources() if p.name == "__init__.py")


@pytest.mark.parametrize("facade", _facades())
def test_every_facade_declares_all_and_exports_each_name_it_declares(facade: str) -> None:
    module = importlib.import_module(facade)
    declared = getattr(module, "__all__", None)
    assert declared is not None, f"{facade} has no __all__"
    assert len(declared) == len(set(declared)), f"{facade}.__all__ repeats a name"
    missing = [name for name in declared if not hasattr(module, name)]
    assert not missing, f"{facade}.__all__ names what it does not have: {missing}"


def test_what_one_package_takes_from_another_is_in_that_packages_facade() -> None:
    facades = set(_facades())
    bad = []
    for imp in ALL_IMPORTS:
        if imp.target not in facades or not imp.names:
            continue
        if imp.module == imp.target or imp.module.startswith(imp.target + "."):
            continue  # a package's own modules may take from its facade's module
        exported = set(importlib.import_module(imp.target).__all__)
        bad += [
            f"{imp.module}:{imp.line} takes {name} from {imp.target}"
            for name in imp.names
            if name not in exported
        ]
    assert not bad, "\n".join(bad)


def test_no_module_grows_past_the_size_a_reader_can_hold() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_actors_ask_only_at_the_edges() -> None:
    """A blocking `ask` between actors can deadlock two mailboxes; only the handles
    that CLI, tests and node start-up hold may ask."""
    bad = []
    for path in sorted((ROOT / "actors").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            if cls.name.endswith("Handle"):
                continue
            for node in ast.walk(cls):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "ask"
                ):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} in {cls.name}")
    assert not bad, "\n".join(bad)
