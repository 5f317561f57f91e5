"""Path mapping between a node's mount and the shared names the store records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecast.actors.cluster import PathMap, Unmapped
from pipecast.transport import BadRequest

TABLE = {"/mnt/media": "/media", "/mnt/media/kids": "/kids", "/data/tv": "/media/tv2"}


def test_a_path_maps_through_the_longest_folder_that_holds_it_and_back() -> None:
    paths = PathMap.from_table(TABLE)
    assert paths.to_shared("/mnt/media/films/a.mkv") == "/media/films/a.mkv"
    assert paths.to_shared("/mnt/media/kids/b.mkv") == "/kids/b.mkv"
    assert paths.to_local("/kids/b.mkv") == "/mnt/media/kids/b.mkv"
    assert paths.to_local("/media/tv2/s01/e01.mkv") == "/data/tv/s01/e01.mkv"


@pytest.mark.parametrize("outside", ["/mnt/media2/a.mkv", "/mnt/a.mkv", "/home/x.mkv", "/"])
def test_a_path_under_no_folder_maps_nowhere(outside: str) -> None:
    with pytest.raises(Unmapped):
        PathMap.from_table(TABLE).to_shared(outside)


def test_a_trailing_slash_names_the_same_folder() -> None:
    assert PathMap.from_table({"/mnt/media/": "/media/"}).to_shared("/mnt/media/a") == "/media/a"


def test_without_a_table_paths_are_shared_as_they_are() -> None:
    assert PathMap().to_shared("/anything/a.mkv") == "/anything/a.mkv"


@pytest.mark.parametrize(
    "table",
    [
        {"relative/dir": "/media"},
        {"/mnt/media": "media"},
        {"/mnt/../etc": "/media"},
        {"/": "/media"},
        {"/a": "/media", "/b": "/media"},
    ],
)
def test_a_bad_table_is_refused(table: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        PathMap.from_table(table)


segment = st.text(alphabet="abcxyz0189-_. ", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)


@given(st.sampled_from(sorted(TABLE)), st.lists(segment, max_size=4))
def test_every_mapped_path_comes_back_to_itself(folder: str, rest: list[str]) -> None:
    paths = PathMap.from_table(TABLE)
    local = "/".join([folder, *rest])
    assert paths.to_local(paths.to_shared(local)) == local
