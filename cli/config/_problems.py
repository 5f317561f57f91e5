"""Config problems as a person reads them: `media.replce: unknown key; allowed: ...`.

Collects every problem of one load, each named by its key path, so a file
with three mistakes is fixed in one round. Pure.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pipecast.cli._errors import UsageError

__all__ = ["Problems", "dotted"]


class Problems:
    """Every problem found, each as `key.path: what is wrong`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, loc: tuple[str | int, ...], what: str) -> None:
        self.lines.append(f"{dotted(loc) or '(top level)'}: {what}")

    def add_validation(
        self,
        error: ValidationError,
        model: type[BaseModel],
        prefix: tuple[Any, ...] = (),
        label: str | None = None,
    ) -> None:
        """Each of pydantic's errors, located in `model` (the table at `prefix`), or
        named by `label` (an option, say) instead of its key path."""
        for e in error.errors():
            loc = tuple(e["loc"])
            if e["type"] == "extra_forbidden":
                allowed = _fields_at(model, loc[:-1])
                what = "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
            elif e["type"] == "missing":
                what = "required key missing"
            else:
                got = repr(e.get("input"))
                what = f"{e['msg'][0].lower()}{e['msg'][1:]} (got {_cut(got)})"
            if label is not None:
                self.lines.append(f"{label}: {what}")
            else:
                self.add(prefix + loc, what)

    def raise_if_any(self) -> None:
        """`UsageError` listing every problem, if there is one."""
        if not self.lines:
            return
        where = f"config {self.path}" if self.path else "configuration"
        if len(self.lines) == 1:
            raise UsageError(f"{where}: {self.lines[0]}")
        raise UsageError(f"{where}: {len(self.lines)} problems\n  " + "\n  ".join(self.lines))


def _cut(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def dotted(loc: tuple[Any, ...]) -> str:
    """("stages", 0, "kind") -> "stages[0].kind"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at `loc` accepts (empty if it is not a table of a model)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        current = _model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None
