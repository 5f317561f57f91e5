"""A pykka actor whose mailbox also wakes for a timer and, optionally, a socket.

pykka's own inbox only wakes for messages. Actors that must also act on a
clock (presence expiry, the watch hub's throttles, a network runner's pace)
or serve a ZeroMQ socket in their own thread use `PollingInbox` instead,
through pykka's inbox protocol; this base is the one place that does so.
"""

from __future__ import annotations

import pykka
import zmq

from ._inbox import PollingInbox

__all__ = ["PollingActor"]


class PollingActor(pykka.ThreadingActor):
    """Base of actors handed `TimerDue` (and `SocketReadable`) beside their messages.

    Call `poll_every(interval, socket)` in the actor's thread once it runs
    (`on_start` or a later hook) and `stop_polling()` however it ends; both
    are idempotent. It defines no `__init__`, so it mixes in front of any
    other actor base (`class Tracker(PollingActor, Supervised)`).
    """

    @staticmethod
    def _create_actor_inbox() -> PollingInbox:
        return PollingInbox()

    @property
    def inbox(self) -> PollingInbox:
        inbox = self.actor_inbox
        assert isinstance(inbox, PollingInbox)  # made by _create_actor_inbox
        return inbox

    def poll_every(self, interval: float, socket: zmq.Socket[bytes] | None = None) -> None:
        """Fire `TimerDue` every `interval` s, and `SocketReadable` for `socket`. Actor thread."""
        self.inbox.attach(socket, interval)

    def stop_polling(self) -> None:
        """Stop the timer and the socket watch (before the socket closes). Actor thread."""
        self.inbox.detach()

    def mailbox_depth(self) -> int:
        """Messages waiting in the mailbox (telemetry; any thread, a snapshot)."""
        return self.inbox.depth()
