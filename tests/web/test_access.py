"""Sessions from a token, a CSRF token per session: who may use the web gateway."""

from __future__ import annotations

import pytest

from pipecast.web import Access


def test_the_right_token_opens_a_session_that_its_cookie_finds() -> None:
    access = Access("t" * 32)
    session = access.open("t" * 32, now=0.0)
    assert session is not None
    assert access.session(session.sid, now=1.0) is session
    assert access.check_csrf(session, session.csrf)


@pytest.mark.parametrize("token", [None, "", "t" * 31, "u" * 32, "t" * 33])
def test_a_wrong_token_opens_nothing_and_is_counted(token: str | None) -> None:
    access = Access("t" * 32)
    assert access.open(token, 0.0) is None
    assert access.refused == 1
    assert len(access) == 0


def test_a_wrong_or_missing_csrf_token_is_refused() -> None:
    access = Access("t" * 32)
    session = access.open("t" * 32, 0.0)
    assert session is not None
    for sent in (None, "", session.csrf + "x", session.sid):
        assert not access.check_csrf(session, sent)


def test_sessions_end_when_idle_and_the_oldest_goes_past_the_bound() -> None:
    access = Access("t" * 32, max_sessions=2, idle=10.0)
    a, b, c = (access.open("t" * 32, float(i)) for i in range(3))
    assert None not in (a, b, c)
    assert a is not None
    assert b is not None
    assert c is not None
    assert access.session(a.sid, 3.0) is None  # evicted: only two are kept
    assert access.session(b.sid, 3.0) is b
    assert access.session(c.sid, 20.0) is None  # idle past 10 s
    assert access.session("x" * 100, 3.0) is None


@pytest.mark.parametrize("bad", ["short", "has space in it 1234", "\x00" * 20])
def test_a_weak_token_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValueError, match="at least 16 printable"):
        Access(bad)
