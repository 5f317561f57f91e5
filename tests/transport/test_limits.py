"""The stated bounds on what comes from outside: plain data within depth and width passes,
anything else is refused with a typed error. Pure."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.transport import (
    INT_MAX,
    BadRequest,
    Limits,
    TooLarge,
    check_value,
    expect_int,
    expect_str,
)

LIMITS = Limits(depth=4, width=8, key_chars=16)

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=16), inner, max_size=8)
    ),
    max_leaves=40,
)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@given(plain)
@settings(max_examples=300)
def test_plain_data_within_the_depth_passes_and_deeper_data_is_too_large(value: Any) -> None:
    if depth_of(value) <= LIMITS.depth:
        check_value(value, LIMITS, "v")
    else:
        with pytest.raises(TooLarge, match="deeper"):
            check_value(value, LIMITS, "v")


@given(plain)
@settings(max_examples=200)
def test_whatever_passes_packs_and_comes_back_the_same(value: Any) -> None:
    try:
        check_value(value, LIMITS, "v")
    except TooLarge:
        return
    assert msgpack.unpackb(msgpack.packb(value)) == value


def test_a_value_a_thousand_levels_deep_is_refused_without_recursion() -> None:
    value: Any = {}
    for _ in range(100_000):  # far past any recursion limit
        value = {"x": value}
    with pytest.raises(TooLarge):
        check_value(value, Limits(), "meta")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"k": list(range(9))}, TooLarge),  # wider than 8
        (dict.fromkeys("abcdefghi", 1), TooLarge),
        ({"k" * 17: 1}, TooLarge),  # a key over 16
        ({1: "x"}, BadRequest),  # a key that is not a string
        ({"k": 2**64}, BadRequest),  # beyond what msgpack can carry
        ({"k": object()}, BadRequest),
        ({"k": {1, 2}}, BadRequest),
        ({"k": msgpack.ExtType(1, b"x")}, BadRequest),
    ],
)
def test_wide_values_long_keys_and_foreign_types_are_refused(value: Any, error: type) -> None:
    with pytest.raises(error):
        check_value(value, LIMITS, "v")


@pytest.mark.parametrize("bad", [True, 1.0, "1", None, 2**63, -1])
def test_an_id_must_be_an_int_within_the_stores_range(bad: Any) -> None:
    with pytest.raises(BadRequest):
        expect_int(bad, "id", 0, INT_MAX)
    assert expect_int(INT_MAX, "id", 0, INT_MAX) == INT_MAX


def test_a_string_is_refused_when_empty_long_or_not_a_string() -> None:
    assert expect_str("abc", "s", 3) == "abc"
    with pytest.raises(TooLarge):
        expect_str("abcd", "s", 3)
    with pytest.raises(BadRequest):
        expect_str("", "s", 3)
    with pytest.raises(BadRequest):
        expect_str(["a"], "s", 3)
    assert expect_str("", "s", 3, empty=True) == ""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depth": 0},
        {"request_bytes": True},
        {"frame_bytes": 10, "request_bytes": 100},
        {"live_topics": 10, "client_topics": 20},
        {"live_topics": 200, "known_topics": 100},
    ],
)
def test_inconsistent_limits_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        Limits(**kwargs)
