"""The timeline's facts in the cluster index, so any node can explain a camera's gaps across
the nodes that held it (api/cluster_timeline.py).

A node's own timeline (recording/timeline.py) is built from its segments and from facts it
stores beside them: periods when recording was requested or the camera was offline
(`stream_periods`, history.py) and recorder outages, retention deletions and discontinuities
(`recording_gaps`, gaps.py). Each replication step copies the new and the still-open ones
(and each open one once more when it closes) to `cluster_facts`, with the fence the node
holds the camera under, refused like index rows when that fence is no longer current.
Who held the camera when is `cluster_holds` (store.py): that is the cluster's "service
running" for a camera.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamwarden.cluster.store import ClusterStore

BATCH = 500

_PUSH = (
    "INSERT INTO cluster_facts (node_id, source, local_id, stream_id, kind, start_ts, end_ts, "
    "fence) SELECT %(node)s, %(source)s, %(id)s, %(stream_id)s, %(kind)s, %(start_ts)s, "
    "%(end_ts)s, %(fence)s WHERE EXISTS (SELECT 1 FROM ownership WHERE stream_id = "
    "%(stream_id)s AND fence <= %(fence)s) ON CONFLICT (node_id, source, local_id) DO UPDATE "
    "SET end_ts = excluded.end_ts, kind = excluded.kind RETURNING id")


@dataclass(frozen=True)
class FactTable:
    """One local table, read as (id, stream_id, kind, start_ts, end_ts; NULL end: open)."""

    source: str
    select: str   # with "{where}" for the rows to read

    def query(self, open_ids: list[int]) -> str:
        marks = ",".join("?" * len(open_ids))
        return self.select.format(where=f"id > ? OR id IN ({marks})") + " ORDER BY id LIMIT ?"


PERIODS = FactTable("period", "SELECT id, stream_id, kind, start_ts, end_ts FROM "
                              "stream_periods WHERE {where} OR end_ts IS NULL")
GAPS = FactTable("gap", "SELECT id, stream_id, reason AS kind, start_ts, CASE WHEN open "
                        "THEN NULL ELSE end_ts END AS end_ts FROM recording_gaps "
                        "WHERE {where} OR open = 1")


@dataclass
class FactPusher:
    """Sends one local table's new and open rows; remembers what it sent open."""

    table: FactTable
    store: ClusterStore
    fence_of: Callable[[str], int | None]
    read: Callable[[str, tuple], list[dict[str, Any]]]
    mark: int = -1   # -1: not started (where the cluster index has got to is read first)
    open_ids: set[int] = field(default_factory=set)

    def push(self) -> tuple[int, int]:
        """(accepted, refused) rows."""
        if self.mark < 0:
            self.mark = int(self.store.execute(
                "SELECT COALESCE(max(local_id), 0) FROM cluster_facts WHERE node_id = %s AND "
                "source = %s", (self.store.node_id, self.table.source))[0][0])
        ids = sorted(self.open_ids)
        rows = self.read(self.table.query(ids), (self.mark, *ids, BATCH))
        batch = []
        for row in rows:
            fence = self.fence_of(row["stream_id"])
            if fence is not None:  # a camera warming up for a handoff: sent while open
                batch.append({**row, "node": self.store.node_id, "source": self.table.source,
                              "fence": fence})
        results = self.store.run_each(_PUSH, batch) if batch else []
        self.open_ids = {row["id"] for row, ok in zip(batch, results, strict=True)
                         if ok and row["end_ts"] is None}
        if rows:  # open rows come again by themselves (and once more when closed: open_ids)
            self.mark = max(self.mark, *(r["id"] for r in rows))
        accepted = sum(results)
        return accepted, len(results) - accepted
