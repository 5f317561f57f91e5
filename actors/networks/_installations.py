"""Installations: named screens, each showing one network in one display mode, switched live.

PANIC!'s gallery screens, kept in the node's store: an installation is a
name, the network it shows and how (`grid:RxC` or
`single:OFFSET:STRIDE[:invoking]`). The `Installations` actor owns the table
(its own thread, its own SQLite connection) and publishes each one as key
`config` of topic `installation/<name>` (deleted when removed), so a kiosk
page that follows the stream switches the moment the topic changes, without
a reload, drawing the new network from the state it already holds. Screens
join presence on that topic, so its viewer count says how many show it.

Ops arrive as `InstallationRequest`s from the control server with a reply
callable; a bad request is answered with a typed error and changes nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from pipecast.actors.runtime import BridgeHandle, Reply, Store, Supervised
from pipecast.transport import BadRequest, ErrorType, PipecastError, parse_display

from ._ops import UnknownNetwork

__all__ = [
    "INSTALLATIONS",
    "INSTALLATION_OPS",
    "Installation",
    "InstallationRequest",
    "Installations",
    "UnknownInstallation",
    "check_installation",
]

INSTALLATIONS = "installations"  # the actor's name among a node's children
INSTALLATION_OPS = frozenset(
    {"installations.list", "installations.add", "installations.switch", "installations.remove"}
)
TOPIC_PREFIX = "installation/"
MAX_INSTALLATIONS = 1000
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS installations (
    name TEXT PRIMARY KEY,
    network TEXT NOT NULL,
    display TEXT NOT NULL,
    updated REAL NOT NULL
);
"""


class UnknownInstallation(PipecastError):
    wire_type = ErrorType.BAD_REQUEST


@dataclass(frozen=True, slots=True)
class Installation:
    name: str
    network: str
    display: str  # as parse_display reads it, normalised

    def value(self, updated: float) -> dict[str, Any]:
        return {"network": self.network, "display": self.display, "updated": updated}


@dataclass(frozen=True, slots=True)
class InstallationRequest:
    op: str
    args: Mapping[str, Any]
    cid: str
    reply: Reply


def check_installation(
    name: Any, network: Any, display: Any, networks: Mapping[str, Any]
) -> Installation:
    """A valid installation, or `BadRequest`/`UnknownNetwork` naming what is wrong. Pure."""
    if type(name) is not str or not _NAME.fullmatch(name):
        raise BadRequest("an installation's name is 1 to 64 of A-Z a-z 0-9 _ -")
    if type(network) is not str or network not in networks:
        known = ", ".join(sorted(networks)) or "none"
        raise UnknownNetwork(f"no network named {network!r} (networks: {known})")
    if type(display) is not str or len(display) > 64:
        raise BadRequest("display must be grid:ROWSxCOLS or single:OFFSET:STRIDE[:invoking]")
    return Installation(name, network, _normal(display))


def _normal(display: str) -> str:
    return str(parse_display(display))  # BadRequest if it is not one


class Installations(Supervised):
    """The installations table and its topics (see module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        supervisor: pykka.ActorRef[Any] | None,
        bridge: BridgeHandle,
        store: Store,
        networks: Mapping[str, Any],
    ) -> None:
        super().__init__(name=name, supervisor=supervisor, bridge=bridge)
        self.store = store
        self.networks = networks
        self._changes = 0
        self._refused = 0

    def on_begin(self) -> None:
        self.store.ensure_schema(_SCHEMA)
        for inst, updated in self._all():
            self.bridge.publish(TOPIC_PREFIX + inst.name, "config", inst.value(updated))

    def on_end(self, error: str | None) -> None:
        self.store.release()

    def statistics(self) -> dict[str, Any]:
        return {"changes": self._changes, "refused": self._refused}

    def _all(self) -> list[tuple[Installation, float]]:
        rows = self.store.connection().execute(
            "SELECT name, network, display, updated FROM installations ORDER BY name"
        )
        return [(Installation(r[0], r[1], r[2]), float(r[3])) for r in rows]

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, InstallationRequest):
            return super().on_receive(message)
        try:
            message.reply(self._handle(message.op, message.args))
        except PipecastError as exc:
            self._refused += 1
            message.reply(exc)
        return None

    def _handle(self, op: str, args: Mapping[str, Any]) -> Any:
        if op == "installations.list":
            return {
                "installations": [
                    {"name": i.name, **i.value(updated)} for i, updated in self._all()
                ]
            }
        name = args.get("name")
        current = {i.name: i for i, _ in self._all()}
        if op == "installations.remove":
            if name not in current:
                raise UnknownInstallation(f"no installation named {name!r}")
            with self.store.transaction() as db:
                db.execute("DELETE FROM installations WHERE name=?", (name,))
            self.bridge.publish(TOPIC_PREFIX + str(name), "config", None)
            self._changes += 1
            return {"removed": name}
        if op == "installations.add":
            if name in current:
                raise BadRequest(f"installation {name!r} exists: switch it, or remove it first")
            if len(current) >= MAX_INSTALLATIONS:
                raise BadRequest(f"at most {MAX_INSTALLATIONS} installations")
            inst = check_installation(name, args.get("network"), args.get("display"), self.networks)
        else:  # switch: what is given changes, the rest stays
            if name not in current:
                raise UnknownInstallation(f"no installation named {name!r}")
            was = current[str(name)]
            inst = check_installation(
                name,
                args.get("network", was.network),
                args.get("display", was.display),
                self.networks,
            )
        updated = time.time()
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO installations (name, network, display, updated) VALUES (?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET network=excluded.network, "
                "display=excluded.display, updated=excluded.updated",
                (inst.name, inst.network, inst.display, updated),
            )
        self.bridge.publish(TOPIC_PREFIX + inst.name, "config", inst.value(updated))
        self._changes += 1
        return {"name": inst.name, **inst.value(updated)}
