"""The nodes that share a library's store: where each is reached, what it runs.

Each node writes its row at start (`register`) and its stages' sweeps mark it
seen every few seconds (`seen`); `nodes` lists them for the `nodes` op,
`pipecast nodes` and `--node NAME`. Called from the node's start-up thread
and its stages' threads (one connection each); blocks on the engine and
raises `StoreError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pipecast.actors.cluster import Database

from ._library_rows import IN_RUNNING, RUNNING_VALUES

__all__ = ["NodeRegistry"]


class NodeRegistry:
    """See module docstring. `node` is this node's name; `clock` the wall clock."""

    def __init__(self, db: Database, node: str, clock: Callable[[], float]) -> None:
        self.db, self.node, self._clock = db, node, clock

    def register(
        self, endpoints: dict[str, str], public_key: str | None, stages: list[str]
    ) -> None:
        """Say in the store where this node is reached and what it runs (at start)."""
        now = self._clock()
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO cluster_nodes (name, status, sync, control, public_key, stages, "
                "started, seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "status=excluded.status, sync=excluded.sync, control=excluded.control, "
                "public_key=excluded.public_key, stages=excluded.stages, "
                "started=excluded.started, seen=excluded.seen",
                (
                    self.node,
                    endpoints["status"],
                    endpoints["sync"],
                    endpoints["control"],
                    public_key,
                    json.dumps(stages),
                    now,
                    now,
                ),
            )

    def seen(self) -> None:
        """This node is alive (its stages' sweeps say so every few seconds)."""
        with self.db.transaction() as db:
            db.execute("UPDATE cluster_nodes SET seen=? WHERE name=?", (self._clock(), self.node))

    def nodes(self) -> list[dict[str, Any]]:
        """Every node the store knows, with the jobs each holds now."""
        held = dict(
            self.db.rows(
                f"SELECT node, COUNT(*) FROM media_files WHERE {IN_RUNNING} GROUP BY node",  # noqa: S608
                RUNNING_VALUES,
            )
        )
        rows = self.db.rows(
            "SELECT name, status, sync, control, public_key, stages, started, seen "
            "FROM cluster_nodes ORDER BY name"
        )
        keys = ("name", "status", "sync", "control", "public_key", "stages", "started", "seen")
        out = []
        for row in rows:
            node = dict(zip(keys, row, strict=True))
            node["stages"] = json.loads(node["stages"])
            node["held"] = int(held.get(node["name"], 0))
            out.append(node)
        return out
