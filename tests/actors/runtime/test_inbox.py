"""The polling inbox: messages, a socket and a timer in one wait; wake-ups kept cheap."""

from __future__ import annotations

import threading

from pipecast.actors import PollingInbox
from pipecast.testing import wait_for


def test_a_burst_told_to_a_sleeping_owner_wakes_it_once() -> None:
    inbox = PollingInbox()
    inbox.attach(None, interval=60.0)
    got: list[object] = []
    owner = threading.Thread(target=lambda: got.append(inbox.get().message))
    owner.start()
    try:
        assert wait_for(lambda: inbox._waiting, 10)  # asleep in poll
        for i in range(1000):
            inbox.tell(i)
        owner.join(10)
        assert got == [0]
        # the eventfd stays readable until the owner reads it: one write is enough
        assert inbox.wakeups == 1
        assert inbox.take_run(int, 2000) == list(range(1, 1000))
    finally:
        owner.join(10)
        inbox.detach()


def test_a_message_told_after_the_owner_woke_wakes_it_again() -> None:
    inbox = PollingInbox()
    inbox.attach(None, interval=60.0)
    got: list[object] = []

    def take_two() -> None:
        got.append(inbox.get().message)
        got.append(inbox.get().message)

    owner = threading.Thread(target=take_two)
    owner.start()
    try:
        assert wait_for(lambda: inbox._waiting, 10)
        inbox.tell("first")
        assert wait_for(lambda: got == ["first"] and inbox._waiting, 10)  # asleep again
        inbox.tell("second")
        owner.join(10)
        assert got == ["first", "second"]
        assert inbox.wakeups == 2
    finally:
        owner.join(10)
        inbox.detach()
