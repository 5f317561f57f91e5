"""pipecast.actors.cluster: many nodes, one library.

`Database` is the SQL surface the media library is written against, on the
node's own SQLite file or on a PostgreSQL database that several nodes share
(`open_database`). The rules of holding a job (a claim, a fence, a lease,
take-overs) live with the library (`pipecast.actors.media.Library`); here
are their reference model (`HoldsModel`, pure), the error a refused holder
gets (`LeaseLost`), what a node's holds did (`HoldStatistics`) and the path
table of shared storage (`PathMap`).
"""

from pipecast.actors.runtime import StoreError

from ._db import Database, PostgresDatabase, SqliteDatabase, Tx, open_database
from ._holds import HoldStatistics, LeaseLost
from ._model import HoldsModel, ModelJob, Outcome
from ._paths import PathMap, Unmapped

__all__ = [
    "Database",
    "HoldStatistics",
    "HoldsModel",
    "LeaseLost",
    "ModelJob",
    "Outcome",
    "PathMap",
    "PostgresDatabase",
    "SqliteDatabase",
    "StoreError",
    "Tx",
    "Unmapped",
    "open_database",
]
