"""Recording gaps: stored intervals in which a stream was to be recorded but was not, and why.

A gap is (stream, start, end, reason), wall-clock seconds, with reasons such as `disk_full`
and `write_error`. The recording timeline (timeline.py) shows them next to the segments.
Two more reasons are stored here as they happen: `deleted` (footage retention removed;
adjacent deletions extend one row, so a stream keeps one row per deleted stretch, not one
per segment) and `discontinuity` (a moment, start = end: where the camera's timestamps
jumped; the timeline gives it the hole it made, if any). An outage's gap is stored
when its outage begins (open, its end the last time it was known to go on, moved on every
heartbeat) and closed when it ends, so a service that dies during an outage leaves an open
gap with an honest end; `close_dangling` closes those at start-up.

The table and its SQL live here, next to their only users, not in db.py. Like Database's
own methods, every method runs on the database thread: `db.call(store.gaps, "cam")`.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamwarden.db import TableStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS recording_gaps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id TEXT NOT NULL,
    start_ts REAL NOT NULL,
    end_ts REAL NOT NULL,       -- while open: the last time the outage was known to go on
    reason TEXT NOT NULL,       -- disk_full | write_error | deleted | discontinuity
    open INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS recording_gaps_stream_start ON recording_gaps (stream_id, start_ts);
"""

# A deletion this close to a stored deleted stretch extends it: the segments of one session
# touch, so a stream keeps one row per recording run deleted; what lay between two runs (an
# outage, recording off) keeps its own reason.
DELETED_JOIN_S = 1.0


@dataclass(frozen=True)
class GapRow:
    id: int
    stream_id: str
    start_ts: float
    end_ts: float
    reason: str
    open: bool

    @property
    def seconds(self) -> float:
        return self.end_ts - self.start_ts


class GapStore(TableStore):
    schema = SCHEMA

    def opened(self, stream_id: str, start_ts: float, reason: str) -> int:
        """An outage began: an open gap from `start_ts` (its end, for now, the same)."""
        self._close_open(stream_id)  # one open gap per stream, whatever came before
        cur = self._conn.execute(
            "INSERT INTO recording_gaps (stream_id, start_ts, end_ts, reason, open) "
            "VALUES (?, ?, ?, ?, 1)", (stream_id, start_ts, start_ts, reason))
        return int(cur.lastrowid or 0)

    def ongoing(self, stream_id: str, now: float) -> None:
        """The open gap of the stream still goes on at `now` (a heartbeat)."""
        self._conn.execute("UPDATE recording_gaps SET end_ts = MAX(end_ts, ?) "
                           "WHERE stream_id = ? AND open = 1", (now, stream_id))

    def closed(self, stream_id: str, start_ts: float, end_ts: float, reason: str) -> GapRow:
        """The outage ended: close its open gap with these bounds, or store the gap whole if
        it was never opened (the database was on the full disk too, say)."""
        row = self._conn.execute(
            "SELECT id FROM recording_gaps WHERE stream_id = ? AND reason = ? AND open = 1 "
            "ORDER BY id DESC LIMIT 1", (stream_id, reason)).fetchone()
        if row is None:
            cur = self._conn.execute(
                "INSERT INTO recording_gaps (stream_id, start_ts, end_ts, reason, open) "
                "VALUES (?, ?, ?, ?, 0)", (stream_id, start_ts, end_ts, reason))
            gap_id = int(cur.lastrowid or 0)
        else:
            gap_id = int(row["id"])
            self._conn.execute("UPDATE recording_gaps SET start_ts = ?, end_ts = ?, open = 0 "
                               "WHERE id = ?", (start_ts, end_ts, gap_id))
        return GapRow(gap_id, stream_id, start_ts, end_ts, reason, False)

    def moment(self, stream_id: str, wall: float, reason: str) -> int:
        """Something happened at `wall` (a discontinuity): a closed gap of no length."""
        cur = self._conn.execute(
            "INSERT INTO recording_gaps (stream_id, start_ts, end_ts, reason, open) "
            "VALUES (?, ?, ?, ?, 0)", (stream_id, wall, wall, reason))
        return int(cur.lastrowid or 0)

    def deleted(self, stream_id: str, start_ts: float, end_ts: float,
                tolerance: float = DELETED_JOIN_S) -> None:
        """Footage from `start_ts` to `end_ts` was deleted: extend the stream's deleted gap
        that reaches it (within `tolerance`), else store a new one."""
        row = self._conn.execute(
            "SELECT id FROM recording_gaps WHERE stream_id = ? AND reason = 'deleted' "
            "AND end_ts >= ? AND start_ts <= ? ORDER BY end_ts DESC LIMIT 1",
            (stream_id, start_ts - tolerance, end_ts + tolerance)).fetchone()
        if row is None:
            self._conn.execute(
                "INSERT INTO recording_gaps (stream_id, start_ts, end_ts, reason, open) "
                "VALUES (?, ?, ?, 'deleted', 0)", (stream_id, start_ts, end_ts))
        else:
            self._conn.execute(
                "UPDATE recording_gaps SET start_ts = MIN(start_ts, ?), end_ts = MAX(end_ts, ?) "
                "WHERE id = ?", (start_ts, end_ts, row["id"]))

    def close_dangling(self) -> int:
        """At start-up: gaps left open by a service that died end where they were last seen
        going on (the time after that was lost to the service being down, not to them)."""
        return self._close_open(None)

    def _close_open(self, stream_id: str | None) -> int:
        sql, args = "UPDATE recording_gaps SET open = 0 WHERE open = 1", []
        if stream_id is not None:
            sql += " AND stream_id = ?"
            args.append(stream_id)
        return self._conn.execute(sql, args).rowcount

    def gaps(self, stream_id: str | None = None, start: float | None = None,
             end: float | None = None, reason: str | None = None,
             limit: int = 10000) -> list[GapRow]:
        """Gaps overlapping [start, end], oldest first."""
        sql, args = "SELECT * FROM recording_gaps WHERE 1 = 1", []
        for clause, value in (("stream_id = ?", stream_id), ("end_ts >= ?", start),
                              ("start_ts <= ?", end), ("reason = ?", reason)):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        sql += " ORDER BY start_ts, id LIMIT ?"
        rows = self._conn.execute(sql, (*args, limit)).fetchall()
        return [GapRow(**{**dict(r), "open": bool(r["open"])}) for r in rows]
