"""Key files and the allow-list: formats, permissions, bounds, and concurrent editors."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
import zmq.auth

from pipecast.transport import (
    AllowList,
    ClientSecurity,
    KeyFileError,
    Keypair,
    Role,
    allow_list,
    check_public_key,
    ensure_node_keys,
    node_public_key,
    read_keypair,
    write_keypair,
)


def test_key_files_are_zeromq_certificates_that_pyzmq_reads(tmp_path):
    keys = Keypair.new()
    secret_file = write_keypair(tmp_path, "alice", keys)
    public, secret = zmq.auth.load_certificate(secret_file)
    assert (public.decode(), secret.decode()) == (keys.public, keys.secret)
    public_only, none = zmq.auth.load_certificate(tmp_path / "alice.key")
    assert (public_only.decode(), none) == (keys.public, None)
    assert read_keypair(secret_file) == keys
    for f in (secret_file, tmp_path / "alice.key"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_a_certificate_made_by_pyzmq_is_read_too(tmp_path):
    _, secret_file = zmq.auth.create_certificates(str(tmp_path), "made-elsewhere")
    keys = read_keypair(Path(secret_file))
    assert keys.secret is not None
    assert len(keys.public) == 40


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("", "No public key"),
        ('metadata\ncurve\n    public-key = "short"\n', "40 Z85"),
        ("x" * (64 * 1024 + 1), "at most 64 KiB"),
    ],
)
def test_a_missing_or_malformed_key_file_is_a_key_file_error_naming_it(tmp_path, content, message):
    path = tmp_path / "k.key_secret"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KeyFileError, match=message) as err:
        read_keypair(path)
    assert str(path) in str(err.value)


def test_a_directory_or_fifo_is_not_a_key_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    for name in ("fifo", "dir"):
        with pytest.raises(KeyFileError, match="not a key file"):
            read_keypair(tmp_path / name)


def test_a_client_needs_a_secret_key_and_a_real_node_key(tmp_path):
    write_keypair(tmp_path, "pub", Keypair(Keypair.new().public))
    with pytest.raises(KeyFileError, match="no secret key"):
        ClientSecurity.from_key_file(tmp_path / "pub.key", Keypair.new().public)
    secret = write_keypair(tmp_path, "full", Keypair.new())
    with pytest.raises(KeyFileError, match="not a public key"):
        ClientSecurity.from_key_file(secret, "x" * 39)


@pytest.mark.parametrize("bad", ["", "a" * 39, "a" * 41, "é" * 40, "a" * 39 + '"', 40])
def test_only_40_z85_characters_are_a_public_key(bad):
    with pytest.raises(KeyFileError):
        check_public_key(bad)  # type: ignore[arg-type]


def test_a_new_data_directory_gets_owner_and_node_keys_once(tmp_path):
    folder = ensure_node_keys(tmp_path)
    node = node_public_key(tmp_path)
    owner = read_keypair(folder / "owner.key_secret")
    assert [(g.name, g.role, g.public) for g in allow_list(tmp_path).grants()] == [
        ("owner", Role.OPERATE, owner.public)
    ]
    ensure_node_keys(tmp_path)  # again: nothing is replaced
    assert node_public_key(tmp_path) == node
    assert read_keypair(folder / "owner.key_secret") == owner


def test_a_loose_keys_folder_is_tightened_to_0700(tmp_path):
    (tmp_path / "keys").mkdir(mode=0o755)
    ensure_node_keys(tmp_path)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


def test_a_lost_allow_list_is_made_again_with_the_owner(tmp_path):
    folder = ensure_node_keys(tmp_path)
    (folder / "allowed.json").unlink()
    ensure_node_keys(tmp_path)
    assert [g.name for g in allow_list(tmp_path).grants()] == ["owner"]


def test_the_allow_list_sees_every_change_even_several_within_a_clock_tick(tmp_path):
    allowed = allow_list(tmp_path)
    reader = AllowList(allowed.path)  # another process's view, in effect
    k = Keypair.new()
    for i in range(50):
        allowed.allow("k", k.public, Role.WATCH)
        assert reader.lookup(k.public) is not None, i
        allowed.revoke("k")
        assert reader.lookup(k.public) is None, i
    assert reader.removals == 50


def test_a_role_change_is_not_a_removal(tmp_path):
    allowed = allow_list(tmp_path)
    k = Keypair.new()
    allowed.allow("k", k.public, Role.WATCH)
    before = allowed.check()
    allowed.allow("k", k.public, Role.OPERATE)
    assert allowed.lookup(k.public).role is Role.OPERATE  # type: ignore[union-attr]
    assert allowed.check() == before


def test_allowing_a_key_under_a_new_name_replaces_its_old_grant(tmp_path):
    allowed = allow_list(tmp_path)
    k = Keypair.new()
    allowed.allow("old", k.public, Role.WATCH)
    allowed.allow("new", k.public, Role.OPERATE)
    assert [g.name for g in allowed.grants()] == ["new", "owner"]


@pytest.mark.parametrize(
    "text",
    [
        "{broken",
        "[]",
        '{"keys": []}',
        '{"keys": {"a": {"public": "short", "role": "watch"}}}',
        '{"keys": {"a": {"public": "' + "a" * 40 + '", "role": "root"}}}',
    ],
)
def test_an_invalid_allow_list_allows_nobody_says_why_and_is_not_overwritten(tmp_path, text):
    allowed = allow_list(tmp_path)
    allowed.path.write_text(text)
    owner = read_keypair(tmp_path / "keys" / "owner.key")
    assert allowed.lookup(owner.public) is None
    assert allowed.error is not None
    assert "nobody is allowed" in allowed.error
    with pytest.raises(KeyFileError, match="fix or remove it"):
        allowed.allow("x", Keypair.new().public, Role.WATCH)
    assert allowed.path.read_text() == text


def test_an_oversized_allow_list_allows_nobody(tmp_path):
    allowed = allow_list(tmp_path)
    allowed.path.write_text(json.dumps({"keys": {}, "pad": "x" * (4 * 1024 * 1024)}))
    assert allowed.grants() == []
    assert "larger than" in (allowed.error or "")


def test_concurrent_editors_never_lose_each_others_grants(tmp_path):
    path = allow_list(tmp_path).path
    keys = [Keypair.new() for _ in range(40)]
    errors: list[BaseException] = []

    def editor(part: list[Keypair], n: int) -> None:
        mine = AllowList(path)  # its own reader, as a second process would have
        try:
            for i, k in enumerate(part):
                mine.allow(f"e{n}-{i}", k.public, Role.WATCH)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=editor, args=(keys[n::4], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(AllowList(path).grants()) == 41  # the owner and all forty
