"""pipecast.cli: the `pipecast` command line (click)."""

from . import (  # noqa: F401 - importing attaches the commands
    _bench,
    _config_cli,
    _demo,
    _installations,
    _keys,
    _media,
    _networks,
    _node,
    _relay,
    _web,
)
from ._app import main
from ._errors import EXIT_CODES, BindFailed, CliError, UnreachableError, UsageError

__all__ = ["EXIT_CODES", "BindFailed", "CliError", "UnreachableError", "UsageError", "main"]
