"""The analyze stage takes what an enqueue names without ever blocking on it."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import MEDIA_STAGES, Node
from pipecast.testing import start_test_node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = start_test_node(tmp_path / "data", MEDIA_STAGES, networks=())
    yield node
    node.stop()


def test_a_fifo_and_a_socket_are_refused_at_once_and_nothing_blocks(
    node: Node, tmp_path: Path
) -> None:
    fifo = tmp_path / "film.mkv"
    os.mkfifo(fifo)  # opening it to read would wait forever for a writer
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "clip.mp4"))
    client = node.client(5.0)
    try:
        result = client.call("enqueue", paths=[str(fifo), str(tmp_path / "clip.mp4")])
    finally:
        listener.close()
    assert result["ids"] == []
    assert {(i["path"], i["why"]) for i in result["ignored"]} == {
        (str(fifo), "unreadable: not a regular file (a FIFO)"),
        (str(tmp_path / "clip.mp4"), "unreadable: No such device or address"),
    }
    assert client.call("jobs")["jobs"] == []  # nothing changed
    client.call("shutdown")  # and the node still stops


def test_a_large_tree_is_walked_in_slices_so_the_stage_answers_meanwhile(
    node: Node, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    for d in range(20):
        folder = lib / f"d{d:02}"
        folder.mkdir(parents=True)
        for f in range(150):
            (folder / f"{f:03}.mkv").write_bytes(b"")
    client = node.client(120.0)
    client.call("pause", stage="analyze")  # only the walk is measured, not the analysis
    order: list[str] = []
    enqueued: dict[str, object] = {}

    def enqueue() -> None:
        enqueued.update(client.call("enqueue", paths=[str(lib)], recursive=True))
        order.append("enqueue")

    walker = threading.Thread(target=enqueue)
    walker.start()
    # the jobs op goes to the same stage: answered between slices of the walk
    while not order:
        jobs = client.call("jobs", limit=100_000)["jobs"]
        if 0 < len(jobs) < 3000:
            order.append("jobs, mid-walk")
            break
    walker.join(120)
    assert order[0] == "jobs, mid-walk", order
    assert enqueued["added"] == 3000
