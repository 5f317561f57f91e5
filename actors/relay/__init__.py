"""pipecast.actors.relay: serve upstream nodes' topics to many subscribers, as a node would.

`RelayMirror` (pure) turns an upstream replica's events into publications;
`Relay` follows each upstream with a `Subscriber` and republishes through its
own bridge, under its own epoch, with its own keys. See docs/relay.md.
"""

from ._mirror import Publication, RelayMirror, relay_topic
from ._relay import Relay, RelayConfig, Upstream, parse_upstream

__all__ = [
    "Publication",
    "Relay",
    "RelayConfig",
    "RelayMirror",
    "Upstream",
    "parse_upstream",
    "relay_topic",
]
