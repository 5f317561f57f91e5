"""What a relay republishes for one upstream: its replica's events as plain publications. Pure.

A relay serves downstream under its own epoch and sequence, so upstream
recoveries (gaps, lost history, a restarted node) must reach downstream as
ordinary key changes: an upstream `Update` is the same change of the same key
(under the upstream's name prefix, if any); an upstream `Reset` (a topic's
state replaced wholesale) becomes the changes that turn what downstream
holds into the new state — new and changed keys set, vanished keys deleted —
never a replay of history. The relay's own view of each upstream (stale,
live, ended) is key `upstream` of topic `relay/<name>`. The upstream's
`node` topic (where it listens) is the one value rewritten: downstream, it
says where this relay listens, which upstream control it forwards presence
to, and the control of the node at the root of the chain.

`RelayMirror` keeps the state it has republished, so a reset costs only the
keys that differ. No sockets, threads or clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipecast.transport import NODE_TOPIC, Ended, Recovered, Reset, Stale, Update

from ._presence import reachable_control

__all__ = ["RELAY_ACTOR_PREFIX", "Publication", "RelayMirror", "relay_topic"]

# a relay's own actors' states: apart from the `actor/` topics of the nodes it mirrors
RELAY_ACTOR_PREFIX = "relay/actor/"


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    key: str
    data: dict[str, Any] | None  # None deletes the key


def relay_topic(name: str) -> str:
    return f"relay/{name}"


class RelayMirror:
    """One upstream's events -> downstream publications (see module docstring)."""

    def __init__(
        self,
        name: str,
        prefix: str = "",
        serving: Mapping[str, str] | None = None,
        upstream_status: str = "",
    ) -> None:
        self.name = name
        self.prefix = prefix  # "" keeps topic names; "NAME/" puts them under the name
        # the relay's own endpoints (status, sync, control), and the status endpoint
        # it reaches this upstream at: what the upstream's `node` topic becomes
        self.serving = dict(serving or {})
        self.upstream_status = upstream_status
        self._held: dict[str, dict[str, Any]] = {}  # downstream topic -> key -> value
        self.status = ""  # connecting, live, stale, ended

    def hello(self) -> list[Publication]:
        """The first word about this upstream: connecting, until its snapshot."""
        return self._status("connecting")

    def state(self) -> dict[str, dict[str, Any]]:
        """What this mirror has republished (downstream topic names)."""
        return {t: dict(kv) for t, kv in self._held.items() if kv}

    def on_event(self, ev: object) -> list[Publication]:
        if isinstance(ev, Update):
            return self._set(self.prefix + ev.topic, ev.key, ev.data)
        if isinstance(ev, Reset):
            out: list[Publication] = []
            for topic, kv in ev.state.items():
                out += self._replace(self.prefix + topic, dict(kv))
            return out + self._status("live")
        if isinstance(ev, Stale):
            return self._status("stale", silent_for=round(ev.silent_for, 1))
        if isinstance(ev, Recovered):
            return self._status("live")
        if isinstance(ev, Ended):
            return self._status("ended")
        return []

    def _set(self, topic: str, key: str, data: Any) -> list[Publication]:
        if topic.startswith(RELAY_ACTOR_PREFIX):
            return []  # an upstream relay's own actors: this relay publishes its own there
        if topic == self.prefix + NODE_TOPIC and key == "endpoints" and type(data) is dict:
            data = self._endpoints(data)
        held = self._held.setdefault(topic, {})
        if data is None:
            if key not in held:
                return []
            del held[key]
        else:
            if held.get(key) == data:
                return []
            held[key] = data
        return [Publication(topic, key, data)]

    def _replace(self, topic: str, new: dict[str, Any]) -> list[Publication]:
        held = self._held.get(topic, {})
        out = [Publication(topic, key, None) for key in held if key not in new]
        for key in [k for k in held if k not in new]:
            del held[key]
        for key, value in new.items():
            out += self._set(topic, key, value)
        return out

    def _endpoints(self, upstream: dict[str, Any]) -> dict[str, Any]:
        """The upstream's `node` endpoints, as this relay serves them: where to reach
        this relay, the control of the upstream it forwards presence to, and the
        control of the node at the root of the chain (what `status` shows)."""
        upstream_control = reachable_control(upstream.get("control"), self.upstream_status)
        node_control = upstream.get("node_control")
        return {
            **self.serving,
            "upstream_control": upstream_control,
            "node_control": node_control if type(node_control) is str else upstream_control,
        }

    def _status(self, status: str, **extra: Any) -> list[Publication]:
        if status == self.status and not extra:
            return []
        self.status = status
        value = {"upstream": self.name, "status": status, **extra}
        return [Publication(relay_topic(self.name), "upstream", value)]
