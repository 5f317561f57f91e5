"""Both engines for the claims contract: SQLite in a temp folder, PostgreSQL in a
throwaway cluster (one per session, a fresh database per test)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipecast.actors.cluster import PostgresClaims, SqliteClaims, open_claims
from pipecast.testing import PostgresServer, find_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir, why = find_postgres()
    if bin_dir is None:
        pytest.skip(why)
    server = PostgresServer(bin_dir)
    yield server
    server.stop()


def fresh_database(server: PostgresServer) -> str:
    """A new, empty database of the cluster; its URL."""
    import psycopg  # noqa: PLC0415

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claims.db'}"
    return fresh_database(request.getfixturevalue("postgres"))


@pytest.fixture
def claims(store_url: str) -> Iterator[SqliteClaims | PostgresClaims]:
    store = open_claims(store_url)
    yield store
    store.close()
