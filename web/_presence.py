"""Each open page is a watcher in the node's presence, renewed in one request for all.

The gateway joins a watcher for every live stream (an open page) with the
page's path and browser in its metadata, renews them all with one
`presence.heartbeat` of many `watchers` every `ttl / 3` seconds, joins again
the ones the node no longer knows (it restarted), and leaves when the page
closes. Control calls block, so they run in worker threads; a failed call is
logged and retried at the next beat, never raised into a page's stream.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from pipecast.transport import ControlClient, PipecastError

__all__ = ["PagePresence"]

log = logging.getLogger("pipecast.web")


class PagePresence:
    """The pages' watchers (event loop thread only)."""

    def __init__(self, client: ControlClient, ttl: float = 15.0) -> None:
        self.client = client
        self.ttl = ttl
        self._pages: dict[str, tuple[str, dict[str, Any]]] = {}  # watcher -> (topic, meta)
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def __len__(self) -> int:
        return len(self._pages)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for watcher in list(self._pages):
            await self.leave(watcher)

    async def join(self, page: str, agent: str, topic: str = "*") -> str:
        """A watcher for one open page (a kiosk: on its installation's topic)."""
        watcher = f"web-{secrets.token_hex(6)}"
        meta = {"client": "browser", "page": page[:200], "agent": agent[:200]}
        self._pages[watcher] = (topic, meta)
        await self._call("presence.join", watcher=watcher, topic=topic, meta=meta, ttl=self.ttl)
        return watcher

    async def leave(self, watcher: str) -> None:
        if self._pages.pop(watcher, None) is not None:
            await self._call("presence.leave", watcher=watcher)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            if not self._pages:
                continue
            answer = await self._call("presence.heartbeat", watchers=list(self._pages))
            for watcher in (answer or {}).get("unknown", ()):
                if watcher in self._pages:  # the node forgot it (it restarted): join again
                    topic, meta = self._pages[watcher]
                    await self._call(
                        "presence.join", watcher=watcher, topic=topic, meta=meta, ttl=self.ttl
                    )

    async def _call(self, op: str, **args: Any) -> Any:
        try:
            return await asyncio.to_thread(self.client.call, op, **args)
        except PipecastError as exc:
            self.failures += 1
            log.warning("web presence: %s failed: %s", op, exc)
            return None
