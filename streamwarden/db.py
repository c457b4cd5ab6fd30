"""The SQLite file (WAL mode) and its one worker thread; the SQL of recordings, streams, events.

(Recording gaps keep their table and SQL in recording/gaps.py, on this same connection.)

Every statement runs on a single-thread executor, so the GStreamer thread never waits on the
disk (it submits and moves on) and the asyncio side awaits results without blocking its loop.
WAL keeps readers and the writer out of each other's way and survives a crash or `kill -9`:
the index is consistent at the last committed statement.

The file holds event pictures and the (encrypted) streams added through the API, so it is
created 0600, and SQLite gives its -wal and -shm files the database file's mode. Files left
0644 by older versions are tightened when opened. `secure_delete` zeroes deleted content, so
a row rewritten (a plain-text stream encrypted) does not linger in a free page.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from streamwarden.private_files import create_file, make_dirs, tighten

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    start_ts REAL NOT NULL,
    end_ts REAL,
    duration REAL,
    bytes INTEGER,
    reason TEXT NOT NULL,
    status TEXT NOT NULL   -- recording | complete | repaired | corrupt
);
CREATE INDEX IF NOT EXISTS recordings_stream_start ON recordings (stream_id, start_ts);
CREATE INDEX IF NOT EXISTS recordings_start ON recordings (start_ts);
CREATE TABLE IF NOT EXISTS streams (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,   -- the StreamConfig as JSON, exactly as accepted by the API
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id TEXT NOT NULL,
    label TEXT NOT NULL,
    start_ts REAL NOT NULL,     -- wall-clock time of the first detection
    end_ts REAL NOT NULL,       -- of the last detection so far
    confidence REAL NOT NULL,   -- the best one
    box TEXT NOT NULL,          -- JSON [x0, y0, x1, y1] of the best detection, 0-1
    detections INTEGER NOT NULL,
    model TEXT NOT NULL,
    pts INTEGER,                -- stream PTS of the best detection's frame
    snapshot BLOB,              -- JPEG of that frame with the boxes drawn
    object_id TEXT,             -- the tracked object (NULL: rows from before tracking)
    zones TEXT NOT NULL DEFAULT '[]',   -- JSON [{"zone", "entered"}] in order of entry
    path TEXT NOT NULL DEFAULT '[]',    -- JSON [[time, x, y], ...] of the box centre, bounded
    stationary INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0   -- 1 while the object is tracked
);
CREATE INDEX IF NOT EXISTS events_stream_start ON events (stream_id, start_ts);
CREATE INDEX IF NOT EXISTS events_start ON events (start_ts);
"""

# Columns added to tables of older databases: (table, column, definition).
MIGRATIONS = (
    ("events", "object_id", "TEXT"),
    ("events", "zones", "TEXT NOT NULL DEFAULT '[]'"),
    ("events", "path", "TEXT NOT NULL DEFAULT '[]'"),
    ("events", "stationary", "INTEGER NOT NULL DEFAULT 0"),
    ("events", "active", "INTEGER NOT NULL DEFAULT 0"),
)
_EVENT_COLUMNS = ("id, stream_id, label, start_ts, end_ts, confidence, box, detections, model, "
                  "pts, snapshot IS NOT NULL AS has_snapshot, object_id, zones, path, "
                  "stationary, active")


@dataclass(frozen=True)
class EventRow:
    id: int
    stream_id: str
    label: str
    start_ts: float
    end_ts: float
    confidence: float
    box: str
    detections: int
    model: str
    pts: int | None
    has_snapshot: bool
    object_id: str | None = None
    zones: str = "[]"  # JSON, see the schema
    path: str = "[]"
    stationary: bool = False
    active: bool = False

    @classmethod
    def of(cls, row: sqlite3.Row) -> EventRow:
        return cls(**{**dict(row), "has_snapshot": bool(row["has_snapshot"]),
                      "stationary": bool(row["stationary"]), "active": bool(row["active"])})


@dataclass(frozen=True)
class RecordingRow:
    id: int
    stream_id: str
    path: str
    start_ts: float
    end_ts: float | None
    duration: float | None
    bytes: int | None
    reason: str
    status: str


def _in_list(column: str, values: Sequence[str]) -> str:
    """`column IN (?, ...)` for `values` (never empty SQL: an empty list matches nothing)."""
    return f"{column} IN ({', '.join('?' * len(values))})" if values else "0"


