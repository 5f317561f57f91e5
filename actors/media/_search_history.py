"""What earlier CRF searches left in the store, for the searches after them.

Every probe of every job (`record_probe`, `probes_of`), the cache of sample
encodes and their scores (`cache_get`, `cache_put`: the cache's key names
everything the result depends on), and what searches chose, to start the
next one near its answer: the same content's CRF elsewhere, the siblings'
CRFs, the u-slopes the latest searches fitted. The tables are the library's
(`Library` creates them and holds one of these as `searches`). Called from
the CRF search stage's thread; every method blocks on SQLite and raises
`StoreError` on a store failure. Values are maps here: this is the store's
edge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pipecast.actors.cluster import Database

__all__ = ["SearchHistory"]


class SearchHistory:
    """See module docstring."""

    def __init__(self, db: Database, shared: Callable[[str], str] = str) -> None:
        self.db = db
        self._shared = shared  # a path of this node in the store's form

    def record_probe(self, job_id: int, target: float, probe: dict[str, Any]) -> None:
        """Store a probe; one at the same job, target and CRF (a partial one) is replaced."""
        with self.db.transaction() as db:
            db.execute(
                "DELETE FROM crf_probes WHERE job=? AND target=? AND crf=?",
                (job_id, target, probe["crf"]),
            )
            db.execute(
                "INSERT INTO crf_probes (job, target, crf, mean, worst, p1, se, percent, seconds, "
                "samples, cached, created, paired_with) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id, target, probe["crf"], probe["mean"], probe["worst"], probe["p1"],
                    probe["se"], probe["percent"], probe["seconds"], json.dumps(probe["samples"]),
                    int(probe["cached"]), time.time(), probe.get("paired_with"),
                ),
            )  # fmt: skip

    def probes_of(self, job_id: int) -> list[dict[str, Any]]:
        rows = self.db.rows(
            "SELECT target, crf, mean, worst, p1, se, percent, seconds, cached, paired_with, "
            "samples FROM crf_probes WHERE job=? ORDER BY id",
            (job_id,),
        )
        keys = (
            "target", "crf", "mean", "worst", "p1", "se", "percent", "seconds", "cached",
            "paired_with",
        )  # fmt: skip
        return [
            {**dict(zip(keys, r[:-1], strict=True)), "samples": json.loads(r[-1])} for r in rows
        ]

    def recent_slopes(self, encoder: str, limit: int = 50) -> list[float]:
        """The u-slopes the latest searches with `encoder` (their arguments' key) fitted."""
        # read in Python, not with an engine's JSON functions: the same on both engines,
        # and bounded (the latest searches only)
        rows = self.db.rows(
            "SELECT search FROM media_files WHERE search IS NOT NULL "
            "ORDER BY updated DESC, id DESC LIMIT ?",
            (limit * 20,),
        )
        out = []
        for (text,) in rows:
            search = _json_map(text)
            slope = search.get("u_slope")
            if search.get("encoder") == encoder and type(slope) in (int, float):
                out.append(float(slope))  # type: ignore[arg-type]
                if len(out) == limit:
                    break
        return out

    def same_content_crf(
        self, size: int, digest: str, exclude: int, encoder: str, target: float
    ) -> float | None:
        """The CRF a search chose for the same content (size and digest) elsewhere,
        with the same encoder arguments (`encoder` key) and target; the latest."""
        rows = self.db.rows(
            "SELECT crf, search FROM media_files WHERE id != ? AND size = ? AND digest = ? "
            "AND crf IS NOT NULL AND state IN ('crf_searched', 'encoding', 'encoded') "
            "AND search IS NOT NULL ORDER BY updated DESC LIMIT 100",
            (exclude, size, digest),
        )
        for crf, text in rows:
            search = _json_map(text)
            if search.get("encoder") == encoder and search.get("target") == target:
                return float(crf)
        return None

    def sibling_crfs(self, directory: str, height: int | None, exclude: int) -> list[float]:
        """Chosen CRFs of other files in `directory` with the same height (same class)."""
        rows = self.db.rows(
            "SELECT crf, probe FROM media_files WHERE id != ? AND crf IS NOT NULL AND "
            "path LIKE ? AND state IN ('crf_searched', 'encoding', 'encoded')",
            (exclude, self._shared(directory).rstrip("/") + "/%"),
        )
        out = []
        for crf, probe in rows:
            streams = (json.loads(probe) or {}).get("streams", []) if probe else []
            h = next((s.get("height") for s in streams if s.get("kind") == "video"), None)
            if h == height:
                out.append(float(crf))
        return out

    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.db.row("SELECT result FROM crf_cache WHERE key=?", (key,))
        return None if row is None else dict(json.loads(row[0]))

    def cache_put(self, key: str, result: dict[str, Any]) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO crf_cache (key, result, created) VALUES (?, ?, ?) ON CONFLICT (key) "
                "DO UPDATE SET result=excluded.result, created=excluded.created",
                (key, json.dumps(result), time.time()),
            )


def _json_map(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
