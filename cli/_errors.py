"""CLI errors: each carries the exit code documented in `pipecast --help`."""

from __future__ import annotations

import click

__all__ = [
    "EXIT_CODES",
    "INTERRUPTED",
    "BindFailed",
    "CliError",
    "UnreachableError",
    "UsageError",
]

INTERRUPTED = 130  # 128 + SIGINT, as shells report it

EXIT_CODES = """\b
Exit codes:
  0  success
  1  the command failed (a typed error says why)
  2  bad arguments or options
  3  the node could not be reached within --timeout
  4  an endpoint could not be bound (another node is running there)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM; `start` exits 0 on it)"""


class CliError(click.ClickException):
    exit_code = 1


class UsageError(CliError):
    exit_code = 2


class UnreachableError(CliError):
    exit_code = 3


class BindFailed(CliError):
    exit_code = 4