class Database:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        make_dirs(self.path.parent)
        self._make_private()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="db")
        self._conn: sqlite3.Connection | None = None
        self.call(self._open)

    def _make_private(self) -> None:
        """A new database file is created 0600 before SQLite opens it; old ones tightened."""
        try:
            create_file(self.path)
        except FileExistsError:
            for suffix in ("", "-wal", "-shm"):
                tighten(Path(f"{self.path}{suffix}"))

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.executescript(SCHEMA)
        _migrate(conn)
        # No object is tracked before the event log runs: rows a stopped service left active
        # end where they were last seen.
        conn.execute("UPDATE events SET active = 0 WHERE active = 1")
        self._conn = conn

    # ---- execution -------------------------------------------------------------------------

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Queue `fn(*args)` on the database thread (fire and forget from the GStreamer side)."""
        return self._executor.submit(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self.submit(fn, *args).result(30)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self.submit(_close)
        self._executor.shutdown(wait=True)

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "database is closed"
        return self._conn

    # ---- recordings (call these through submit/call/run) -----------------------------------

    def segment_opened(self, stream_id: str, path: str, start_ts: float, reason: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO recordings (stream_id, path, start_ts, reason, status) "
            "VALUES (?, ?, ?, ?, 'recording') "
            "ON CONFLICT(path) DO UPDATE SET start_ts=excluded.start_ts, status='recording'",
            (stream_id, path, start_ts, reason),
        )
        return int(cur.lastrowid or 0)

    def segment_closed(self, path: str, end_ts: float, size: int | None,
                       status: str = "complete", duration: float | None = None) -> None:
        self.conn.execute(
            "UPDATE recordings SET end_ts=?, bytes=?, status=?, "
            "duration=COALESCE(?, MAX(0, ? - start_ts)) WHERE path=?",
            (end_ts, size, status, duration, end_ts, path),
        )

    def insert_segment(self, stream_id: str, path: str, start_ts: float, end_ts: float,
                       size: int, reason: str, status: str) -> int:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO recordings "
            "(stream_id, path, start_ts, end_ts, duration, bytes, reason, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (stream_id, path, start_ts, end_ts, max(0.0, end_ts - start_ts), size, reason,
             status),
        )
        return int(cur.lastrowid or 0)

    def recordings(self, stream_id: str | None = None, start: float | None = None,
                   end: float | None = None, limit: int = 1000,
                   status: str | None = None,
                   streams: Sequence[str] | None = None) -> list[RecordingRow]:
        """Segments overlapping [start, end], oldest first; `streams`: of these streams only
        (a user limited to some streams)."""
        where: list[str] = []
        args: list[str | float] = []
        if stream_id is not None:
            where.append("stream_id = ?")
            args.append(stream_id)
        if streams is not None:
            where.append(_in_list("stream_id", streams))
            args.extend(streams)
        if start is not None:
            where.append("COALESCE(end_ts, start_ts) >= ?")
            args.append(start)
        if end is not None:
            where.append("start_ts <= ?")
            args.append(end)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM recordings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_ts, id LIMIT ?"
        rows = self.conn.execute(sql, (*args, limit)).fetchall()
        return [RecordingRow(**dict(row)) for row in rows]

    def recording(self, rec_id: int) -> RecordingRow | None:
        row = self.conn.execute("SELECT * FROM recordings WHERE id = ?", (rec_id,)).fetchone()
        return RecordingRow(**dict(row)) if row else None

    def recording_by_path(self, path: str) -> RecordingRow | None:
        row = self.conn.execute("SELECT * FROM recordings WHERE path = ?", (path,)).fetchone()
        return RecordingRow(**dict(row)) if row else None

    def delete_recording(self, rec_id: int) -> None:
        self.conn.execute("DELETE FROM recordings WHERE id = ?", (rec_id,))

    def total_bytes(self) -> int:
        row = self.conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM recordings").fetchone()
        return int(row[0])

    # ---- streams added through the API -----------------------------------------------------

    def save_stream(self, stream_id: str, config_json: str) -> None:
        self.conn.execute(
            "INSERT INTO streams (id, config, updated_at) VALUES (?, ?, strftime('%s','now')) "
            "ON CONFLICT(id) DO UPDATE SET config=excluded.config, updated_at=excluded.updated_at",
            (stream_id, config_json),
        )

    def delete_stream(self, stream_id: str) -> None:
        self.conn.execute("DELETE FROM streams WHERE id = ?", (stream_id,))

    def streams(self) -> list[tuple[str, str]]:
        """(id, stored config) of every stream added through the API, in id order.

        The stored text is encrypted JSON; streamwarden.stream_store reads and writes it."""
        return [(row["id"], row["config"]) for row in
                self.conn.execute("SELECT id, config FROM streams ORDER BY id")]

    def replace_streams(self, rows: list[tuple[str, str]]) -> None:
        """Rewrite the stored text of these streams in one transaction, then drop the old text
        from the write-ahead log too (the rewrite is there to make old text unreadable)."""
        with self.transaction():
            for stream_id, text in rows:
                self.conn.execute("UPDATE streams SET config = ? WHERE id = ?", (text, stream_id))
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ---- detection events ------------------------------------------------------------------

    def event_opened(self, stream_id: str, label: str, ts: float, confidence: float, box: str,
                     model: str, pts: int | None, snapshot: bytes | None,
                     object_id: str | None = None, zones: str = "[]", path: str = "[]") -> int:
        cur = self.conn.execute(
            "INSERT INTO events (stream_id, label, start_ts, end_ts, confidence, box, detections,"
            " model, pts, snapshot, object_id, zones, path, active)"
            " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
            (stream_id, label, ts, ts, confidence, box, model, pts, snapshot, object_id, zones,
             path, int(object_id is not None)))
        return int(cur.lastrowid or 0)

    def event_tracked(self, event_id: int, last_seen: float, detections: int, zones: str,
                      path: str, stationary: bool, active: bool) -> None:
        """A tracked object's event as it stands now (its counters are the object's own)."""
        self.conn.execute(
            "UPDATE events SET end_ts = MAX(end_ts, ?), detections = ?, zones = ?, path = ?, "
            "stationary = ?, active = ? WHERE id = ?",
            (last_seen, detections, zones, path, int(stationary), int(active), event_id))

    def event_improved(self, event_id: int, confidence: float, box: str, pts: int | None,
                       snapshot: bytes | None) -> None:
        self.conn.execute("UPDATE events SET confidence = ?, box = ?, pts = ?, snapshot = ? "
                          "WHERE id = ?", (confidence, box, pts, snapshot, event_id))

    def events(self, stream_id: str | None = None, label: str | None = None,
               since: float | None = None, until: float | None = None,
               limit: int = 100, zone: str | None = None,
               streams: Sequence[str] | None = None) -> list[EventRow]:
        """Events overlapping [since, until] (whose object entered `zone`), newest first;
        `streams`: of these only."""
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE 1=1"
        args: list[Any] = []
        if streams is not None:
            sql += " AND " + _in_list("stream_id", streams)
            args.extend(streams)
        for clause, value in (("stream_id = ?", stream_id), ("label = ?", label),
                              ("end_ts >= ?", since), ("start_ts <= ?", until),
                              ("EXISTS (SELECT 1 FROM json_each(events.zones) "
                               "WHERE json_extract(value, '$.zone') = ?)", zone)):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        sql += " ORDER BY start_ts DESC, id DESC LIMIT ?"
        args.append(limit)
        return [EventRow.of(row) for row in self.conn.execute(sql, args)]

    def event(self, event_id: int) -> EventRow | None:
        row = self.conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?",
                                (event_id,)).fetchone()
        return EventRow.of(row) if row is not None else None

    def event_times(self) -> list[tuple[int, str, float, float, bool]]:
        """(id, stream_id, start_ts, end_ts, active) of every event, for retention (no
        pictures read)."""
        return [(row[0], row[1], row[2], row[3], bool(row[4])) for row in self.conn.execute(
            "SELECT id, stream_id, start_ts, end_ts, active FROM events")]

    def delete_events(self, event_ids: Sequence[int]) -> None:
        for start in range(0, len(event_ids), 500):  # SQLite's bound on parameters
            chunk = list(event_ids[start:start + 500])
            marks = ", ".join("?" * len(chunk))
            self.conn.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)

    def event_snapshot(self, event_id: int,
                       streams: Sequence[str] | None = None) -> bytes | None:
        sql = "SELECT snapshot FROM events WHERE id = ?"
        args: list[int | str] = [event_id]
        if streams is not None:
            sql += " AND " + _in_list("stream_id", streams)
            args.extend(streams)
        row = self.conn.execute(sql, args).fetchone()
        return bytes(row["snapshot"]) if row is not None and row["snapshot"] else None


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns a database made by an older version lacks (SQLite adds a column in
    place: existing rows take its default)."""
    for table, column, definition in MIGRATIONS:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


class TableStore:
    """A store that keeps its own tables in the service's database (gaps, run history): it
    creates them on the database thread when made, then runs its SQL on that thread too."""

    schema: str = ""  # CREATE ... IF NOT EXISTS statements

    def __init__(self, db: Database):
        self.db = db
        db.call(self._create)

    def _create(self) -> None:
        self.db.conn.executescript(self.schema)

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.db.conn
