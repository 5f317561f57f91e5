"""pipecast.actors.relay: serve upstream nodes' topics to many subscribers, as a node would.

`RelayMirror` (pure) turns an upstream replica's events into publications;
`Relay` follows each upstream with a `Subscriber` and republishes through its
own bridge, under its own epoch, with its own keys; its control socket answers
ping, status and presence, forwarding its watchers' presence to the nodes
(`PresenceRoutes`, pure). See docs/relay.md.
"""

from ._control import RELAY_OPS
from ._mirror import RELAY_ACTOR_PREFIX, Publication, RelayMirror, relay_topic
from ._presence import Forward, PresenceRoutes, presence_list, reachable_control
from ._relay import Relay, RelayConfig, Upstream, parse_upstream

__all__ = [
    "RELAY_ACTOR_PREFIX",
    "RELAY_OPS",
    "Forward",
    "PresenceRoutes",
    "Publication",
    "Relay",
    "RelayConfig",
    "RelayMirror",
    "Upstream",
    "parse_upstream",
    "presence_list",
    "reachable_control",
    "relay_topic",
]
