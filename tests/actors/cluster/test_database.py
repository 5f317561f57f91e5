"""One SQL surface on both engines: placeholders, transactions, migrations, errors."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from pipecast.actors import Store
from pipecast.actors.cluster import PostgresDatabase, StoreError, open_database

MIGRATIONS = {
    1: ("CREATE TABLE things (id {id}, name TEXT NOT NULL, weight {real})",),
    2: ("ALTER TABLE things ADD COLUMN colour TEXT",),
}


def test_migrations_are_applied_once_each_and_in_order(database) -> None:
    assert database.migrate("things", {1: MIGRATIONS[1]}) == 1
    assert database.migrate("things", MIGRATIONS) == 2  # a newer node: only version 2
    assert database.migrate("things", MIGRATIONS) == 2  # another node starting: nothing
    with database.transaction() as db:
        row = db.execute(
            "INSERT INTO things (name, weight, colour) VALUES (?, ?, ?) RETURNING id",
            ("a", 0.1 + 0.2, "red"),
        ).fetchone()
    assert database.row("SELECT name, weight, colour FROM things WHERE id=?", row) == (
        "a",
        0.1 + 0.2,  # a double on both engines: no precision lost
        "red",
    )


def test_a_transaction_that_raises_changes_nothing(database) -> None:
    database.migrate("things", MIGRATIONS)

    def half_way() -> None:
        with database.transaction() as db:
            db.execute("INSERT INTO things (name) VALUES (?)", ("gone",))
            raise RuntimeError("half way")

    with pytest.raises(RuntimeError):
        half_way()
    assert database.rows("SELECT name FROM things") == []


def test_an_engine_error_is_a_store_error(database) -> None:
    with pytest.raises(StoreError, match=database.engine):
        database.rows("SELECT * FROM no_such_table")


def test_nodes_starting_together_migrate_once(postgres) -> None:
    url = postgres.fresh_database()
    dbs = [PostgresDatabase(url) for _ in range(4)]
    versions: list[int] = []

    def start(db: PostgresDatabase) -> None:
        versions.append(db.migrate("things", MIGRATIONS))
        db.release()

    threads = [threading.Thread(target=start, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert versions == [2, 2, 2, 2]
    assert dbs[0].rows("SELECT version FROM schema_versions WHERE name='things'") == [(2,)]
    for db in dbs:
        db.close()


def test_a_restarted_postgresql_is_reconnected_and_nothing_is_lost(postgres) -> None:
    db = PostgresDatabase(postgres.fresh_database())
    try:
        db.migrate("things", MIGRATIONS)
        with db.transaction() as tx:
            tx.execute("INSERT INTO things (name) VALUES (?)", ("kept",))
        postgres.restart()
        with contextlib.suppress(StoreError):  # the call that meets the broken connection
            db.rows("SELECT 1")
        assert db.rows("SELECT name FROM things") == [("kept",)]  # a new connection
    finally:
        db.close()


def test_a_client_without_the_password_is_refused(postgres, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        db = open_database(postgres.dsn.replace(postgres.password, "not-the-password"), store)
        with pytest.raises(StoreError, match="postgresql"):
            db.rows("SELECT 1")
    finally:
        store.close()


def test_a_store_url_names_an_engine(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        with pytest.raises(StoreError, match="postgresql://"):
            open_database("mysql://x", store)
    finally:
        store.close()
