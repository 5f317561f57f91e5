"""The `pipecast` click group; the command modules attach to it."""

from __future__ import annotations

from typing import Any

import click

from ._errors import EXIT_CODES, INTERRUPTED

__all__ = ["main"]


class _Main(click.Group):
    """The group, with one exit code for Ctrl-C whatever the command was doing."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)


@click.group(cls=_Main, epilog=EXIT_CODES)
@click.version_option(package_name="pipecast")
def main() -> None:
    """pipecast: long-running media and model pipelines, watched live."""
