"""ffmpeg, found and driven: one process group per job, progress read without blocking.

`ffmpeg_exe()` is `ffmpeg` on PATH when present, else the binary inside the
imageio-ffmpeg wheel (a declared dependency; nothing is downloaded).

`FfmpegJob` starts ffmpeg in a new session (its own process group, so a
suspend or a kill reaches every thread and child) under `setpriv
--pdeathsig KILL` where available, so the encoder dies with the thread that
started it: a node killed with -9 leaves no encoder running. Its process
group id is recorded by the caller, and a restarted node kills a recorded
group only if its command line still names our partial file. Progress comes
from `-progress pipe:1`; `read_progress(timeout)` waits at most `timeout` for
it, so a stage step stays short. stderr goes to a log file, never a pipe that
could fill and stall ffmpeg. Failures are classified into `MediaFailure`
categories from the exit status and the error lines.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import shutil
import signal
import subprocess
from pathlib import Path

from ._job_states import RESOURCE_ERRNOS, MediaFailure

__all__ = [
    "FfmpegJob",
    "classify_failure",
    "ffmpeg_exe",
    "kill_orphan",
    "loopback_decoding",
    "run_ffmpeg",
]


@functools.cache
def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # noqa: PLC0415 - only when there is no ffmpeg on PATH

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@functools.cache
def loopback_decoding() -> bool:
    """True if our ffmpeg can decode its own encoder's output (`-dec`, ffmpeg >= 7.1).

    Caller's thread; blocks ~30 ms once per process (a 2-frame raw encode
    decoded back); any failure, or an older ffmpeg, says False.
    """
    probe = "testsrc2=s=32x32:r=5:d=0.4"
    code, _ = run_ffmpeg(
        ["-f", "lavfi", "-i", probe, "-map", "0:v", "-c:v", "rawvideo", "-f", "null", "-",
         "-dec", "0:0", "-filter_complex", "[dec:0]null[v]", "-map", "[v]", "-f", "null", "-"],
        timeout=30.0,
    )  # fmt: skip
    return code == 0


@functools.cache
def _setpriv() -> list[str]:
    found = shutil.which("setpriv")
    return [found, "--pdeathsig", "KILL", "--"] if found else []


_ENV = {**os.environ, "SVT_LOG": "1", "AV_LOG_FORCE_NOCOLOR": "1"}  # SVT: errors only


# A resource that ran out, not a fault of the file or the encoder: retryable once it is
# back. ffmpeg exits with the low byte of AVERROR(errno) = -errno, so 256 - errno, which
# says what ran out even when its error log could not be written (a full disk).
_RESOURCE_EXITS = {256 - e: e for e in RESOURCE_ERRNOS}


def classify_failure(returncode: int | None, errors: str, stage: str = "encoding") -> MediaFailure:
    """Turn an ffmpeg exit and its error lines into a failure with a category and code."""
    text = errors.lower()
    tail = errors.strip().splitlines()[-1:] or [""]
    if "no space left on device" in text:
        return MediaFailure("resource", "ENOSPC", f"no space left on device: {tail[0]}")
    if returncode in _RESOURCE_EXITS:
        code = _RESOURCE_EXITS[returncode]
        name = errno.errorcode[code]
        return MediaFailure("resource", name, f"ffmpeg in {stage}: {os.strerror(code)}")
    if "no such file or directory" in text and "in#" not in text:
        return MediaFailure("source_missing", "ENOENT", f"source gone: {tail[0]}")
    if returncode is not None and returncode < 0:
        return MediaFailure(
            "encoder_crash", f"SIGNAL_{-returncode}", f"ffmpeg killed by signal {-returncode}"
        )
    source_markers = (
        "in#",
        "dec:",
        "invalid data found",
        "ended prematurely",
        "error while decoding",
    )
    if any(m in text for m in source_markers):
        return MediaFailure("source_corrupt", "SOURCE_ERRORS", f"the source has errors: {tail[0]}")
    return MediaFailure(
        "encoder_error", f"EXIT_{returncode}", f"ffmpeg failed in {stage}: {tail[0]}"
    )


def run_ffmpeg(args: list[str], timeout: float = 600.0) -> tuple[int, str]:
    """Run ffmpeg to the end (caller's thread, blocks): (exit status, error lines)."""
    try:
        done = subprocess.run(  # noqa: S603 - our binary, an argument list
            [*_setpriv(), ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", *args],
            capture_output=True,
            timeout=timeout,
            env=_ENV,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -9, f"ffmpeg did not finish within {timeout} s"
    return done.returncode, done.stderr.decode(errors="replace")


class FfmpegJob:
    """One running ffmpeg (see module docstring). Owned by one stage thread."""

    def __init__(self, args: list[str], log_path: Path, stats_period: float = 0.5) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our binary, an argument list
                [
                    *_setpriv(),
                    ffmpeg_exe(),
                    "-hide_banner",
                    "-nostdin",
                    "-v",
                    "error",
                    "-nostats",
                    "-progress",
                    "pipe:1",
                    "-stats_period",
                    f"{stats_period:g}",
                    *args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                env=_ENV,
            )
        assert self.proc.stdout is not None
        self._out = self.proc.stdout
        os.set_blocking(self._out.fileno(), False)
        self._buf = b""
        self._eof = False
        self.pgid = self.proc.pid  # a new session: the group id is its pid

    def read_progress(self, timeout: float) -> list[dict[str, str]]:
        """The progress blocks completed within `timeout` seconds (may be none).

        Stage thread; blocks at most `timeout`. Once ffmpeg has closed its
        end of the pipe it waits for the process to exit instead: a pipe at
        EOF is always readable, and without the wait every step between
        ffmpeg's last write and its exit (its teardown, slow on a loaded
        machine) would return at once and the stage would publish hundreds
        of identical updates in a few milliseconds.
        """
        if self._out.closed:
            return []
        if self._eof:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
            return []
        ready, _, _ = select.select([self._out], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                chunk = self._out.read()
                if chunk:
                    self._buf += chunk
                elif chunk == b"":
                    self._eof = True
        blocks = []
        while b"progress=" in self._buf:
            end = self._buf.find(b"\n", self._buf.find(b"progress="))
            if end < 0:
                break
            block, self._buf = self._buf[: end + 1], self._buf[end + 1 :]
            fields: dict[str, str] = {}
            for line in block.decode(errors="replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    fields[key.strip()] = value.strip()
            blocks.append(fields)
        return blocks

    def poll(self) -> int | None:
        return self.proc.poll()

    def errors(self) -> str:
        """The last 8 KiB of ffmpeg's error log."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-8192:].decode(errors="replace")

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def suspend(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def terminate(self) -> None:
        """Kill the whole group at once and reap it.

        Its output is thrown away, so ffmpeg's graceful exit (which first
        flushes the encoder, seconds at slow presets) buys nothing; SIGKILL
        also ends a stopped (suspended) group without a SIGCONT.
        """
        if self.proc.poll() is None:
            self._signal(signal.SIGKILL)
            self.proc.wait(10)
        self.close()

    def close(self) -> None:
        self._out.close()


def kill_orphan(pgid: int, marker: str) -> bool:
    """Kill process group `pgid` if its leader's command line contains `marker`."""
    try:
        cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    if marker.encode() not in cmdline:
        return False  # the id was reused by someone else's process: never touch it
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return True
