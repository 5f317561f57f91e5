"""A node whose disk fills up: the job fails as a resource, the stage lives, retry works.

The data directory sits on a real 16 MiB tmpfs, filled to the brim by a
file of ours; the test is skipped, saying so, where mounting is not allowed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import EncodeSettings, MediaPolicy, StageConfig, make_clip
from pipecast.testing import Collector, start_test_node, wait_for

FIXED = (
    StageConfig("analyze", "analyze"),
    StageConfig("crf", "crf"),
    StageConfig("encode", "encode"),
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill `disk` with a file of ours until `leave` bytes are free."""
    st = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def test_a_full_disk_fails_the_encode_as_a_resource_and_a_retry_works_once_there_is_room(
    small_disk: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    clip = make_clip(lib / "film.mkv", seconds=20, size="640x480", source="testsrc2")
    before = clip.read_bytes()
    node = start_test_node(
        small_disk / "data",
        FIXED,
        media=MediaPolicy(min_bytes=1024, max_attempts=1, roots=(str(lib),)),
        encode=EncodeSettings(preset=12, crf=30.0),  # ~3.8 MB: more than is left, less than 16 MiB
        networks=(),
    )
    watch = Collector(node, ("actor/encode",)).start()
    try:
        client = node.client(10.0)
        filler = _fill(small_disk, 1_500_000)
        (job_id,) = client.call("enqueue", paths=[str(clip)])["ids"]
        assert wait_for(lambda: client.call("jobs")["jobs"][0]["state"] == "failed", 60), (
            client.call("jobs"),
            client.call("status", prefix="stage/encode"),
        )
        job = client.call("jobs")["jobs"][0]
        assert (job["failure"]["category"], job["failure"]["code"]) == ("resource", "ENOSPC")
        assert clip.read_bytes() == before
        # the stage never died
        assert watch.latest("actor/encode") == {**watch.latest("actor/encode"), "restarts": 0}
        assert not watch.updates("actor/encode")
        filler.unlink()
        assert client.call("retry", code="ENOSPC")["retried"] == [job_id]
        assert wait_for(lambda: client.call("jobs")["jobs"][0]["state"] == "encoded", 60)
    finally:
        watch.stop()
        node.stop()


def test_an_outcome_the_store_refuses_is_recorded_once_it_takes_writes_again(
    small_disk: Path, tmp_path: Path
) -> None:
    src = tmp_path / "file.bin"
    src.write_bytes(os.urandom(4 * 1024 * 1024))
    node = start_test_node(small_disk / "data", (StageConfig("checksum", "checksum"),))
    watch = Collector(node, ("stage/checksum", "actor/checksum")).start()
    filler = small_disk / "filler"
    try:
        client = node.client(10.0)
        client.call("pause", stage="checksum")
        client.call("enqueue", stage="checksum", paths=[str(src)])
        # the disk to the last byte: the item's result cannot be written
        with contextlib.suppress(OSError), filler.open("wb") as f:
            while True:
                f.write(b"\0" * 65536)
        client.call("resume", stage="checksum")
        assert watch.wait_for(
            lambda c: "StoreError" in ((c.latest("stage/checksum") or {}).get("last_error") or ""),
            30,
        )
        filler.unlink()
        assert watch.wait_for(lambda c: (c.latest("stage/checksum") or {}).get("done") == 1, 30)
        assert (watch.latest("actor/checksum") or {}).get("restarts") == 0
        assert not watch.updates("actor/checksum")  # never died, never restarted
    finally:
        watch.stop()
        node.stop()
