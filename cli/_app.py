"""The `pipecast` click group; the command modules attach to it."""

from __future__ import annotations

import click

from ._errors import EXIT_CODES

__all__ = ["main"]


@click.group(epilog=EXIT_CODES)
@click.version_option(package_name="pipecast")
def main() -> None:
    """pipecast: long-running media and model pipelines, watched live."""
