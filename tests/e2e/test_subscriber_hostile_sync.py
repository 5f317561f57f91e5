"""A sync socket that answers what was not asked cannot make a subscriber spin."""

from __future__ import annotations

import threading

import zmq

from pipecast.testing import wait_for
from pipecast.transport import Subscriber, encode_heartbeat, encode_snapshot_reply


def test_an_unasked_sync_reply_is_dropped_and_the_subscriber_does_not_spin() -> None:
    ctx = zmq.Context()
    pub, router = ctx.socket(zmq.PUB), ctx.socket(zmq.ROUTER)
    for sock in (pub, router):
        sock.linger = 0
        sock.bind("tcp://127.0.0.1:*")
    stop = threading.Event()

    def hostile_node() -> None:
        # answers every request twice: the second reply is one nobody asked for
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        while not stop.is_set():
            if poller.poll(50):
                ident, *_ = router.recv_multipart()
                reply = encode_snapshot_reply("e1", {}, [])
                router.send_multipart([ident, b"", reply])
                router.send_multipart([ident, b"", reply])
            pub.send_multipart([b"_hb", encode_heartbeat("e1", 0.0, {})])

    node = threading.Thread(target=hostile_node)
    node.start()
    sub = Subscriber(
        pub.get_string(zmq.LAST_ENDPOINT), router.get_string(zmq.LAST_ENDPOINT), ["t"]
    ).start()
    try:
        sub.wait_synced(10)
        assert wait_for(lambda: sub.statistics().malformed >= 1, 10)  # the extra one, counted
        woken = sub.statistics().wakeups
        # spinning on an unread reply would wake it thousands of times a second
        assert not wait_for(lambda: sub.statistics().wakeups > woken + 200, 1.0)
        assert sub.replica.synced
    finally:
        sub.stop()
        stop.set()
        node.join(10)
        pub.close()
        router.close()
        ctx.term()
