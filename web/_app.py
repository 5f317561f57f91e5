"""The web gateway's HTTP face (Starlette): pages, the SSE stream, and the control API.

Every route but `/static` asks for a session (`_access.py`): a page opened
with the right `?token=` gets one and is redirected to itself without the
token; anything else gets 401. Requests that change something are POSTs of
JSON with the session's CSRF token in `X-CSRF-Token` and an Origin, if any,
of this host; only the ops in `CONTROL_OPS` pass, forwarded to the node with
the gateway's key, so a gateway whose key has role watch can change nothing
(and its pages show no controls). Errors are JSON `{"error": {type,
message}}` with a 4xx/5xx status; no exception escapes a handler.

Handlers run on the event loop; control calls block, so they run in worker
threads (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from pipecast.actors import JobState
from pipecast.transport import ControlClient, PipecastError, RemoteError

from ._access import COOKIE, Access, Session
from ._chart import probe_chart
from ._gateway import Gateway, to_json
from ._presence import PagePresence
from ._stream import ResumeKind

__all__ = ["CONTROL_OPS", "WebApp"]

log = logging.getLogger("pipecast.web")
HERE = Path(__file__).parent

# what a page may ask the node to do (role operate); everything else is refused here
CONTROL_OPS = frozenset(
    {
        *("pause", "suspend", "resume", "cancel", "retry", "enqueue", "run", "run.stop"),
        *("installations.add", "installations.switch", "installations.remove"),
    }
)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_BODY = 64 * 1024
_IMAGE = re.compile(r"[0-9a-f]{64}\.png")


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: Any


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


class WebApp:
    """The gateway's Starlette application and what it serves (see module docstring)."""

    def __init__(
        self,
        gateway: Gateway,
        access: Access,
        client: ControlClient,
        *,
        secure_cookie: bool = False,
        images: Path | None = None,
        presence_ttl: float = 15.0,
    ) -> None:
        self.gateway = gateway
        self.access = access
        self.client = client
        self.secure_cookie = secure_cookie
        self.images = images
        self.presence = PagePresence(client, presence_ttl)
        self.role: str | None = None
        self.on_up: Callable[[], None] | None = None  # told once the state is held
        self.startup_error: BaseException | None = None
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.app = Starlette(
            routes=[
                Route("/", self._page("overview")),
                Route("/jobs", self._page("jobs")),
                Route("/jobs/{job_id:int}", self._job_page),
                Route("/networks", self._page("networks")),
                Route("/display/{name}", self._display),
                Route("/api/snapshot", self._guard(self._snapshot)),
                Route("/api/stream", self._stream),
                Route("/api/jobs", self._guard(self._jobs)),
                Route("/api/jobs/{job_id:int}", self._guard(self._job)),
                Route("/api/control", self._guard(self._control), methods=["POST"]),
                Route("/api/stats", self._guard(self._stats)),
                Route("/images/{name}", self._guard(self._image)),
                Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
            ],
            lifespan=self._lifespan,
        )

    # -- life ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self.gateway.start, loop)
            pong = await asyncio.to_thread(self.client.call, "ping")
        except BaseException as exc:  # said by whoever started the server
            self.startup_error = exc
            raise
        self.role = pong.get("role")
        self.presence.start()
        if self.on_up is not None:
            self.on_up()
        try:
            yield
        finally:
            await self.presence.stop()
            await asyncio.to_thread(self.gateway.stop)

    # -- access --------------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self.access.session(request.cookies.get(COOKIE), time.time())

    def _login(self, request: Request) -> Response | None:
        """A token in the query: a session cookie and the same page without the token."""
        token = request.query_params.get("token")
        if token is None:
            return None
        session = self.access.open(token, time.time())
        if session is None:
            return self._denied(request)
        query = "&".join(f"{k}={v}" for k, v in request.query_params.items() if k != "token")
        response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
        response.set_cookie(
            COOKIE,
            session.cookie,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
            path="/",
        )
        return response

    def _signed_in(self, request: Request) -> Session | Response:
        """A page's session: signed in by its `?token=` (a redirect without it), by its
        cookie, or neither (401)."""
        login = self._login(request)
        if login is not None:
            return login
        return self._session(request) or self._denied(request)

    def _denied(self, request: Request) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/images/"):
            return _error(401, "unauthorized", "no session: open the link the gateway printed")
        return self.templates.TemplateResponse(request, "denied.html", {}, status_code=401)

    def _guard(
        self, handler: Callable[[Request, Session], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return self._denied(request)
            try:
                return await handler(request, session)
            except RemoteError as exc:
                status = 403 if exc.wire_type == "unauthorized" else 400
                return _error(status, exc.wire_type, exc.message)
            except PipecastError as exc:
                return _error(502, "node_unreachable", str(exc))
            except Exception:  # never into the server loop: logged, answered
                log.exception("web handler %s failed", request.url.path)
                return _error(500, "internal", "the gateway failed; see its log")

        return guarded

    # -- pages ---------------------------------------------------------------------------

    def _context(self, session: Session, **extra: Any) -> dict[str, Any]:
        states = [s.value for s in JobState]
        return {"csrf": session.csrf, "operate": self.role == "operate", "states": states, **extra}

    def _page(self, name: str) -> Callable[[Request], Awaitable[Response]]:
        async def page(request: Request) -> Response:
            session = self._signed_in(request)
            if not isinstance(session, Session):
                return session
            return self.templates.TemplateResponse(
                request, f"{name}.html", self._context(session, page=name)
            )

        return page

    async def _display(self, request: Request) -> Response:
        """A kiosk: one installation full-screen, following its switches."""
        session = self._signed_in(request)
        if not isinstance(session, Session):
            return session
        name = request.path_params["name"]
        if not _NAME.fullmatch(name):
            return _error(404, "not_found", "an installation's name is 1-64 of A-Z a-z 0-9 _ -")
        context = self._context(session, page="display", installation=name)
        return self.templates.TemplateResponse(request, "display.html", context)

    async def _job_page(self, request: Request) -> Response:
        session = self._signed_in(request)
        if not isinstance(session, Session):
            return session
        job_id = int(request.path_params["job_id"])
        try:
            job = await asyncio.to_thread(self.client.call, "job", id=job_id)
        except RemoteError as exc:
            return self.templates.TemplateResponse(
                request,
                "job.html",
                self._context(session, page="job", job=None, error=exc.message, job_id=job_id),
                status_code=404 if exc.wire_type == "bad_request" else 400,
            )
        chart = probe_chart(job.get("probes") or [], job.get("search") or {}, job.get("crf"))
        context = self._context(
            session,
            page="job",
            job=job,
            chart=chart,
            job_id=job_id,
            error=None,
            job_json=json.dumps(job, indent=2, default=str),
        )
        return self.templates.TemplateResponse(request, "job.html", context)

    # -- the API -------------------------------------------------------------------------

    async def _snapshot(self, request: Request, session: Session) -> Response:
        n, doc = self.gateway.snapshot()
        return Response(
            to_json({**doc, "id": self.gateway.log.event_id(n)}), media_type="application/json"
        )

    async def _jobs(self, request: Request, session: Session) -> Response:
        args: dict[str, Any] = {"limit": 500}
        state = request.query_params.get("state")
        if state:
            args["state"] = state.split(",")[:16]
        return JSONResponse(await asyncio.to_thread(self.client.call, "jobs", **args))

    async def _job(self, request: Request, session: Session) -> Response:
        job_id = int(request.path_params["job_id"])
        return JSONResponse(await asyncio.to_thread(self.client.call, "job", id=job_id))

    async def _stats(self, request: Request, session: Session) -> Response:
        stats = {**self.gateway.statistics(), "pages": len(self.presence)}
        stats["sessions_opened"] = self.access.opened
        stats["refused"] = self.access.refused
        return JSONResponse(stats)

    async def _image(self, request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        if self.images is None or not _IMAGE.fullmatch(name):
            return _error(404, "not_found", "no such image here")
        path = self.images / name
        if not path.is_file():
            return _error(404, "not_found", "no such image here")
        return FileResponse(path, media_type="image/png")

    async def _control(self, request: Request, session: Session) -> Response:
        if not self.access.check_csrf(session, request.headers.get("x-csrf-token")):
            return _error(403, "csrf", "missing or wrong X-CSRF-Token")
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            return _error(403, "csrf", f"requests from {origin} are not accepted")
        answer = await self._read_op(request)
        if answer.status != 200:
            return _error(answer.status, "bad_request", str(answer.body))
        op, args = answer.body
        result = await asyncio.to_thread(self.client.call, op, **args)
        return JSONResponse({"result": result})

    async def _read_op(self, request: Request) -> _Answer:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _Answer(415, "send JSON (Content-Type: application/json)")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _Answer(413, f"a request is at most {MAX_BODY} bytes")
        try:
            doc = json.loads(body)
        except ValueError:
            return _Answer(400, "the body is not JSON")
        if type(doc) is not dict or type(doc.get("op")) is not str:
            return _Answer(400, 'send {"op": NAME, ...its arguments}')
        op = doc.pop("op")
        if op not in CONTROL_OPS:
            return _Answer(400, f"op {op!r} is not one the web may ask")
        if self.role != "operate":
            return _Answer(403, "this gateway's key has role watch: it changes nothing")
        return _Answer(200, (op, doc))

    # -- the stream ----------------------------------------------------------------------

    async def _stream(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._denied(request)
        last = request.headers.get("last-event-id") or request.query_params.get("last_id")
        resume = self.gateway.resume(last)
        page = request.query_params.get("page", "")
        agent = request.headers.get("user-agent", "")
        screen = request.query_params.get("installation", "")
        topic = f"installation/{screen}" if _NAME.fullmatch(screen) else "*"
        return EventSourceResponse(self._events(resume, page, agent, topic), ping=15)

    async def _events(
        self, resume: Any, page: str, agent: str, topic: str
    ) -> AsyncIterator[dict[str, Any]]:
        gw = self.gateway
        watcher = await self.presence.join(page, agent, topic)
        try:
            if resume.kind is ResumeKind.REPLAY:
                cursor = resume.at  # the loop below sends what followed, in batches
            else:
                cursor, doc = gw.snapshot()
                doc["reloaded"] = resume.kind is ResumeKind.RELOAD
                doc["why"] = resume.why
                doc["operate"] = self.role == "operate"
                yield {
                    "event": "snapshot",
                    "id": gw.log.event_id(cursor),
                    "retry": 500,
                    "data": to_json(doc),
                }
            while not gw.closing:
                entries = gw.since(cursor)
                if entries is None:  # too far behind: cut; the page reconnects and reloads
                    gw.count_cut()
                    yield {"event": "cut", "data": '{"why":"too far behind"}'}
                    return
                if entries:
                    cursor = entries[-1][0]
                    data = "[" + ",".join(t for _, t in entries) + "]"
                    yield {"event": "batch", "id": gw.log.event_id(cursor), "data": data}
                    continue
                await gw.wait_beyond(cursor, 30.0)
        finally:
            await self.presence.leave(watcher)
