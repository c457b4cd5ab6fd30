"""What the recording timeline needs beyond segments and gaps: when the service ran, when a
stream's recording was requested, when its camera was not streaming. And the loader that
reads every fact of a range for the pure rules (timeline.py).

Service runs: a row when the service starts, its end moved on by a heartbeat every few
seconds, set when it stops; a service that dies leaves its last heartbeat as its end, so the
time it was down is known to within a heartbeat. Periods (`recording`: requested; `offline`:
the camera not streaming) are open while they go on (`end_ts` NULL); a service that dies
leaves them open, and the next start closes them where its last run ended.

The tables and their SQL live here, like recording/gaps.py's: every method runs on the
database thread (`db.call(history.run_started, now)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from streamwarden.db import Database, TableStore
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.timeline import Facts, Mark, Period, Segment

SCHEMA = """
CREATE TABLE IF NOT EXISTS service_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    start_ts REAL NOT NULL,
    end_ts REAL NOT NULL,       -- while running: the last heartbeat
    clean INTEGER NOT NULL DEFAULT 0   -- 1: ended by a shutdown
);
CREATE INDEX IF NOT EXISTS service_runs_start ON service_runs (start_ts);
CREATE TABLE IF NOT EXISTS stream_periods (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id TEXT NOT NULL,
    kind TEXT NOT NULL,         -- recording (requested) | offline (camera not streaming)
    start_ts REAL NOT NULL,
    end_ts REAL                 -- NULL while it goes on
);
CREATE INDEX IF NOT EXISTS stream_periods_stream ON stream_periods (stream_id, kind, start_ts);
"""

RECORDING = "recording"
OFFLINE = "offline"
_WHOLE_TABLE = 10**9


@dataclass(frozen=True)
class RunStart:
    """The run that began, and where the one before it ended (None: the first run)."""

    run_id: int
    start: float
    previous_end: float | None


class History(TableStore):
    schema = SCHEMA

    # ---- service runs ----------------------------------------------------------------------

    def run_started(self, now: float) -> RunStart:
        """A run begins at `now`. Periods a dead run left open end where it ended."""
        row = self._conn.execute("SELECT MAX(end_ts) FROM service_runs").fetchone()
        previous_end = row[0]
        self._conn.execute("UPDATE stream_periods SET end_ts = MAX(start_ts, ?) "
                           "WHERE end_ts IS NULL", (previous_end if previous_end else now,))
        cur = self._conn.execute("INSERT INTO service_runs (start_ts, end_ts) VALUES (?, ?)",
                                 (now, now))
        return RunStart(int(cur.lastrowid or 0), now, previous_end)

    def run_heartbeat(self, run_id: int, now: float) -> None:
        self._conn.execute("UPDATE service_runs SET end_ts = MAX(end_ts, ?) WHERE id = ?",
                           (now, run_id))

    def run_stopped(self, run_id: int, end: float) -> None:
        """A clean stop that began at `end`: the run ends there (what the streams did while
        the service shut down is the service not running), and so do the periods still
        open and the recordings that the shutdown itself stopped (they were still wanted)."""
        self._conn.execute("UPDATE stream_periods SET end_ts = MAX(start_ts, ?) "
                           "WHERE end_ts IS NULL OR (kind = ? AND end_ts >= ?)",
                           (end, RECORDING, end))
        self._conn.execute("UPDATE service_runs SET end_ts = ?, clean = 1 WHERE id = ?",
                           (end, run_id))

    def runs(self, start: float, end: float, current: int | None) -> list[Period]:
        """Runs overlapping [start, end]; the current one (`current`) still going on."""
        rows = self._conn.execute("SELECT id, start_ts, end_ts FROM service_runs "
                                  "WHERE end_ts >= ? AND start_ts <= ? ORDER BY start_ts",
                                  (start, end)).fetchall()
        if current is not None:
            rows += self._conn.execute("SELECT id, start_ts, end_ts FROM service_runs "
                                       "WHERE id = ?", (current,)).fetchall()
        return [Period(r["start_ts"], None if r["id"] == current else r["end_ts"])
                for r in {r["id"]: r for r in rows}.values()]

    # ---- periods ---------------------------------------------------------------------------

    def period_started(self, stream_id: str, kind: str, start: float) -> None:
        """A period begins (one open period per stream and kind: an open one ends here)."""
        self.period_ended(stream_id, kind, start)
        self._conn.execute("INSERT INTO stream_periods (stream_id, kind, start_ts) "
                           "VALUES (?, ?, ?)", (stream_id, kind, start))

    def period_ended(self, stream_id: str, kind: str, end: float) -> None:
        self._conn.execute("UPDATE stream_periods SET end_ts = MAX(start_ts, ?) "
                           "WHERE stream_id = ? AND kind = ? AND end_ts IS NULL",
                           (end, stream_id, kind))

    def periods(self, stream_id: str, kind: str, start: float | None = None,
                end: float | None = None) -> list[Period]:
        """The stream's periods of `kind` overlapping [start, end], oldest first."""
        rows = self._conn.execute(
            "SELECT start_ts, end_ts FROM stream_periods WHERE stream_id = ? AND kind = ? "
            "AND (end_ts IS NULL OR end_ts >= ?) AND start_ts <= ? ORDER BY start_ts",
            (stream_id, kind, start if start is not None else float("-inf"),
             end if end is not None else float("inf"))).fetchall()
        return [Period(r["start_ts"], r["end_ts"]) for r in rows]

    def streams_recording_at(self, when: float, margin: float) -> list[str]:
        """Streams whose recording was requested at `when`, or until within `margin` of it."""
        rows = self._conn.execute(
            "SELECT DISTINCT stream_id FROM stream_periods WHERE kind = ? AND start_ts <= ? "
            "AND (end_ts IS NULL OR end_ts >= ?) ORDER BY stream_id",
            (RECORDING, when, when - margin)).fetchall()
        return [r["stream_id"] for r in rows]


def load_facts(db: Database, gaps: GapStore, history: History, stream_id: str, start: float,
               end: float, current_run: int | None) -> Facts:
    """Every stored fact about `stream_id` that touches [start, end] (database thread)."""
    rows = db.recordings(stream_id, start, end, limit=_WHOLE_TABLE)
    segments = [Segment(r.id, r.start_ts, r.end_ts if r.status != "recording" else None,
                        r.status) for r in rows]
    marks = [Mark(g.reason, g.start_ts, None if g.open else g.end_ts)
             for g in gaps.gaps(stream_id, start, end, limit=_WHOLE_TABLE)]
    return Facts(segments=segments, runs=history.runs(start, end, current_run),
                 wanted=history.periods(stream_id, RECORDING, start, end),
                 offline=history.periods(stream_id, OFFLINE, start, end), marks=marks)
