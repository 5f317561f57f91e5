"""pipecast.cli: the `pipecast` command line (click)."""

from ._errors import EXIT_CODES, CliError, UnreachableError, UsageError
from ._main import main

__all__ = ["EXIT_CODES", "CliError", "UnreachableError", "UsageError", "main"]
