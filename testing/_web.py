"""Driving the web gateway from tests: start one beside a node, read its SSE stream, sign in.

`start_test_web` serves a gateway for an in-process node on a free loopback
port (in a thread; `stop()` it). `WebClient` is a browser without a browser:
it exchanges the token for the session cookie and keeps it, reads the CSRF
token from a page, and posts control requests. `SseReader` reads the stream
in a thread (stdlib `http.client`: no extra dependency), recording every
event; it can be told not to read, to play a slow client.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pipecast.actors import Node
from pipecast.transport import ClientSecurity, ControlClient
from pipecast.web import (
    GatewayConfig,
    WebServer,
    gateway_server,
    new_token,
    parse_http,
)

__all__ = [
    "SseEvent",
    "SseReader",
    "WebClient",
    "apply_record",
    "browser_watchers",
    "start_test_web",
]


def start_test_web(
    node: Node,
    *,
    security: ClientSecurity | None = None,
    token: str | None = None,
    http: str = "127.0.0.1:0",
    **gateway: Any,
) -> WebServer:
    """A gateway for `node` (the owner's key unless `security`), up and serving."""
    assert node.bridge is not None
    keys = security or ClientSecurity.owner(node.config.data_dir)
    config = GatewayConfig(
        node.bridge.status_endpoint,
        node.bridge.sync_endpoint,
        node.control_endpoint,
        keys,
        **gateway,
    )
    server = gateway_server(
        config,
        parse_http(http),
        token=token or new_token(),
        images=node.config.data_dir / "images",
        presence_ttl=3.0,
    )
    server.start_in_thread()
    return server


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    id: str | None
    data: Any


class WebClient:
    """Signed in to a gateway at `base` with `token` (see module docstring)."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = str(parts.hostname), int(parts.port or 80)
        status, headers, _ = self.request("GET", f"/?token={token}")
        cookie = headers.get("set-cookie", "")
        if status != 303 or "pipecast_session=" not in cookie:
            raise AssertionError(f"sign-in failed: {status} {headers}")
        self.set_cookie = cookie
        self.cookie = cookie.split(";")[0]
        _, _, page = self.request("GET", "/")
        found = re.search(rb'name="csrf-token" content="([^"]+)"', page)
        assert found is not None
        self.csrf = found.group(1).decode()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            sent = dict(headers or {})
            if getattr(self, "cookie", None) and "Cookie" not in sent:
                sent["Cookie"] = self.cookie
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def control(self, op: str, csrf: str | None = None, **args: Any) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "X-CSRF-Token": csrf or self.csrf}
        status, _, body = self.request(
            "POST", "/api/control", json.dumps({"op": op, **args}).encode(), headers
        )
        return status, json.loads(body)

    def stream(self, last_event_id: str | None = None, read: bool = True) -> SseReader:
        return SseReader(self, last_event_id, read).start()


@dataclass
class SseReader:
    """One SSE connection read in a thread (see module docstring)."""

    client: WebClient
    last_event_id: str | None = None
    read: bool = True
    events: list[SseEvent] = field(default_factory=list)
    ended: bool = False

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._reading = threading.Event()
        if self.read:
            self._reading.set()
        self._conn = http.client.HTTPConnection(self.client.host, self.client.port, timeout=30)
        self._thread = threading.Thread(target=self._run, name="test-sse", daemon=True)

    def start(self) -> SseReader:
        headers = {"Cookie": self.client.cookie, "Accept": "text/event-stream"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        self._conn.request("GET", "/api/stream?page=/test", headers=headers)
        self.response = self._conn.getresponse()
        self._thread.start()
        return self

    def resume_reading(self) -> None:
        self._reading.set()

    def stop(self) -> None:
        self._reading.set()
        sock = self._conn.sock
        if sock is not None:  # ends the reader's readline; it closes nothing itself
            with contextlib.suppress(OSError):
                sock.shutdown(2)
        if self._thread.is_alive():
            self._thread.join(10)
        self._conn.close()

    def _run(self) -> None:
        event, eid = "message", None
        data: list[str] = []
        self._reading.wait()
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        self._record(SseEvent(event, eid, json.loads("\n".join(data))))
                    event, eid, data = "message", None, []
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        event = value
                    elif name == "id":
                        eid = value
                    elif name == "data":
                        data.append(value)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def _record(self, ev: SseEvent) -> None:
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[SseReader], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return predicate(self)
                self._cond.wait(left)
            return True

    @property
    def last_id(self) -> str | None:
        with self._cond:
            return next((e.id for e in reversed(self.events) if e.id), None)

    def state(self) -> dict[str, dict[str, Any]]:
        """The state a page would hold: the snapshot with every batch applied."""
        state: dict[str, dict[str, Any]] = {}
        with self._cond:
            events = list(self.events)
        for ev in events:
            if ev.event == "snapshot":
                state = {t: dict(kv) for t, kv in ev.data["state"].items()}
            elif ev.event == "batch":
                for rec in ev.data:
                    apply_record(state, rec)
        return state


def apply_record(state: dict[str, dict[str, Any]], rec: dict[str, Any]) -> None:
    """One stream record onto a page's state, as pipecast.js applies it."""
    if rec["t"] == "u":
        kv = state.setdefault(rec["topic"], {})
        if rec["data"] is None:
            kv.pop(rec["key"], None)
            if not kv:
                del state[rec["topic"]]
        else:
            kv[rec["key"]] = rec["data"]
    elif rec["t"] == "reset":
        for topic, kv in rec["state"].items():
            if kv:
                state[topic] = dict(kv)
            else:
                state.pop(topic, None)


def browser_watchers(client: ControlClient) -> int:
    """How many watchers the node `client` asks counts as open browser pages (the
    gateway joins each page with `client: browser` in its meta)."""
    listed = client.call("presence.list")
    return sum(
        1
        for entry in listed.values()
        for meta in entry["watchers"].values()
        if meta.get("client") == "browser"
    )
