"""Models: named Python callables with declared input and output kinds.

A model is found by name (`resolve_model`, in `_resolve.py`). Its callable
declares its kinds with `@model(input=...,
output=...)` (kinds: text, image). Text is passed and returned as `str`; an
image is passed as a `Path` to a PNG and returned as PNG `bytes`, which the
runner stores content-addressed in the data directory.

`invoke_model` runs in a model worker thread (never the runner's), blocks for
as long as the model does, and raises `ModelError` for every way a model can
fail (its own exception included), so the runner has one thing to catch.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pipecast.transport import BadRequest, ErrorType, PipecastError

from ._png import PNG_SIGNATURE

__all__ = ["KINDS", "Model", "ModelError", "check_ring", "declared", "invoke_model", "model"]

KINDS = ("text", "image")
MAX_TEXT = 100_000
F = TypeVar("F", bound=Callable[..., Any])


class ModelError(PipecastError):
    """A model failed: it raised, returned the wrong kind, or its input is unusable."""

    wire_type = ErrorType.MODEL_FAILED


def model(*, input: str, output: str) -> Callable[[F], F]:
    """Declare a callable's input and output kinds (text or image)."""
    for kind in (input, output):
        if kind not in KINDS:
            raise BadRequest(f"model kind {kind!r} unknown (kinds: {', '.join(KINDS)})")

    def mark(fn: F) -> F:
        fn.pipecast_input = input  # type: ignore[attr-defined]
        fn.pipecast_output = output  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    fn: Callable[[Any], Any]
    input_kind: str
    output_kind: str


def declared(name: str, fn: Any) -> Model:
    """`fn` as the model `name`; `BadRequest` unless it is callable and declares its kinds."""
    if not callable(fn):
        raise BadRequest(f"model {name!r} is not callable")
    kinds = getattr(fn, "pipecast_input", None), getattr(fn, "pipecast_output", None)
    if kinds[0] not in KINDS or kinds[1] not in KINDS:
        raise BadRequest(
            f"model {name!r} does not declare its kinds: decorate it with "
            "@pipecast.actors.model(input=..., output=...)"
        )
    return Model(name, fn, str(kinds[0]), str(kinds[1]))


def check_ring(models: Sequence[Model]) -> None:
    """Each model's output feeds the next one's input, and a prompt (text) the first."""
    if models[0].input_kind != "text":
        raise BadRequest(f"the first model {models[0].name!r} must take text (the prompt)")
    for i, m in enumerate(models):
        nxt = models[(i + 1) % len(models)]
        if m.output_kind != nxt.input_kind:
            raise BadRequest(
                f"model {m.name!r} makes {m.output_kind} but {nxt.name!r} after it takes "
                f"{nxt.input_kind}"
            )


def invoke_model(m: Model, value: str, images: Path) -> str:
    """Run `m` on `value` (text, or an image's path); returns text or the output image's path."""
    arg: Any = value
    if m.input_kind == "image":
        arg = Path(value)
        if not arg.is_file():
            raise ModelError(f"input image {value!r} does not exist")
    try:
        out = m.fn(arg)
    except Exception as exc:
        raise ModelError(f"{m.name}: {type(exc).__name__}: {exc}") from None
    if m.output_kind == "text":
        if type(out) is not str:
            raise ModelError(f"{m.name} returned {type(out).__name__}, not text")
        if len(out) > MAX_TEXT:
            raise ModelError(f"{m.name} returned {len(out)} characters (at most {MAX_TEXT})")
        return out
    if type(out) not in (bytes, bytearray) or not bytes(out[:8]) == PNG_SIGNATURE:
        raise ModelError(f"{m.name} returned {type(out).__name__}, not PNG bytes")
    return str(store_image(bytes(out), images))


def store_image(data: bytes, images: Path) -> Path:
    """Write `data` as images/<sha256>.png once (atomically); the same image, the same file."""
    path = images / f"{hashlib.sha256(data).hexdigest()}.png"
    if not path.exists():
        images.mkdir(parents=True, exist_ok=True)
        tmp = images / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ModelError(f"cannot store the output image: {exc.strerror}") from None
    return path
