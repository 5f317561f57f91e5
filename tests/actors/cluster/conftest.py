"""Both engines: the node's SQLite file in a temp folder, and a fresh database of a
throwaway PostgreSQL cluster (one per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors import Store
from pipecast.actors.cluster import PostgresDatabase, SqliteDatabase, open_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[SqliteDatabase | PostgresDatabase]:
    store = Store(tmp_path / "s.db")
    url = "" if request.param == "sqlite" else request.getfixturevalue("postgres").fresh_database()
    db = open_database(url, store)
    yield db
    if isinstance(db, PostgresDatabase):
        db.close()
    store.close()
