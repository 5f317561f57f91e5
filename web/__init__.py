"""pipecast.web: the live state in a browser, exact after every reconnect.

A `Gateway` is a remote client of one node (its own key) holding one
replica, whose events it encodes once into a bounded, resumable stream
(`StreamLog`); `WebApp` serves pages, that stream over SSE and the control
API (Starlette); `WebServer` runs it with uvicorn, standalone or beside a
node. docs/web.md tells how to run it and what the stream says.
"""

from ._access import Access, new_token
from ._app import CONTROL_OPS, WebApp
from ._chart import probe_chart
from ._gateway import Gateway, GatewayConfig, to_json
from ._server import HttpAddress, WebServer, check_exposure, gateway_server, parse_http
from ._stream import Resume, ResumeKind, StreamLog, parse_event_id

__all__ = [
    "CONTROL_OPS",
    "Access",
    "Gateway",
    "GatewayConfig",
    "HttpAddress",
    "Resume",
    "ResumeKind",
    "StreamLog",
    "WebApp",
    "WebServer",
    "check_exposure",
    "gateway_server",
    "new_token",
    "parse_event_id",
    "parse_http",
    "probe_chart",
    "to_json",
]
