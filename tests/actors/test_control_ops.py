"""Every control op docs/PROTOCOL.md lists is served, and answers the shape it documents.

The table under "### Ops" is read from the page: its ops must be exactly the
node's `CONTROL_OPS`, and each op is called on a real node (media stages, the
demo network) and its result checked against the documented shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipecast.actors import CONTROL_OPS, MEDIA_STAGES, Node, make_clip
from pipecast.testing import start_test_node
from pipecast.transport import WATCH_OPS

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


@dataclass(frozen=True, slots=True)
class Shape:
    """A documented result: a map of `keys`, a list of them, or a map of names to them."""

    kind: str  # "map", "list" or "named"
    keys: frozenset[str] | None  # None: any keys

    def matches(self, value: Any) -> bool:
        if self.kind == "map":
            return isinstance(value, dict) and self._keys_match(value)
        if self.kind == "list":
            return isinstance(value, list) and all(
                isinstance(v, dict) and self._keys_match(v) for v in value
            )
        return isinstance(value, dict) and all(
            isinstance(v, dict) and self._keys_match(v) for v in value.values()
        )

    def _keys_match(self, value: dict[str, Any]) -> bool:
        return self.keys is None or set(value) == self.keys


def _keys(inner: str) -> frozenset[str] | None:
    return None if inner.strip() == "..." else frozenset(k.strip() for k in inner.split(","))


def _shape(text: str) -> Shape:
    text = text.strip().strip("`")
    if named := re.fullmatch(r"\{<\w+>: \{(.*)\}\}", text):
        return Shape("named", _keys(named.group(1)))
    if listed := re.fullmatch(r"\[\{(.*)\}\]", text):
        return Shape("list", _keys(listed.group(1)))
    mapped = re.fullmatch(r"\{(.*)\}", text)
    assert mapped is not None, f"an undocumented result shape: {text!r}"
    return Shape("map", _keys(mapped.group(1)))


def documented_ops() -> dict[str, list[Shape]]:
    """op -> the shapes its result may take, from the "### Ops" table."""
    section = PROTOCOL.read_text().split("### Ops", 1)[1].split("\n### ", 1)[0]
    ops: dict[str, list[Shape]] = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        ops[cells[0].strip("`")] = [_shape(s) for s in cells[2].split(" or ")]
    return ops


DOCUMENTED = documented_ops()


def test_the_protocol_page_lists_exactly_the_ops_the_node_serves() -> None:
    assert set(DOCUMENTED) == set(CONTROL_OPS)


def test_a_result_that_does_not_have_the_documented_keys_does_not_match() -> None:
    heartbeat, _many = DOCUMENTED["presence.heartbeat"]
    assert heartbeat.matches({"known": True})
    assert not heartbeat.matches({"ok": True})
    assert not heartbeat.matches({"known": True, "ok": True})
    (runs,) = DOCUMENTED["runs"]
    assert runs.matches([])
    assert not runs.matches({"run": 1})


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = start_test_node(tmp_path / "data", MEDIA_STAGES)
    yield node
    node.stop()


def _calls(clip: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every op with arguments that make it succeed, in an order that gives each
    something to work on; shutdown last."""
    return [
        ("ping", {}),
        ("status", {"prefix": "stage/"}),
        ("stats", {}),
        ("pause", {"stage": "analyze"}),
        ("suspend", {"stage": "analyze"}),
        ("resume", {"stage": "analyze"}),
        ("toggle", {"stage": "analyze"}),  # paused again: the job below stays queued
        ("enqueue", {"paths": [str(clip)]}),
        ("jobs", {}),
        ("nodes", {}),
        ("job", {"id": 1}),
        ("cancel", {"id": 1}),
        ("retry", {"ids": [1]}),
        ("publish", {"topic": "ext/ops", "key": "k", "data": {"n": 1}}),
        ("presence.join", {"watcher": "w1", "topic": "stage/analyze"}),
        ("presence.heartbeat", {"watcher": "w1"}),
        ("presence.heartbeat", {"watchers": ["w1", "gone"]}),
        ("presence.list", {}),
        ("presence.leave", {"watcher": "w1"}),
        ("run", {"network": "demo", "prompt": "a lantern over the harbour"}),
        ("invocations", {"network": "demo"}),
        ("runs", {"network": "demo"}),
        ("networks", {}),
        ("installations.add", {"name": "hall", "network": "demo", "display": "grid:2x2"}),
        ("installations.switch", {"name": "hall", "display": "single:0:1"}),
        ("installations.list", {}),
        ("installations.remove", {"name": "hall"}),
        ("run.stop", {"network": "demo"}),
        ("shutdown", {}),
    ]


def test_every_op_answers_the_shape_the_protocol_page_documents(node: Node, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", seconds=1)
    client = node.client(10.0)
    calls = _calls(clip)
    assert {op for op, _ in calls} == set(DOCUMENTED)  # every op is called
    wrong = []
    for op, args in calls:
        result = client.call(op, **args)
        if not any(shape.matches(result) for shape in DOCUMENTED[op]):
            wrong.append(f"{op}: {result!r}")
    assert not wrong, "\n".join(wrong)


def test_the_watch_role_the_page_documents_is_the_one_the_node_enforces() -> None:
    (row,) = [line for line in PROTOCOL.read_text().splitlines() if line.startswith("| `watch` |")]
    documented = set(re.findall(r"`([\w.]+)`", row.split("|")[4]))
    assert documented == WATCH_OPS
    assert documented <= CONTROL_OPS
