"""Signed session cookies from a token, a CSRF token per session: who may use the gateway."""

from __future__ import annotations

import pytest

from pipecast.web import Access

TOKEN = "t" * 32


def test_the_right_token_opens_a_session_that_its_cookie_proves() -> None:
    access = Access(TOKEN)
    session = access.open(TOKEN, now=1000.0)
    assert session is not None
    again = access.session(session.cookie, now=1001.0)
    assert again is not None
    assert again.csrf == session.csrf
    assert access.check_csrf(again, session.csrf)


def test_a_gateway_restarted_with_the_same_token_knows_the_cookie_and_a_new_token_does_not() -> (
    None
):
    session = Access(TOKEN).open(TOKEN, 1000.0)
    assert session is not None
    assert Access(TOKEN).session(session.cookie, 1001.0) is not None
    assert Access("u" * 32).session(session.cookie, 1001.0) is None


@pytest.mark.parametrize("token", [None, "", "t" * 31, "u" * 32, "t" * 33])
def test_a_wrong_token_opens_nothing_and_is_counted(token: str | None) -> None:
    access = Access(TOKEN)
    assert access.open(token, 0.0) is None
    assert access.refused == 1


def test_a_forged_tampered_or_old_cookie_proves_nothing() -> None:
    access = Access(TOKEN, max_age=100.0)
    session = access.open(TOKEN, 1000.0)
    assert session is not None
    issued, nonce, mac = session.cookie.split(".")
    for bad in (
        f"{issued}.{nonce}.{'0' * 40}",
        f"{int(issued) + 1}.{nonce}.{mac}",
        f"{issued}.{nonce}x.{mac}",
        "x" * 300,
        "a.b",
        session.cookie + ".x",
    ):
        assert access.session(bad, 1001.0) is None, bad
    assert access.session(session.cookie, 1101.0) is None  # older than max_age
    assert access.session(session.cookie, 999.0) is None  # from the future


def test_a_wrong_or_missing_csrf_token_is_refused() -> None:
    access = Access(TOKEN)
    session = access.open(TOKEN, 0.0)
    assert session is not None
    for sent in (None, "", session.csrf + "x", session.cookie):
        assert not access.check_csrf(session, sent)


@pytest.mark.parametrize("bad", ["short", "has space in it 1234", "\x00" * 20])
def test_a_weak_token_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValueError, match="at least 16 printable"):
        Access(bad)
