"""pipecast.actors.cluster: many nodes, one library: claiming work with leases.

`Claims` is the contract (`_claims.py`): a job is claimed by one node at a
time, under a lease it renews and an attempt number that fences every later
step; `SqliteClaims` keeps it for one node, `PostgresClaims` for a cluster
(`open_claims("sqlite:///..." | "postgresql://...")`). `Database` is the SQL
surface the media library is written against, on either engine.
"""

from ._claims import (
    Claim,
    Claims,
    ClaimsStatistics,
    ClaimState,
    JobRecord,
    LeaseLost,
    StoreError,
)
from ._db import Database, PostgresDatabase, SqliteDatabase, Tx, open_database
from ._holds import HoldStatistics
from ._model import ClaimsModel, ModelJob
from ._paths import PathMap, Unmapped
from ._sql import SCHEMA_VERSION, PostgresClaims, SqliteClaims, open_claims

__all__ = [
    "SCHEMA_VERSION",
    "Claim",
    "ClaimState",
    "Claims",
    "ClaimsModel",
    "ClaimsStatistics",
    "Database",
    "HoldStatistics",
    "JobRecord",
    "LeaseLost",
    "ModelJob",
    "PathMap",
    "PostgresClaims",
    "PostgresDatabase",
    "SqliteClaims",
    "SqliteDatabase",
    "StoreError",
    "Tx",
    "Unmapped",
    "open_claims",
    "open_database",
]
