"""The `pipecast` click group; the command modules attach to it."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from ._errors import EXIT_CODES, INTERRUPTED

__all__ = ["main"]


TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process SIGTERM ended


def _terminate(_sig: int, _frame: object) -> None:
    raise SystemExit(TERMINATED)  # unwinds like Ctrl-C: a watch leaves presence on its way out


class _Main(click.Group):
    """The group, with one exit code for Ctrl-C (130) and one for SIGTERM (143) whatever
    the command was doing; both unwind the command, so it cleans up (`start` handles
    both signals itself: its SIGTERM is a clean stop, exit 0)."""

    def invoke(self, ctx: click.Context) -> Any:
        main_thread = threading.current_thread() is threading.main_thread()
        before = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, before)


@click.group(cls=_Main, epilog=EXIT_CODES)
@click.version_option(package_name="pipecast")
def main() -> None:
    """pipecast: long-running media and model pipelines, watched live."""
