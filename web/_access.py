"""Who may use the web gateway: a token for a session cookie, a CSRF token per session. Pure.

The gateway prints (or reads from `--token-file`) one secret token. A
browser that opens any page with `?token=TOKEN` gets a session: a random
session id (the cookie: HttpOnly, SameSite=Strict, Secure under TLS) and a
random CSRF token (in the page; every state-changing request must send it
back in `X-CSRF-Token`). Sessions live in memory, at most `max_sessions`
(the oldest goes first) and `idle` seconds without use. Comparisons run in
constant time. No clock inside: `now` is passed in.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Access", "Session", "new_token"]

COOKIE = "pipecast_session"
MIN_TOKEN = 16


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(slots=True)
class Session:
    sid: str
    csrf: str
    last_used: float


class Access:
    """The token and the sessions it opened (see module docstring)."""

    def __init__(self, token: str, max_sessions: int = 1000, idle: float = 12 * 3600) -> None:
        if len(token) < MIN_TOKEN or not token.isprintable() or " " in token:
            raise ValueError(f"a web token is at least {MIN_TOKEN} printable characters")
        self.token = token
        self.max_sessions = max_sessions
        self.idle = idle
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self.refused = 0  # bad tokens, unknown sessions, bad CSRF tokens

    def open(self, token: str | None, now: float) -> Session | None:
        """A new session for the right token; None (counted) for anything else."""
        if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
            self.refused += 1
            return None
        session = Session(secrets.token_urlsafe(24), secrets.token_urlsafe(24), now)
        self._sessions[session.sid] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def session(self, sid: str | None, now: float) -> Session | None:
        """The live session of a cookie's id (its use renews it); None if none."""
        if not sid or len(sid) > 64:
            return None
        session = self._sessions.get(sid)
        if session is None or now - session.last_used > self.idle:
            if session is not None:
                del self._sessions[sid]
            return None
        session.last_used = now
        self._sessions.move_to_end(sid)
        return session

    def check_csrf(self, session: Session, sent: str | None) -> bool:
        ok = bool(sent) and hmac.compare_digest(str(sent).encode(), session.csrf.encode())
        if not ok:
            self.refused += 1
        return ok

    def __len__(self) -> int:
        return len(self._sessions)
