"""Who may use the web gateway: a token for a signed session cookie, and a CSRF token. Pure.

The gateway prints (or reads from `--token-file`) one secret token. A
browser that opens any page with `?token=TOKEN` gets a session cookie
(HttpOnly, SameSite=Strict, Secure under TLS): `ISSUED.NONCE.MAC`, where the
MAC is an HMAC-SHA256 of the rest under the token. Nothing is stored: a
gateway restarted with the same token (`--token-file`) accepts the cookies
it gave before, so open pages reconnect by themselves; a new token signs
every browser out. A session's CSRF token (in the page; every state-changing
request sends it back in `X-CSRF-Token`) is the HMAC of its cookie. Cookies
older than `max_age` are refused. Comparisons run in constant time. No clock
inside: `now` (wall seconds) is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["COOKIE", "Access", "Session", "new_token"]

COOKIE = "pipecast_session"
MIN_TOKEN = 16
MAX_COOKIE = 200


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Session:
    cookie: str  # what the browser holds
    csrf: str
    issued: float


class Access:
    """The token and the sessions it signs (see module docstring)."""

    def __init__(self, token: str, max_age: float = 7 * 24 * 3600) -> None:
        if len(token) < MIN_TOKEN or not token.isprintable() or " " in token:
            raise ValueError(f"a web token is at least {MIN_TOKEN} printable characters")
        self.token = token
        self.max_age = max_age
        self._key = hashlib.sha256(b"pipecast-web-session\0" + token.encode()).digest()
        self.opened = 0
        self.refused = 0  # bad tokens, forged or stale cookies, bad CSRF tokens

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:40]

    def _session(self, body: str, issued: float) -> Session:
        cookie = f"{body}.{self._mac(body)}"
        return Session(cookie, self._mac("csrf:" + cookie), issued)

    def open(self, token: str | None, now: float) -> Session | None:
        """A new session for the right token; None (counted) for anything else."""
        if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
            self.refused += 1
            return None
        self.opened += 1
        return self._session(f"{int(now)}.{secrets.token_urlsafe(12)}", float(int(now)))

    def session(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie proves, if it is ours and not too old; else None."""
        if not cookie:
            return None
        parts = cookie.split(".")
        if len(cookie) > MAX_COOKIE or len(parts) != 3 or not parts[0].isdigit():
            self.refused += 1
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(parts[2].encode(), self._mac(body).encode()):
            self.refused += 1
            return None
        issued = float(parts[0])
        if not 0 <= now - issued <= self.max_age:
            self.refused += 1
            return None
        return self._session(body, issued)

    def check_csrf(self, session: Session, sent: str | None) -> bool:
        ok = bool(sent) and hmac.compare_digest(str(sent).encode(), session.csrf.encode())
        if not ok:
            self.refused += 1
        return ok
