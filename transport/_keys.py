"""Key files and the allow-list of a node's data directory (file I/O only).

In `<data dir>/keys/` (mode 0700): `node.key` / `node.key_secret`,
`owner.key` / `owner.key_secret` (files 0600, the standard ZeroMQ
certificate format that `zmq.auth.load_certificate` reads) and
`allowed.json` (`{"keys": {name: {"public": Z85, "role": role}}}`, the owner
allowed as `operate`). A new data directory gets all of them, so the local
owner, who can read the folder, notices nothing. The allow-list is re-read
whenever the file changes; writers replace it atomically, under a lock file,
so two editors never lose each other's change.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from ._errors import PipecastError

__all__ = [
    "ALLOWED",
    "KEYS_DIR",
    "NODE_KEY",
    "OWNER_KEY",
    "ZAP_DOMAIN",
    "AllowList",
    "Grant",
    "KeyFileError",
    "Keypair",
    "Role",
    "allow_list",
    "check_public_key",
    "ensure_node_keys",
    "node_public_key",
    "read_keypair",
    "write_keypair",
]

KEYS_DIR = "keys"
NODE_KEY, OWNER_KEY, ALLOWED = "node", "owner", "allowed.json"
ZAP_DOMAIN = b"pipecast"
MAX_KEY_FILE = 64 * 1024  # a certificate is ~200 bytes; an allow-list of 1,000 keys ~100 KiB
MAX_ALLOWED_FILE = 4 * 1024 * 1024
MAX_ALLOWED_KEYS = 10_000
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class Role(enum.StrEnum):
    WATCH = "watch"  # the status and sync sockets; read-only control ops
    OPERATE = "operate"  # everything


class KeyFileError(PipecastError):
    """A key file or the allow-list is missing, unreadable, or not what it should be."""


@dataclass(frozen=True, slots=True)
class Keypair:
    """A CURVE keypair in Z85 (40 characters each); `secret` None for a public key alone."""

    public: str
    secret: str | None = None

    @classmethod
    def new(cls) -> Keypair:
        public, secret = zmq.curve_keypair()
        return cls(public.decode(), secret.decode())


def _write_private(path: Path, text: str, mtime_ns: int | None = None) -> None:
    """Create `path` readable by its owner alone, atomically (a temp file, then rename),
    with `mtime_ns` as its modification time if given."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a writer that died
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if mtime_ns is not None:
                os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_keypair(folder: Path, name: str, keys: Keypair) -> Path:
    """Write `name.key` and (with a secret) `name.key_secret` in the ZeroMQ certificate
    format, each 0600; returns the secret file (the public one without a secret)."""
    cert = "#   ZeroMQ CURVE certificate, written by pipecast\nmetadata\ncurve\n"
    public = f'{cert}    public-key = "{keys.public}"\n'
    _write_private(folder / f"{name}.key", public)
    if keys.secret is None:
        return folder / f"{name}.key"
    _write_private(folder / f"{name}.key_secret", f'{public}    secret-key = "{keys.secret}"\n')
    return folder / f"{name}.key_secret"


def read_keypair(path: Path) -> Keypair:
    """The keys of a ZeroMQ certificate file; `KeyFileError` saying why if there are none."""
    try:
        info = path.stat()
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KEY_FILE:
        raise KeyFileError(f"{path} is not a key file (a regular file of at most 64 KiB)")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc}") from None
    try:
        keys = Keypair(public.decode("ascii"), secret.decode("ascii") if secret else None)
    except UnicodeDecodeError:
        raise KeyFileError(f"{path} does not hold Z85 keys") from None
    for key in (keys.public, keys.secret):
        if key is not None and len(key) != 40:
            raise KeyFileError(f"{path} holds a key that is not 40 Z85 characters")
    return keys


@dataclass(frozen=True, slots=True)
class Grant:
    """One allowed key: a name to manage it by, its public key, its role."""

    name: str
    public: str
    role: Role


def check_public_key(public: str) -> str:
    """`public` if it is a CURVE public key in Z85 (40 characters that decode to 32 bytes)."""
    try:
        if type(public) is str and len(public) == 40 and len(z85.decode(public)) == 32:
            return public
    except (ValueError, KeyError, TypeError):
        pass
    raise KeyFileError(f"{public!r} is not a public key (40 Z85 characters)")


