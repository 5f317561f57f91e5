"""Finding a model by name: the built-ins, then entry points, then `module:attr`.

In this order: the built-ins (`echo`, `remix`, `paint`, `caption`), the
entry-point group `pipecast.models`, then `module:attr`. Runs in the
caller's thread (node start-up, a runner's start); importing a model's
module may block for as long as that module takes to import.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from pipecast.transport import BadRequest

from ._builtin_models import BUILTINS
from ._models import Model, declared

__all__ = ["resolve_model"]


def resolve_model(name: str) -> Model:
    """The model called `name`; `BadRequest` saying why it cannot be found."""
    if type(name) is not str or not name:
        raise BadRequest("a model name must be a non-empty string")
    if name in BUILTINS:
        return declared(name, BUILTINS[name])
    for ep in importlib.metadata.entry_points(group="pipecast.models"):
        if ep.name == name:
            try:
                return declared(name, ep.load())
            except (ImportError, AttributeError) as exc:
                raise BadRequest(f"model {name!r} (entry point) cannot be loaded: {exc}") from None
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise BadRequest(
            f"no model named {name!r} (give a built-in, an entry point or module:attr)"
        )
    try:
        fn: Any = importlib.import_module(module)
        for part in attr.split("."):
            fn = getattr(fn, part)
    except (ImportError, AttributeError) as exc:
        raise BadRequest(f"model {name!r} cannot be loaded: {exc}") from None
    return declared(name, fn)
