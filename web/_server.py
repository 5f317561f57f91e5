"""Serving the gateway with uvicorn: on its own (`pipecast web`) or inside a node's process.

`WebServer` binds its socket itself, so the port (0: any free one) is known
before uvicorn starts, and says it is up (`on_up`, with the URL and token)
only once the gateway holds the node's state. `serve` blocks in the calling
thread (uvicorn handles SIGINT/SIGTERM there when it is the main thread);
`start_in_thread` runs it beside a node and `stop` ends it.

Who may listen where: loopback (127.0.0.0/8, ::1, localhost) always; any
other address only with TLS (`tls_cert` and `tls_key`) or `insecure`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from pipecast.transport import BadRequest, ControlClient

from ._access import Access
from ._app import WebApp
from ._gateway import Gateway, GatewayConfig

__all__ = ["HttpAddress", "WebServer", "check_exposure", "gateway_server", "parse_http"]


@dataclass(frozen=True, slots=True)
class HttpAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_http(text: str) -> HttpAddress:
    """`HOST:PORT` (IPv6 in brackets) -> HttpAddress; `BadRequest` if it is not one."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise BadRequest(f"--http {text!r} is not HOST:PORT (e.g. 127.0.0.1:8765)")
    if len(host) > 253:
        raise BadRequest("--http host is too long")
    return HttpAddress(host, int(port))


def check_exposure(address: HttpAddress, tls: bool, insecure: bool) -> None:
    """`BadRequest` for a non-loopback address without TLS, unless `insecure`."""
    if not address.loopback and not tls and not insecure:
        raise BadRequest(
            f"--http {address.host} is reachable from other machines: give --tls-cert and "
            "--tls-key, or --insecure to serve plain HTTP there anyway"
        )


def gateway_server(
    config: GatewayConfig,
    address: HttpAddress,
    *,
    token: str,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    insecure: bool = False,
    images: Path | None = None,
    presence_ttl: float = 15.0,
) -> WebServer:
    """A gateway for the node `config` names, on `address` (the pieces, assembled once
    for the CLI and the test harness). `BadRequest` for an exposure or token refused."""
    if (tls_cert is None) != (tls_key is None):
        raise BadRequest("--tls-cert and --tls-key go together")
    web = WebApp(
        Gateway(config),
        Access(token),
        ControlClient(config.control, config.timeout, config.security),
        secure_cookie=tls_cert is not None,
        images=images,  # may not exist yet: images appear as networks run
        presence_ttl=presence_ttl,
    )
    return WebServer(web, address, tls_cert=tls_cert, tls_key=tls_key, insecure=insecure)


class WebServer:
    """One gateway app on one address (see module docstring)."""

    def __init__(
        self,
        web: WebApp,
        address: HttpAddress,
        *,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        insecure: bool = False,
    ) -> None:
        check_exposure(address, tls_cert is not None and tls_key is not None, insecure)
        self.web = web
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((address.host, address.port))
        except OSError as exc:
            self.sock.close()
            raise BadRequest(
                f"cannot listen on {address.host}:{address.port}: {exc.strerror}"
            ) from None
        self.sock.listen(512)
        self.port = int(self.sock.getsockname()[1])
        scheme = "https" if tls_cert else "http"
        host = f"[{address.host}]" if ":" in address.host else address.host
        self.base = f"{scheme}://{host}:{self.port}"
        self.url = f"{self.base}/?token={web.access.token}"
        config = uvicorn.Config(
            web.app,
            log_level="warning",
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def serve(self, on_up: Callable[[str], None] | None = None) -> None:
        """Serve until stopped or signalled; `on_up(url)` once the gateway holds the
        node's state. Re-raises why the start failed (the node unreachable, say)."""
        self.web.on_up = (lambda: on_up(self.url)) if on_up else None
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()
        if self.web.startup_error is not None:
            raise self.web.startup_error

    def start_in_thread(self, timeout: float = 15.0) -> str:
        """Serve in a thread; blocks until up (re-raising a failed start). The URL."""
        up = threading.Event()
        self.web.on_up = up.set
        self._thread = threading.Thread(
            target=self._serve_quietly, name="pipecast-web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not up.wait(0.05):  # the event, or the thread's end, whichever first
            if not self._thread.is_alive() or time.monotonic() > deadline:
                break
        if self.web.startup_error is not None:
            raise self.web.startup_error
        if not up.is_set():
            self.stop()
            raise BadRequest(f"the web gateway did not come up within {timeout} s")
        return self.url

    def _serve_quietly(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def stop(self, timeout: float = 10.0) -> None:
        """End the open streams, ask uvicorn to finish, and wait for it."""
        self.web.gateway.close_streams()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
