"""Both engines for the claims contract: SQLite in a temp folder, PostgreSQL in a
throwaway cluster (one per session, a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors.cluster import PostgresClaims, SqliteClaims, open_claims


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claims.db'}"
    return request.getfixturevalue("postgres").fresh_database()


@pytest.fixture
def claims(store_url: str) -> Iterator[SqliteClaims | PostgresClaims]:
    store = open_claims(store_url)
    yield store
    store.close()
