"""`pipecast run`, `stop-run`, `networks`, `invocations`, and `watch --display`."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from typing import Any

import click

from pipecast.transport import (
    BadRequest,
    Ended,
    InvocationWatch,
    NodeUnreachable,
    Recovered,
    Reset,
    Stale,
    Subscriber,
    Update,
    parse_display,
)

from ._app import main
from ._client import Endpoints, RemotePresence, call, client_options, emit
from ._errors import EXIT_CODES, CliError, UnreachableError, UsageError
from ._screen import describe_run, render
from .dashboard import event_record, note_text

__all__ = ["watch_display"]


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("network")
@click.argument("prompt")
@click.option("--json", "as_json", is_flag=True, help="print the genesis invocation as JSON")
def run(ep: Endpoints, network: str, prompt: str, as_json: bool) -> None:
    """Start a run of NETWORK from PROMPT (ends the current run once its lockout is over)."""
    genesis = call(ep, "run", network=network, prompt=prompt)
    if as_json:
        emit(genesis, True)
    else:
        click.echo(f"run {genesis['run']} started on {network}: #0 {genesis['model']} invoking")


@main.command("stop-run", epilog=EXIT_CODES)
@client_options
@click.argument("network")
@click.option("--json", "as_json", is_flag=True, help='print {"stopped", "run"}')
def stop_run(ep: Endpoints, network: str, as_json: bool) -> None:
    """Stop NETWORK's current run (its in-flight invocation is marked failed); exits 1
    if it had none."""
    result = call(ep, "run.stop", network=network)
    if as_json:
        emit(result, True)
    elif result["stopped"]:
        click.echo(f"stopped run {result['run']} of {network}")
    if not result["stopped"]:
        raise CliError(f"{network} had no run going: nothing was stopped")


@main.command(epilog=EXIT_CODES)
@client_options
@click.option("--json", "as_json", is_flag=True)
def networks(ep: Endpoints, as_json: bool) -> None:
    """The node's networks: models, rules, the current run and its viewers."""
    result = call(ep, "networks")
    if as_json:
        emit(result, True)
        return
    now = time.time()
    for name, info in result.items():
        click.echo(f"{name}: {' -> '.join(info['models'])} (lockout {info['lockout']:g} s)")
        click.echo(f"   {describe_run(info['state'], now)}; {info['viewers']} watching")


@main.command(epilog=EXIT_CODES)
@client_options
@click.argument("network")
@click.option(
    "--run", "run_id", type=click.IntRange(1), default=None, help="a run id (default: the latest)"
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def invocations(ep: Endpoints, network: str, run_id: int | None, limit: int, as_json: bool) -> None:
    """A run's invocations from the node's store (the newest LIMIT, in order)."""
    args: dict[str, Any] = {"network": network, "limit": limit}
    if run_id is not None:
        args["run"] = run_id
    result = call(ep, "invocations", **args)
    if as_json:
        emit(result, True)
        return
    if result["run"] is None:
        click.echo(f"{network} has no runs yet")
        return
    click.echo(f"run {result['run']} of {network}:")
    for inv in result["invocations"]:
        body = inv["output"] if inv["state"] == "completed" else inv["error"] or ""
        click.echo(f"  #{inv['sequence']:<5} {inv['model']:<12} {inv['state']:<9} {str(body)[:60]}")


def watch_display(
    ep: Endpoints,
    prefixes: tuple[str, ...],
    display: str,
    as_json: bool,
    exit_on_end: bool,
    count: int | None,
) -> None:
    """Show one display of a network live: a view fed by a Subscriber, drawn on each change."""
    if (
        len(prefixes) != 1
        or not prefixes[0].startswith("invocation/")
        or prefixes[0] == "invocation/"
    ):
        raise UsageError("--display needs exactly one topic: invocation/NETWORK")
    try:
        mode = parse_display(display)
    except BadRequest as exc:
        raise UsageError(str(exc)) from None
    topic = prefixes[0]
    screen = _Screen(topic, InvocationWatch(mode), as_json, count, exit_on_end)
    sub = Subscriber(ep.status, ep.sync, (topic,), on_event=screen.on_event, security=ep.security)
    with sub:
        try:
            sub.wait_synced(ep.timeout)
        except NodeUnreachable as exc:
            raise UnreachableError(str(exc)) from None
        presence = RemotePresence(ep, topic, str(mode))
        try:
            while not screen.done.wait(presence.interval):
                presence.beat()
                if screen.tty:
                    screen.draw()  # the countdowns move on by themselves
        finally:  # Ctrl-C included: leave, then the group exits 130
            presence.leave()


class _Screen:
    """The display's state and its drawing; events arrive in the subscriber's thread."""

    def __init__(
        self, topic: str, view: InvocationWatch, as_json: bool, count: int | None, exit_on_end: bool
    ) -> None:
        self.topic, self.view, self.as_json = topic, view, as_json
        self.count, self.exit_on_end = count, exit_on_end
        self.tty = sys.stdout.isatty() and not as_json
        self.run: dict[str, Any] | None = None
        self.changes = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def on_event(self, ev: Any) -> None:
        changed = False
        if isinstance(ev, Reset):
            if self.topic not in ev.state and ev.reason is not None:
                return
            state = ev.state.get(self.topic, {})
            changed = self.view.reset(state)
            changed = self._set_run(state.get("run")) or changed or ev.reason is None
        elif isinstance(ev, Update) and ev.topic == self.topic:
            if ev.key == "run":
                changed = self._set_run(ev.data)
            else:
                changed = self.view.apply(ev.key, ev.data)
        elif isinstance(ev, Recovered | Stale) and not self.tty:
            self._note(ev)
        elif isinstance(ev, Ended):
            self._note(ev)
            if self.exit_on_end:
                self.done.set()
        if changed:
            self.changes += 1
            self.draw()
            if self.count is not None and self.changes >= self.count:
                self.done.set()

    def _set_run(self, run: Any) -> bool:
        if run == self.run:
            return False
        self.run = run
        return True

    def _note(self, ev: Recovered | Stale | Ended) -> None:
        line = event_record(ev)
        assert line is not None  # every one of these has a record
        if self.as_json:
            click.echo(json.dumps(line))
        elif not self.tty:
            click.echo(note_text(line))

    def draw(self) -> None:
        with self._lock:
            shown = self.view.shown()
            if self.as_json:
                click.echo(
                    json.dumps({"display": str(self.view.mode), "run": self.run, "shown": shown})
                )
                return
            width = shutil.get_terminal_size((100, 24)).columns
            lines = render(self.view.mode, shown, self.run, time.time(), width)
            if self.tty:
                click.echo("\x1b[H\x1b[2J" + "\n".join(lines))
            else:
                click.echo("\n".join(lines) + "\n")
