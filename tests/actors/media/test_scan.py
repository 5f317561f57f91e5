"""Walking what an enqueue names: in path order, lazily, bounded, never following folder links."""

from __future__ import annotations

import os
from pathlib import Path

from pipecast.actors.media._scan import Found, Ignored, walk


def tree(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_a_folder_gives_its_video_files_in_path_order_and_its_subfolders_when_recursive(
    tmp_path: Path,
) -> None:
    tree(tmp_path, "b.mkv", "a.mp4", "notes.txt", "sub/c.mkv", "sub/deeper/d.webm", "z.avi")
    flat = [f.path for f in walk(({"path": str(tmp_path)},))]
    assert flat == [str(tmp_path / n) for n in ("a.mp4", "b.mkv", "z.avi")]
    deep = [f.path for f in walk(({"path": str(tmp_path), "recursive": True},))]
    assert deep == [
        str(tmp_path / n) for n in ("a.mp4", "b.mkv", "sub/c.mkv", "sub/deeper/d.webm", "z.avi")
    ]


def test_a_named_file_is_a_candidate_only_with_a_video_name(tmp_path: Path) -> None:
    tree(tmp_path, "notes.txt", "FILM.MKV")
    named = ({"path": str(tmp_path / "notes.txt")}, {"path": str(tmp_path / "FILM.MKV")})
    (ignored, found) = walk(named)
    assert isinstance(ignored, Ignored)
    assert ignored.path == str(tmp_path / "notes.txt")
    assert ignored.why.startswith("not a video file name (.avi, .flv")
    assert found == Found(str(tmp_path / "FILM.MKV"))


def test_a_linked_folder_is_not_followed_so_a_loop_ends(tmp_path: Path) -> None:
    tree(tmp_path, "a/x.mkv")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    found = list(walk(({"path": str(tmp_path), "recursive": True},)))
    assert found == [Found(str(tmp_path / "a" / "x.mkv"))]


def test_the_walk_stops_past_its_bound_and_says_so(tmp_path: Path) -> None:
    tree(tmp_path, *(f"{i:03}.mkv" for i in range(10)))
    found = list(walk(({"path": str(tmp_path)},), max_files=4))
    assert [type(f) for f in found] == [Found] * 4 + [Ignored]
    assert "more than 4 files" in found[-1].why  # type: ignore[union-attr]


def test_a_folder_that_cannot_be_listed_is_reported_not_fatal(tmp_path: Path) -> None:
    tree(tmp_path, "open/a.mkv", "shut/b.mkv")
    shut = tmp_path / "shut"
    shut.chmod(0)
    try:
        found = list(walk(({"path": str(tmp_path), "recursive": True},)))
    finally:
        shut.chmod(0o755)
    if os.geteuid() == 0:  # root lists it anyway
        assert Found(str(shut / "b.mkv")) in found
    else:
        assert Ignored(str(shut), "cannot list the folder: Permission denied") in found
    assert Found(str(tmp_path / "open" / "a.mkv")) in found
