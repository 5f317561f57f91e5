"""The wire's error vocabulary has one source (`ErrorType`), and the protocol page lists it.

Every `PipecastError` a server can send carries a `wire_type` from
`ErrorType`; docs/PROTOCOL.md's "### Error types" table lists exactly those.
"""

from __future__ import annotations

import re
from pathlib import Path

import pipecast.actors
import pipecast.bench
import pipecast.cli
import pipecast.testing  # noqa: F401 - imported so that every error class is defined
from pipecast.transport import ErrorType, PipecastError, RemoteError

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def _subclasses(cls: type[PipecastError]) -> set[type[PipecastError]]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def _documented() -> set[str]:
    section = PROTOCOL.read_text().split("### Error types", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))


def test_the_protocol_page_lists_exactly_the_declared_error_types() -> None:
    assert _documented() == {t.value for t in ErrorType}


def test_every_error_that_can_cross_the_wire_has_a_declared_type() -> None:
    undeclared = {
        f"{cls.__module__}.{cls.__qualname__}: {cls.wire_type!r}"
        for cls in _subclasses(PipecastError) | {PipecastError}
        if cls is not RemoteError and cls.wire_type not in set(ErrorType)
    }
    assert not undeclared


def test_a_type_declared_is_sent_as_its_plain_string() -> None:
    assert ErrorType.LOCKED_OUT == "locked_out"
    assert f"{ErrorType.BAD_REQUEST}" == "bad_request"
