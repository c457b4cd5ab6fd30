"""The SQL of the cluster, on psycopg 3. One `ClusterStore` per thread that uses it (the node's
loop has its own, the API another): a psycopg connection is not shared between threads here.

Every method is one transaction. A lost connection raises `StoreUnavailableError` (the connection
is dropped and made again on the next call), so callers decide what an outage means: the node
keeps its cameras, the replicator keeps its rows for later, the API answers 503. Connections
carry a TCP user timeout and keepalives, so a partition fails a call within seconds instead
of hanging on a dead socket.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from streamwarden.cluster.decide import LeaseRow, NodeRow, Snapshot
from streamwarden.cluster.schema import LOCK_KEY, STATEMENTS

CONNECT_TIMEOUT_S = 3
# An orphan whose wanted node has not claimed it this many leases after its lease ended is
# taken by any node with room (longer than a node's settling after start-up, node.py).
STALE_LEASES = 3


# A segment a node left open in the cluster index when it died or lost the camera: marked
# `interrupted`, ending at that node's last heartbeat (its last replicated moment: the node
# sends its index rows right after each heartbeat), never before the segment's start. The file
# on that node may hold more (it is repaired there when the node starts again); the cluster
# index keeps only what the node published under a valid fence.
INTERRUPT_OPEN = (
    "UPDATE cluster_recordings r SET status = 'interrupted', end_ts = e.end_ts, "
    "duration = e.end_ts - r.start_ts FROM (SELECT r2.id, GREATEST(r2.start_ts, LEAST("
    "COALESCE(extract(epoch FROM n.heartbeat)::float8, 0), extract(epoch FROM now())::float8)) "
    "AS end_ts FROM cluster_recordings r2 LEFT JOIN cluster_nodes n ON n.node_id = r2.node_id "
    "WHERE r2.status = 'recording' AND ")


# A new holder of a camera (claim or transfer): its hold runs until its last renewal.
_HOLD = ("INSERT INTO cluster_holds VALUES (%(sid)s, %(fence)s, %(node)s, "
         "extract(epoch FROM now())::float8, extract(epoch FROM now())::float8) "
         "ON CONFLICT DO NOTHING")


class StoreUnavailableError(RuntimeError):
    """The database could not be reached or the call failed on the way."""


@dataclass(frozen=True)
class CycleResult:
    renewed: dict[str, int]      # stream id -> fence, the leases this node still holds
    snapshot: Snapshot
    catalog_version: int


@dataclass(frozen=True)
class CatalogRow:
    stream_id: str
    config: str   # encrypted
    digest: str
    source: str
    version: int


class ClusterStore:
    def __init__(self, url: str, node_id: str, lease: float):
        self.url = url
        self.node_id = node_id
        self.lease = lease
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # the API's store is used from several worker threads

    # ---- connection ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        timeout_ms = int(max(2.0, self.lease / 2) * 1000)
        return psycopg.connect(
            self.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=False,
            application_name=f"streamwarden:{self.node_id}", row_factory=tuple_row,
            keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=2,
            tcp_user_timeout=timeout_ms, options=f"-c statement_timeout={timeout_ms}")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor]:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as exc:
                self.close_quietly()
                raise StoreUnavailableError(str(exc).strip().splitlines()[0] if str(exc)
                                       else "database unavailable") from None

    def close_quietly(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def create_schema(self) -> None:
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            for statement in STATEMENTS:
                cur.execute(statement)

    # ---- the camera list -------------------------------------------------------------------

    def _bump(self, cur: psycopg.Cursor) -> int:
        cur.execute("UPDATE cluster_meta SET catalog_version = catalog_version + 1 "
                    "RETURNING catalog_version")
        row = cur.fetchone()
        assert row is not None
        return int(row[0])

    def put_stream(self, stream_id: str, config: str, digest: str, source: str,
                   create: bool = False) -> bool:
        """Add or replace a camera. With `create`, False if the id is taken (nothing written);
        otherwise False when the stored one has the same digest (nothing to change)."""
        with self._tx() as cur:
            cur.execute("SELECT digest FROM cluster_streams WHERE stream_id = %s FOR UPDATE",
                        (stream_id,))
            row = cur.fetchone()
            if row is not None and (create or row[0] == digest):
                return False
            version = self._bump(cur)
            cur.execute(
                "INSERT INTO cluster_streams (stream_id, config, digest, source, version) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET "
                "config = excluded.config, digest = excluded.digest, source = excluded.source, "
                "version = excluded.version, updated_at = now()",
                (stream_id, config, digest, source, version))
            cur.execute("INSERT INTO ownership (stream_id) VALUES (%s) ON CONFLICT DO NOTHING",
                        (stream_id,))
            return True

    def delete_stream(self, stream_id: str) -> bool:
        with self._tx() as cur:
            cur.execute("DELETE FROM cluster_streams WHERE stream_id = %s", (stream_id,))
            if cur.rowcount == 0:
                return False
            self._bump(cur)
            return True

    def catalog(self) -> tuple[int, list[CatalogRow]]:
        with self._tx() as cur:
            cur.execute("SELECT catalog_version FROM cluster_meta")
            row = cur.fetchone()
            cur.execute("SELECT stream_id, config, digest, source, version FROM cluster_streams "
                        "ORDER BY stream_id")
            rows = [CatalogRow(*r) for r in cur.fetchall()]
        return (int(row[0]) if row else 0), rows

    # ---- leases ----------------------------------------------------------------------------

    def cycle(self, url: str, capacity: int | None, leaving: bool, load: dict[str, Any],
              views: dict[str, Any]) -> CycleResult:
        """Heartbeat, renew every lease this node holds (one UPDATE), read the snapshot."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO cluster_nodes (node_id, url, capacity, expires, leaving, load) "
                "VALUES (%(me)s, %(url)s, %(cap)s, now() + %(lease)s * interval '1 second', "
                "%(leaving)s, %(load)s) ON CONFLICT (node_id) DO UPDATE SET url = excluded.url,"
                " capacity = excluded.capacity, heartbeat = now(), expires = excluded.expires,"
                " leaving = excluded.leaving, load = excluded.load",
                {"me": self.node_id, "url": url, "cap": capacity, "lease": self.lease,
                 "leaving": leaving, "load": json.dumps(load)})
            cur.execute(
                "UPDATE ownership o SET expires = now() + %(lease)s * interval '1 second', "
                "view = COALESCE(%(views)s::jsonb -> o.stream_id, o.view) "
                "WHERE owner = %(me)s RETURNING stream_id, fence",
                {"me": self.node_id, "lease": self.lease, "views": json.dumps(views)})
            renewed = {sid: int(fence) for sid, fence in cur.fetchall()}
            cur.execute("INSERT INTO cluster_holds SELECT stream_id, fence, owner, "
                        "extract(epoch FROM now())::float8, extract(epoch FROM now())::float8 "
                        "FROM ownership WHERE owner = %s ON CONFLICT (stream_id, fence) "
                        "DO UPDATE SET end_ts = excluded.end_ts", (self.node_id,))
            snapshot, version = self._snapshot(cur)
        return CycleResult(renewed, snapshot, version)

    def _snapshot(self, cur: psycopg.Cursor) -> tuple[Snapshot, int]:
        cur.execute("SELECT catalog_version, pg_postmaster_start_time() < "
                    "now() - %s * interval '1 second' FROM cluster_meta", (self.lease,))
        meta = cur.fetchone()
        assert meta is not None
        cur.execute("SELECT node_id, capacity, expires > now(), leaving, url FROM cluster_nodes")
        nodes = [NodeRow(*row) for row in cur.fetchall()]
        cur.execute(
            "SELECT stream_id, owner, fence, owner IS NULL OR expires < now(), "
            "expires < now() - %s * interval '1 second', handoff_to, ready, "
            "extract(epoch FROM now() - handoff_at)::float8 FROM ownership ORDER BY stream_id",
            (STALE_LEASES * self.lease,))
        leases = [LeaseRow(*row) for row in cur.fetchall()]
        return Snapshot(self.node_id, nodes, leases, bool(meta[1])), int(meta[0])

    def claim(self, stream_id: str) -> int | None:
        """Take an orphan: at most one node wins (the row is locked by the UPDATE and the
        condition checked again on the locked row). The new fence, or None if lost. In the
        same transaction, the segments the previous owners left open in the cluster index are
        ended (`interrupted`, see INTERRUPT_OPEN): their owner cannot close them any more (its
        fence is no longer current), and the index must not show it still recording."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE ownership SET owner = %(me)s, fence = fence + 1, "
                "expires = now() + %(lease)s * interval '1 second', handoff_to = NULL, "
                "handoff_at = NULL, ready = false WHERE stream_id = %(sid)s AND (owner IS NULL "
                "OR (expires < now() AND pg_postmaster_start_time() < "
                "now() - %(lease)s * interval '1 second')) RETURNING fence",
                {"me": self.node_id, "lease": self.lease, "sid": stream_id})
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(_HOLD, {"sid": stream_id, "fence": int(row[0]), "node": self.node_id})
            cur.execute(INTERRUPT_OPEN + "r2.stream_id = %(sid)s AND r2.fence < %(fence)s"
                        ") e WHERE r.id = e.id", {"sid": stream_id, "fence": int(row[0])})
        return int(row[0])

    def interrupt_dead(self) -> int:
        """End the open segments of nodes whose heartbeat lease ended over a lease ago (for
        cameras nobody claimed: deleted, or no node with room). How many."""
        with self._tx() as cur:
            cur.execute(INTERRUPT_OPEN + "n.expires < now() - %(lease)s * interval "
                        "'1 second') e WHERE r.id = e.id", {"lease": self.lease})
            return cur.rowcount

    def transfer(self, stream_id: str, to: str) -> int | None:
        """Give a camera to the node that is ready for it, with a new fence."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE ownership SET owner = %(to)s, fence = fence + 1, "
                "expires = now() + %(lease)s * interval '1 second', handoff_to = NULL, "
                "handoff_at = NULL, ready = false WHERE stream_id = %(sid)s AND owner = %(me)s "
                "AND handoff_to = %(to)s RETURNING fence",
                {"me": self.node_id, "lease": self.lease, "sid": stream_id, "to": to})
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(_HOLD, {"sid": stream_id, "fence": int(row[0]), "node": to})
            cur.execute("UPDATE cluster_holds SET end_ts = extract(epoch FROM now())::float8 "
                        "WHERE stream_id = %s AND fence = %s", (stream_id, int(row[0]) - 1))
        return int(row[0])

    def offer(self, stream_id: str, to: str) -> bool:
        return self._update("UPDATE ownership SET handoff_to = %(to)s, handoff_at = now(), "
                            "ready = false WHERE stream_id = %(sid)s AND owner = %(me)s "
                            "AND handoff_to IS NULL", stream_id, to)

    def mark_ready(self, stream_id: str) -> bool:
        return self._update("UPDATE ownership SET ready = true WHERE stream_id = %(sid)s "
                            "AND handoff_to = %(me)s", stream_id)

    def cancel(self, stream_id: str) -> bool:
        return self._update("UPDATE ownership SET handoff_to = NULL, handoff_at = NULL, "
                            "ready = false WHERE stream_id = %(sid)s AND owner = %(me)s",
                            stream_id)

    def release(self, stream_id: str | None = None) -> bool:
        """Give up one camera (or all): free at once for the others to claim."""
        where = "owner = %(me)s" + ("" if stream_id is None else " AND stream_id = %(sid)s")
        return self._update("UPDATE ownership SET owner = NULL, expires = now(), "
                            f"handoff_to = NULL, handoff_at = NULL, ready = false WHERE {where}",
                            stream_id)

    def node_down(self) -> None:
        self._update("UPDATE cluster_nodes SET expires = now(), leaving = true "
                     "WHERE node_id = %(me)s", None)

    def _update(self, sql: str, stream_id: str | None, to: str | None = None) -> bool:
        with self._tx() as cur:
            cur.execute(sql, {"me": self.node_id, "sid": stream_id, "to": to})
            return cur.rowcount > 0

    # ---- reads for the API -----------------------------------------------------------------

    def nodes(self) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute(
                "SELECT n.node_id, n.url, n.capacity, n.expires > now(), n.leaving, "
                "extract(epoch FROM now() - n.heartbeat)::float8, n.load, n.started_at, "
                "(SELECT count(*) FROM ownership o WHERE o.owner = n.node_id AND "
                "o.expires > now()) FROM cluster_nodes n ORDER BY n.node_id")
            keys = ("node_id", "url", "capacity", "alive", "leaving", "lease_age_s", "load",
                    "started_at", "cameras")
            return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]

    def owners(self) -> dict[str, tuple[str | None, int, str | None, Any]]:
        """stream id -> (live owner or None, fence, its URL, its last view)."""
        with self._tx() as cur:
            cur.execute(
                "SELECT o.stream_id, CASE WHEN o.expires > now() THEN o.owner END, o.fence, "
                "n.url, o.view FROM ownership o LEFT JOIN cluster_nodes n "
                "ON n.node_id = o.owner")
            return {sid: (owner, int(fence), url, view)
                    for sid, owner, fence, url, view in cur.fetchall()}

    def node_url(self, node_id: str) -> tuple[str, bool] | None:
        """A node's URL and whether it is alive."""
        with self._tx() as cur:
            cur.execute("SELECT url, expires > now() FROM cluster_nodes WHERE node_id = %s",
                        (node_id,))
            row = cur.fetchone()
        return (row[0], bool(row[1])) if row else None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        """One read for the index queries (index.py builds them)."""
        with self._tx() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def run_each(self, sql: str, rows: Sequence[dict[str, Any]]) -> list[bool]:
        """One statement per row, one transaction: whether each returned a row."""
        out = []
        with self._tx() as cur:
            for row in rows:
                cur.execute(sql, row)
                out.append(cur.fetchone() is not None)
        return out
