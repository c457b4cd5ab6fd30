"""The cluster-wide index: this node's recordings and events rows, copied from its own SQLite
index (which stays the node's truth: a node that loses the database keeps recording and
indexing locally) to PostgreSQL, each row with the node that holds the file and the fence the
node held the camera under.

PostgreSQL takes a row only while that fence is still the camera's current one (the check is
in the INSERT's WHERE, evaluated in the same statement), so a node that was paused or cut off
and has lost the camera cannot write over its successor: its late rows are counted as
rejected and stay in its local index only. Rows wait here while the database is away and go
out when it is back (a high-water mark of local ids, plus the segments still open).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamwarden.cluster.facts import GAPS, PERIODS, FactPusher
from streamwarden.cluster.store import ClusterStore
from streamwarden.db import Database

log = logging.getLogger("streamwarden.cluster")

BATCH = 500
EVENT_WINDOW_S = 120.0   # events still growing are sent again while this recent
PRUNE_EVERY_S = 60.0     # retention deleted local rows: dropped from the cluster index too

_PUSH_RECORDING = (
    "INSERT INTO cluster_recordings (node_id, local_id, stream_id, path, start_ts, end_ts, "
    "duration, bytes, reason, status, fence) SELECT %(node)s, %(id)s, %(stream_id)s, %(path)s,"
    " %(start_ts)s, %(end_ts)s, %(duration)s, %(bytes)s, %(reason)s, %(status)s, %(fence)s "
    "WHERE EXISTS (SELECT 1 FROM ownership WHERE stream_id = %(stream_id)s "
    "AND fence <= %(fence)s) ON CONFLICT (node_id, local_id) DO UPDATE SET "
    "end_ts = excluded.end_ts, duration = excluded.duration, bytes = excluded.bytes, "
    "status = excluded.status, path = excluded.path RETURNING id")
_PUSH_EVENT = (
    "INSERT INTO cluster_events (node_id, local_id, stream_id, label, start_ts, end_ts, "
    "confidence, box, detections, model, pts, has_snapshot, fence, object_id, zones, path, "
    "stationary, active) SELECT %(node)s, %(id)s, %(stream_id)s, %(label)s, %(start_ts)s, "
    "%(end_ts)s, %(confidence)s, %(box)s, %(detections)s, %(model)s, %(pts)s, "
    "%(has_snapshot)s, %(fence)s, %(object_id)s, %(zones)s, %(path)s, %(stationary)s, "
    "%(active)s WHERE EXISTS (SELECT 1 FROM ownership WHERE stream_id = %(stream_id)s AND "
    "fence <= %(fence)s) ON CONFLICT (node_id, local_id) DO UPDATE SET end_ts = "
    "excluded.end_ts, confidence = excluded.confidence, box = excluded.box, detections = "
    "excluded.detections, pts = excluded.pts, has_snapshot = excluded.has_snapshot, "
    "zones = excluded.zones, path = excluded.path, stationary = excluded.stationary, "
    "active = excluded.active RETURNING id")


def _rows(db: Database, sql: str, args: tuple) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in db.conn.execute(sql, args)]
        except sqlite3.OperationalError:  # no such table (events before inference ran)
            return []

    return db.call(read)


@dataclass
class Replicator:
    db: Database
    store: ClusterStore
    fence_of: Callable[[str], int | None]   # the fence this node holds (or last held)
    started: bool = False
    rec_mark: int = 0
    event_mark: int = 0
    open_rows: dict[int, int] = field(default_factory=dict)   # local id -> fence sent with
    waiting: dict[int, float] = field(default_factory=dict)   # rows of cameras never held
    done: set[int] = field(default_factory=set)   # sent ahead of the mark (one camera's flush)
    accepted: int = 0
    rejected: int = 0
    _pruned_at: float = 0.0
    facts: list[FactPusher] = field(default_factory=list)

    def __post_init__(self) -> None:
        def read(sql: str, args: tuple) -> list[dict[str, Any]]:
            return _rows(self.db, sql, args)

        self.facts = [FactPusher(table, self.store, self.fence_of, read)
                      for table in (PERIODS, GAPS)]

    def _start(self) -> None:
        """Where to go on from: the highest local ids the cluster index has from this node,
        and its segments that were still open there."""
        node = self.store.node_id
        rec = self.store.execute("SELECT COALESCE(max(local_id), 0) FROM cluster_recordings "
                                 "WHERE node_id = %s", (node,))
        ev = self.store.execute("SELECT COALESCE(max(local_id), 0) FROM cluster_events "
                                "WHERE node_id = %s", (node,))
        opened = self.store.execute("SELECT local_id, fence FROM cluster_recordings "
                                    "WHERE node_id = %s AND status = 'recording'", (node,))
        self.rec_mark, self.event_mark = int(rec[0][0]), int(ev[0][0])
        self.open_rows = {int(i): int(f) for i, f in opened}
        self.started = True

    def push(self, stream_id: str | None = None) -> None:
        """Send what is new or changed (of one camera only, before handing it over). Raises
        StoreUnavailableError when the database is away: nothing is lost, the next call
        sends it."""
        if not self.started:
            self._start()
        self._push_recordings(stream_id)
        for facts in self.facts:  # small: sent whole, also before a handoff
            facts.push()
        if stream_id is None:
            self._push_events()
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                self._prune()

    def _push_recordings(self, only: str | None) -> None:
        ids = sorted(set(self.open_rows) | set(self.waiting))
        marks = ",".join("?" * len(ids))
        rows = _rows(self.db, f"SELECT * FROM recordings WHERE id > ? OR id IN ({marks}) "
                     "ORDER BY id LIMIT ?", (self.rec_mark, *ids, BATCH))
        batch: list[dict[str, Any]] = []
        for row in rows:
            if (only is not None and row["stream_id"] != only) or row["id"] in self.done:
                continue
            fence = self.open_rows.get(row["id"]) or self.fence_of(row["stream_id"])
            if fence is None:  # a camera warming up for a handoff: sent once it is ours
                self.waiting.setdefault(row["id"], time.monotonic())
                continue
            batch.append({**row, "node": self.store.node_id, "fence": fence})
        results = self._send(_PUSH_RECORDING, batch)
        for row, ok in zip(batch, results, strict=True):
            self.waiting.pop(row["id"], None)
            if ok and row["status"] == "recording":
                self.open_rows[row["id"]] = row["fence"]
            else:
                self.open_rows.pop(row["id"], None)
                if only is not None and row["id"] > self.rec_mark:
                    self.done.add(row["id"])
        if only is None and rows:
            self.rec_mark = max(self.rec_mark, *(r["id"] for r in rows))
            self.done = {i for i in self.done if i > self.rec_mark}
        stale = time.monotonic() - 600.0
        self.waiting = {k: v for k, v in self.waiting.items() if v > stale}

    def _push_events(self) -> None:
        since = time.time() - EVENT_WINDOW_S
        rows = _rows(self.db, "SELECT id, stream_id, label, start_ts, end_ts, confidence, box, "
                     "detections, model, pts, snapshot IS NOT NULL AS has_snapshot, object_id,"
                     " zones, path, stationary, active FROM events "
                     "WHERE id > ? OR end_ts >= ? ORDER BY id LIMIT ?",
                     (self.event_mark, since, BATCH))
        batch = []
        for row in rows:
            fence = self.fence_of(row["stream_id"])
            if fence is not None:
                batch.append({**row, "has_snapshot": bool(row["has_snapshot"]),
                              "stationary": bool(row["stationary"]),
                              "active": bool(row["active"]),
                              "node": self.store.node_id, "fence": fence})
        self._send(_PUSH_EVENT, batch)
        if rows:
            self.event_mark = max(self.event_mark, *(r["id"] for r in rows))

    def _send(self, sql: str, batch: list[dict[str, Any]]) -> list[bool]:
        if not batch:
            return []
        results = self.store.run_each(sql, batch)
        for row, ok in zip(batch, results, strict=True):
            if ok:
                self.accepted += 1
            else:
                self.rejected += 1
                log.warning("stream %s: index row %s refused by the cluster (fence %d is not "
                            "the camera's current one); kept in this node's index only",
                            row["stream_id"], row["id"], row["fence"],
                            extra={"stream_id": row["stream_id"], "event": "fence_rejected"})
        return results

    def _prune(self) -> None:
        """Recordings retention removed here: out of the cluster index too. And any node ends
        what dead nodes left open (store.interrupt_dead)."""
        node = self.store.node_id
        remote = {int(r[0]) for r in self.store.execute(
            "SELECT local_id FROM cluster_recordings WHERE node_id = %s AND local_id <= %s",
            (node, self.rec_mark))}
        local = {int(r["id"]) for r in _rows(self.db, "SELECT id FROM recordings", ())}
        gone = sorted(remote - local)
        if gone:
            self.store.execute("DELETE FROM cluster_recordings WHERE node_id = %s AND "
                               "local_id = ANY(%s)", (node, gone))
        self.store.interrupt_dead()  # dead nodes' open segments of cameras nobody claimed
        self._pruned_at = time.monotonic()
