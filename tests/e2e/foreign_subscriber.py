"""A subscriber written from docs/PROTOCOL.md alone: pyzmq and msgpack, nothing of pipecast.

    python foreign_subscriber.py STATUS SYNC NODE_PUBLIC_KEY KEY_FILE PREFIX COUNT [WAIT]

Authenticates with CURVE (its own certificate, the node's public key), takes
a snapshot of PREFIX, prints it as one JSON line, then prints each update
it applies as a JSON line, in seq order per topic, mending any gap by a
replay; exits after COUNT updates, or with an error after WAIT seconds (10)
without an answer. Stands for a client in another language.
"""

import json
import sys

import msgpack
import zmq
import zmq.auth

status_ep, sync_ep, node_public, key_file, prefix, count = sys.argv[1:7]
wait_ms = int(float(sys.argv[7] if len(sys.argv) > 7 else 10) * 1000)
public, secret = zmq.auth.load_certificate(key_file)
ctx = zmq.Context()


def curve(sock: zmq.Socket) -> zmq.Socket:
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.curve_serverkey = node_public.encode()
    return sock


sub = curve(ctx.socket(zmq.SUB))
sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
sub.connect(status_ep)
sync = curve(ctx.socket(zmq.DEALER))
sync.connect(sync_ep)


def ask(request: dict) -> dict:
    sync.send_multipart([b"", msgpack.packb({"v": 2, **request})])
    if not sync.poll(wait_ms):
        sys.exit("no answer from the sync socket (is this key allowed?)")
    reply = msgpack.unpackb(sync.recv_multipart()[-1])
    if reply.get("op") == "error":
        sys.exit(f"sync error: {reply['error']}")
    return reply


# join: subscribe first, then snapshot; updates the snapshot already holds are dropped
snapshot = ask({"op": "snapshot", "topics": [prefix]})
epoch, last = snapshot["epoch"], dict(snapshot["heads"])
state: dict = {}
for topic, key, _seq, data in snapshot["items"]:
    state.setdefault(topic, {})[key] = data
print(json.dumps({"snapshot": state}), flush=True)


def apply(topic: str, body: dict) -> None:
    state.setdefault(topic, {})[body["key"]] = body["data"]
    last[topic] = body["seq"]
    print(json.dumps({"topic": topic, "seq": body["seq"], "data": body["data"]}), flush=True)


applied = 0
while applied < int(count):
    if not sub.poll(wait_ms):
        sys.exit("no update in time")
    topic_frame, payload = sub.recv_multipart()
    topic, message = topic_frame.decode(), msgpack.unpackb(payload)
    # a batch is an array of updates of this topic, applied in order as if each came alone
    for body in message if isinstance(message, list) else [message]:
        if body.get("v") != 2 or body["epoch"] != epoch:
            sys.exit("the node restarted: a real client would snapshot again")
        seq = body["seq"]
        if seq <= last.get(topic, 0):
            continue  # a duplicate, or already in the snapshot
        if seq > last.get(topic, 0) + 1:  # a gap: replay what was missed, in order
            after = last.get(topic, 0)
            for missed in ask({"op": "replay", "topic": topic, "after": after})["items"]:
                if missed["seq"] < seq:
                    apply(topic, missed)
                    applied += 1
        apply(topic, body)
        applied += 1
