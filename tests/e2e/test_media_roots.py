"""A node touches files under its library roots only, whatever a path or a link says.

The attack this stops: a user who may enqueue makes a symlink in a folder of
theirs pointing at a file they cannot read, and the node, which can, encodes
and replaces it. Replace mode throughout: the mode that writes over originals.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import (
    EncodeSettings,
    MediaPolicy,
    Node,
    NodeConfig,
    StageConfig,
    make_clip,
)
from pipecast.testing import start_test_node, wait_for
from pipecast.transport import ControlClient, RemoteError

FAST = EncodeSettings(preset=12, crf=40)
STAGES = (
    StageConfig("analyze", "analyze"),
    StageConfig("crf_search", "crf"),
    StageConfig("encode", "encode"),
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Library:
    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "library"
        self.root.mkdir()
        self.secret = tmp / "secret"  # the node can read it; the user who enqueues cannot
        self.secret.mkdir(mode=0o700)
        self.private = make_clip(self.secret / "private.mkv", seconds=1)
        self.private_sha = sha(self.private)
        policy = MediaPolicy(min_bytes=1024, replace=True, roots=(str(self.root),))
        self.node = start_test_node(tmp / "data", STAGES, media=policy, encode=FAST, networks=())
        self.client = self.node.client(10)

    def jobs(self) -> list[dict]:
        return list(self.client.call("jobs")["jobs"])

    def enqueue_refused(self, *paths: str) -> RemoteError:
        with pytest.raises(RemoteError) as refused:
            self.client.call("enqueue", paths=list(paths))
        return refused.value


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path)
    yield library
    library.node.stop()


def test_a_symlink_out_of_the_roots_is_refused_and_its_target_untouched(lib: Library):
    link = lib.root / "film.mkv"
    link.symlink_to(lib.private)
    refused = lib.enqueue_refused(str(link))
    assert refused.wire_type == "outside_roots"
    assert f"resolves to {lib.private}" in str(refused)
    dotdot = lib.root / ".." / "secret" / "private.mkv"
    assert lib.enqueue_refused(str(dotdot)).wire_type == "outside_roots"
    assert lib.enqueue_refused("/dev/zero").wire_type == "outside_roots"
    assert lib.jobs() == []
    assert sha(lib.private) == lib.private_sha


def test_a_link_met_while_walking_a_folder_is_left_out_and_says_where_it_leads(lib: Library):
    (lib.root / "shows").mkdir()
    (lib.root / "shows" / "ep1.mkv").symlink_to(lib.private)
    (lib.root / "shows" / "up").symlink_to(lib.secret, target_is_directory=True)
    result = lib.client.call("enqueue", paths=[str(lib.root)], recursive=True)
    assert result["ids"] == []
    assert [i["path"] for i in result["ignored"]] == [str(lib.root / "shows" / "ep1.mkv")]
    assert "outside the library roots" in result["ignored"][0]["why"]
    assert sha(lib.private) == lib.private_sha


def test_a_link_inside_the_roots_is_followed_and_the_job_holds_the_resolved_path(lib: Library):
    real = make_clip(lib.root / "real.mkv", seconds=1)
    (lib.root / "alias.mkv").symlink_to(real)
    (job_id,) = lib.client.call("enqueue", paths=[str(lib.root / "alias.mkv")])["ids"]
    (job,) = [j for j in lib.jobs() if j["id"] == job_id]
    assert job["path"] == str(real)


@pytest.mark.parametrize("swap", ["symlink", "hardlink", "folder"])
def test_a_source_swapped_after_enqueue_is_never_replaced(lib: Library, swap: str):
    lib.client.call("pause", stage="encode")
    shows = lib.root / "shows"
    shows.mkdir()
    film = make_clip(shows / "film.mkv", seconds=1)
    shutil.copyfile(film, lib.secret / "film.mkv")  # the same bytes, outside the roots
    (job_id,) = lib.client.call("enqueue", paths=[str(film)])["ids"]

    def state() -> str:
        return str(next(j for j in lib.jobs() if j["id"] == job_id)["state"])

    assert wait_for(lambda: state() == "crf_searched", 60)
    if swap == "symlink":  # the file itself becomes a link out of the roots
        film.unlink()
        film.symlink_to(lib.secret / "film.mkv")
    elif swap == "hardlink":  # the secret file itself, the same content, at the same path
        film.unlink()
        os.link(lib.secret / "film.mkv", film)
    else:  # a folder on the way becomes a link out of the roots
        shutil.rmtree(shows)
        shows.symlink_to(lib.secret, target_is_directory=True)
    secret_before = sha(lib.secret / "film.mkv")
    lib.client.call("resume", stage="encode")
    assert wait_for(lambda: state() == "failed", 60), state()
    (job,) = [j for j in lib.jobs() if j["id"] == job_id]
    expected = {"symlink": "OUTSIDE_ROOTS", "hardlink": "IDENTITY", "folder": "OUTSIDE_ROOTS"}[swap]
    assert job["failure"]["code"] == expected, job["failure"]
    assert sha(lib.secret / "film.mkv") == secret_before
    assert sorted(p.name for p in lib.secret.iterdir()) == ["film.mkv", "private.mkv"]


def test_a_node_with_no_roots_refuses_every_enqueue_and_says_how_to_set_them(tmp_path: Path):
    clip = make_clip(tmp_path / "film.mkv", seconds=1)
    loop = "tcp://127.0.0.1:*"
    node = Node(NodeConfig(loop, loop, loop, data_dir=tmp_path / "data", networks=())).start()
    try:
        client: ControlClient = node.client(10)
        with pytest.raises(RemoteError) as refused:
            client.call("enqueue", paths=[str(clip)])
        assert refused.value.wire_type == "outside_roots"
        assert "--root" in str(refused.value)
        assert client.call("jobs")["jobs"] == []
    finally:
        node.stop()


def test_a_root_that_is_not_a_folder_stops_the_node_from_starting(tmp_path: Path):
    loop = "tcp://127.0.0.1:*"
    for root, why in ((str(tmp_path / "nope"), "not a folder"), ("relative", "not an absolute")):
        cfg = NodeConfig(
            loop, loop, loop, data_dir=tmp_path / "data", media=MediaPolicy(roots=(root,))
        )
        with pytest.raises(Exception, match=why):
            Node(cfg).start()
    assert not (tmp_path / "data").exists()  # nothing was made
