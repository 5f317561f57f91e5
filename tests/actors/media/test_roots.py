"""The library roots: which resolved paths lie under them, and how paths are resolved."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.actors.media import (
    MediaFailure,
    OutsideRoots,
    check_still_within,
    resolve_roots,
    resolve_within,
    within,
)
from pipecast.transport import BadRequest

segment = st.sampled_from(["a", "ab", "b", "a.b", "c"])
absolute = st.lists(segment, min_size=0, max_size=4).map(lambda parts: "/" + "/".join(parts))


@pytest.mark.parametrize(
    ("path", "roots", "inside"),
    [
        ("/srv/a", ("/srv/a",), True),
        ("/srv/a/x.mkv", ("/srv/a",), True),
        ("/srv/ab/x.mkv", ("/srv/a",), False),  # a sibling sharing a prefix
        ("/srv", ("/srv/a",), False),
        ("/srv/b/x", ("/srv/a", "/srv/b"), True),
        ("/anything", ("/",), True),
        ("/srv/a/x", (), False),
        ("/srv/a/x", ("/srv/a/",), True),
    ],
)
def test_within_holds_the_root_and_what_is_below_it_only(path, roots, inside):
    assert within(path, roots) is inside


@given(absolute, st.lists(absolute, max_size=3))
def test_within_is_exactly_a_path_component_prefix(path, roots):
    expected = any(posixpath.commonpath([path, root]) == root for root in roots)
    assert within(path, tuple(roots)) is expected


def test_roots_are_resolved_and_must_be_absolute_existing_folders(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    assert resolve_roots((str(tmp_path / "link"),)) == (str(real),)
    (tmp_path / "file").write_text("x")
    for bad in ("relative/dir", str(tmp_path / "missing"), str(tmp_path / "file")):
        with pytest.raises(BadRequest):
            resolve_roots((bad,))
    with pytest.raises(BadRequest, match="at most"):
        resolve_roots(tuple(str(real) for _ in range(65)))


def test_a_path_is_resolved_once_through_links_and_dotdot(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f.mkv").write_text("x")
    (root / "alias").symlink_to(root / "sub", target_is_directory=True)
    roots = (str(root),)
    assert resolve_within(str(root / "alias" / "f.mkv"), roots) == str(root / "sub" / "f.mkv")
    assert resolve_within(str(root / "sub" / ".." / "sub" / "f.mkv"), roots) == str(
        root / "sub" / "f.mkv"
    )
    with pytest.raises(OutsideRoots, match="resolves to"):
        resolve_within(str(root / ".." / "elsewhere.mkv"), roots)
    with pytest.raises(OutsideRoots, match="no library roots"):
        resolve_within(str(root / "sub" / "f.mkv"), ())


def test_a_path_that_no_longer_resolves_to_itself_is_a_media_failure(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    f = root / "sub" / "f.mkv"
    f.write_text("x")
    check_still_within(str(f), (str(root),))  # unchanged: fine
    (root / "sub").rename(root / "moved")
    (root / "sub").symlink_to(root / "moved", target_is_directory=True)
    with pytest.raises(MediaFailure) as failed:
        check_still_within(str(f), (str(root),))
    assert failed.value.code == "OUTSIDE_ROOTS"
    with pytest.raises(MediaFailure):
        check_still_within(str(Path("/etc/passwd")), (str(root),))