class AllowList:
    """The keys a node allows (`allowed.json`); any thread. Re-read when the file changes
    (its size, mtime or inode; writers make each mtime later than the last), so a
    running node honours every change at its next handshake or request. A file that
    cannot be read allows nobody (and says so). `removals` counts the re-reads that
    found a key gone which an earlier read had allowed: the bridge drops its status
    connections when it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_key: dict[str, Grant] = {}
        self.error: str | None = None
        self.removals = 0

    def _fresh(self) -> dict[str, Grant]:
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError as exc:
            stamp = None
            self.error = f"cannot read {self.path}: {exc.strerror}"
        with self._lock:
            if stamp != self._stamp or stamp is None:
                self._stamp = stamp
                was = self._by_key
                self._by_key = {g.public: g for g in self._read()} if stamp else {}
                if not was.keys() <= self._by_key.keys():
                    self.removals += 1
            return self._by_key

    def check(self) -> int:
        """Re-read the list if it changed; the number of `removals` so far."""
        self._fresh()
        return self.removals

    def _read(self) -> list[Grant]:
        try:
            with self.path.open("rb") as f:
                text = f.read(MAX_ALLOWED_FILE + 1)
            if len(text) > MAX_ALLOWED_FILE:
                raise ValueError(f"larger than {MAX_ALLOWED_FILE} bytes")
            entries = json.loads(text)["keys"]
            if len(entries) > MAX_ALLOWED_KEYS:
                raise ValueError(f"more than {MAX_ALLOWED_KEYS} keys")
            grants = [
                Grant(str(name), check_public_key(entry["public"]), Role(entry["role"]))
                for name, entry in entries.items()
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, PipecastError) as exc:
            self.error = f"{self.path} is not a valid allow-list ({exc}): nobody is allowed"
            return []
        self.error = None
        return grants

    def lookup(self, public: str | None) -> Grant | None:
        """The grant of `public` (Z85), or None if it is not allowed (now)."""
        return self._fresh().get(public) if public else None

    def grants(self) -> list[Grant]:
        return sorted(self._fresh().values(), key=lambda g: g.name)

    def allow(self, name: str, public: str, role: Role) -> Grant:
        """Allow `public` as `name` with `role` (replacing a grant of that name, and any
        grant of that key). Blocks while another process edits the list."""
        if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
            raise KeyFileError(f"a key name is 1 to 64 of [A-Za-z0-9_.-], not {name!r}")
        grant = Grant(name, check_public_key(public), Role(role))
        with self._editing():
            if self.error is not None and self.path.exists():
                raise KeyFileError(f"{self.error}; fix or remove it first")
            others = [g for g in self.grants() if g.name != name and g.public != grant.public]
            if len(others) >= MAX_ALLOWED_KEYS:
                raise KeyFileError(f"the allow-list holds at most {MAX_ALLOWED_KEYS} keys")
            self._write([*others, grant])
        return grant

    def revoke(self, name: str) -> bool:
        """Remove the grant called `name`; False if there is none. Blocks as `allow`."""
        with self._editing():
            grants = self.grants()
            kept = [g for g in grants if g.name != name]
            if len(kept) == len(grants):
                return False
            self._write(kept)
        return True

    def _editing(self) -> contextlib.AbstractContextManager[None]:
        """The list's lock file: two editors never lose each other's change."""
        return _locked(self.path.with_name(f".{self.path.name}.lock"))

    def _write(self, grants: list[Grant]) -> None:
        """Replace the file (under `_editing`), its mtime later than the one before: a
        new file may get the old one's inode and size, and the kernel's clock ticks in
        milliseconds, so a reader could otherwise take two versions for one."""
        doc = {"keys": {g.name: {"public": g.public, "role": g.role.value} for g in grants}}
        try:
            before = self.path.stat().st_mtime_ns
        except OSError:
            before = 0
        mtime = max(time.time_ns(), before + 1)
        _write_private(self.path, json.dumps(doc, indent=2, sort_keys=True) + "\n", mtime)


def ensure_node_keys(data_dir: Path) -> Path:
    """Give `data_dir` a keys folder if it has none: the node's and the owner's keypairs
    and an allow-list with the owner as `operate`. Returns the folder. Tightens the
    folder to 0700 if it was looser; `KeyFileError` if it cannot be made. Safe against
    another process doing the same at the same time (a lock file)."""
    folder = data_dir / KEYS_DIR
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        with _locked(folder / ".keys.lock"):
            if not (folder / f"{NODE_KEY}.key_secret").exists():
                write_keypair(folder, NODE_KEY, Keypair.new())
            if not (folder / f"{OWNER_KEY}.key_secret").exists():
                owner = Keypair.new()
                write_keypair(folder, OWNER_KEY, owner)
                AllowList(folder / ALLOWED).allow(OWNER_KEY, owner.public, Role.OPERATE)
            elif not (folder / ALLOWED).exists():
                owner = read_keypair(folder / f"{OWNER_KEY}.key_secret")
                AllowList(folder / ALLOWED).allow(OWNER_KEY, owner.public, Role.OPERATE)
    except OSError as exc:
        raise KeyFileError(f"cannot make the node's keys in {folder}: {exc.strerror}") from None
    return folder


def node_public_key(data_dir: Path) -> str:
    """The node's public key (Z85), its keys made first if the directory has none."""
    return read_keypair(ensure_node_keys(data_dir) / f"{NODE_KEY}.key").public


def allow_list(data_dir: Path) -> AllowList:
    """The node's allow-list, its keys made first if the directory has none."""
    return AllowList(ensure_node_keys(data_dir) / ALLOWED)


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """Hold `lock` (a lock file, made 0600 if missing) exclusively; blocks until then."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot lock {lock}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
