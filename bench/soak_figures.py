"""The soak benchmark's arithmetic: trends of the samples, frames lost outside the injected
faults, and the service's error lines. Plain data in, plain data out: no processes, no clock.

Kept apart from bench/soak.py (which starts processes and injects faults) so each rule can be
checked with hand-made data (tests/test_soak_figures.py): a soak that says "flat" or "no frame
lost" must be right about it, and a 30-minute run is a poor way to find an off-by-one.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# ---- samples and trends ---------------------------------------------------------------------

# What a sample holds, and how it is shown: (key, label, scale from the raw value).
METRICS: tuple[tuple[str, str, float], ...] = (
    ("rss_kib", "RSS MiB", 1 / 1024),
    ("fds", "open fds", 1.0),
    ("threads", "threads", 1.0),
    ("children", "child procs", 1.0),
    ("cpu_pct", "CPU % of a core", 1.0),
)


@dataclass(frozen=True)
class Sample:
    """One reading of the service process from /proc, `t` seconds after it was ready."""

    t: float
    rss_kib: int
    fds: int
    threads: int
    children: int
    cpu_ticks: int
    cpu_pct: float | None  # over the interval since the previous sample; None for the first
    fd_kinds: dict[str, int] = field(default_factory=dict)
    rest: bool = False  # taken with no fault in progress (at the end of a round of faults)
    sockets: dict[str, int] = field(default_factory=dict)  # by what they connect (at rest)

    def value(self, key: str) -> float | None:
        return getattr(self, key)


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value per hour; None under 2 times.

    A leak shows as a steady climb; a least-squares line over every sample after the
    warm-up is not moved much by one sample taken while a viewer or a fault was active.
    """
    if len({t for t, _ in points}) < 2:
        return None
    slope, _intercept = statistics.linear_regression([t for t, _ in points],
                                                     [v for _, v in points])
    return slope * 3600.0


def _basis(samples: list[Sample], key: str, warmup_s: float) -> tuple[str, list[Sample]]:
    """The samples a metric's trend is read from: those at rest, when there are two or more
    after the warm-up, else all of them. A sample taken while a viewer is connected or a
    camera reconnects holds that fault's sockets and threads, which says nothing of a leak;
    at rest, a flat line is exactly flat. CPU is a rate over each interval: all samples."""
    after = [s for s in samples if s.t >= warmup_s and s.value(key) is not None]
    rest = [s for s in after if s.rest]
    if key != "cpu_pct" and len(rest) >= 2:
        return "rest", rest
    return "all", after


def trend(samples: list[Sample], key: str, scale: float, warmup_s: float) -> dict[str, Any]:
    """First (after warm-up), last, change, min, max and slope per hour of one metric."""
    basis, chosen = _basis(samples, key, warmup_s)
    points = [(s.t, s.value(key) * scale) for s in chosen]
    if not points:
        return {"points": 0}
    values = [v for _, v in points]
    slope = slope_per_hour(points)
    return {
        "basis": basis,
        "points": len(points),
        "first": round(values[0], 2),
        "last": round(values[-1], 2),
        "change": round(values[-1] - values[0], 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
        "slope_per_hour": round(slope, 2) if slope is not None else None,
    }


def trends(samples: list[Sample], warmup_s: float) -> dict[str, dict[str, Any]]:
    return {key: trend(samples, key, scale, warmup_s) for key, _label, scale in METRICS}


def kind_changes(samples: list[Sample], warmup_s: float, attribute: str = "fd_kinds"
                 ) -> dict[str, int]:
    """Open fds by kind (socket, pipe, eventfd, file...) or sockets by what they connect:
    last sample minus first after warm-up, read as the fds' trend is.

    A leak of "2 per reconnect" is much easier to chase knowing it is two sockets to a camera.
    """
    _basis_name, after = _basis(samples, "fds", warmup_s)
    if len(after) < 2:
        return {}
    first, last = getattr(after[0], attribute), getattr(after[-1], attribute)
    changes = {kind: last.get(kind, 0) - first.get(kind, 0) for kind in first.keys() | last}
    return {kind: n for kind, n in sorted(changes.items()) if n}


def socket_kinds(ss_output: str, pid: int, ports: dict[int, str]) -> dict[str, int]:
    """The sockets `pid` holds, counted by what they are, from `ss -tuxanpH` output.

    TCP/UDP by state and the named port at either end (`tcp ESTAB -> camera-steady`,
    `tcp LISTEN api`); unix sockets by whose the other end is (this process: a socketpair;
    another process, by pid relation unknown here: `other`).
    """
    owners: dict[str, set[int]] = {}
    rows = []
    for line in ss_output.splitlines():
        parts, pids = line.split(), {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if len(parts) < 6:
            continue
        if parts[0].startswith("u_") and len(parts) >= 8:
            owners.setdefault(parts[5], set()).update(pids)
        rows.append((parts, pids))
    kinds: dict[str, int] = {}
    for parts, pids in rows:
        if pid not in pids:
            continue
        kind = _socket_kind(parts, pid, ports, owners)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _socket_kind(parts: list[str], pid: int, ports: dict[int, str],
                 owners: dict[str, set[int]]) -> str:
    netid, state = parts[0], parts[1]
    if netid.startswith("u_"):
        peer = owners.get(parts[7], set()) if len(parts) >= 8 else set()
        where = "socketpair" if pid in peer else ("other process" if peer else "no peer")
        return f"{netid} {state} {where}"
    local, remote = (int(p.rsplit(":", 1)[1]) if p.rsplit(":", 1)[-1].isdigit() else None
                     for p in parts[4:6])
    if local in ports:
        return f"{netid} {state} {ports[local]}"
    if remote in ports:
        return f"{netid} {state} -> {ports[remote]}"
    return f"{netid} {state} other"


def fd_kind(target: str) -> str:
    """What an fd points at, from its /proc/PID/fd link: `socket:[123]` -> `socket`."""
    if target.startswith(("socket:", "pipe:")):
        return target.split(":", 1)[0]
    if target.startswith("anon_inode:"):
        return target.removeprefix("anon_inode:").strip("[]")
    if target.startswith("/dev/"):
        return "device"
    return "file"


# ---- fault windows and frames lost outside them ---------------------------------------------

ALL_CAMERAS = "*"


@dataclass
class Window:
    """A span of wall time in which a fault was injected, and the cameras it may cost frames.

    `cameras` holds stream ids, or ALL_CAMERAS (the recording disk filled up). A fault that
    must cost no camera a frame (a viewer, an inference worker kill) has none.
    """

    kind: str
    start: float
    end: float
    cameras: tuple[str, ...] = ()

    def excuses(self, camera: str) -> bool:
        return ALL_CAMERAS in self.cameras or camera in self.cameras


@dataclass(frozen=True)
class Frame:
    """A recorded frame's camera stamp: its sequence number and when the camera sent it."""

    sequence: int
    wall: float


def _excused(when: float, windows: list[Window], margin: float) -> bool:
    return any(w.start - margin <= when <= w.end + margin for w in windows)


def _missing_times(prev: Frame, cur: Frame, fps: float) -> tuple[str, list[float]]:
    """The kind of a break between two recorded frames and when the missing frames were sent.

    The camera paces frames at `fps` in wall time, so frame `prev.sequence + k` left it at
    about `prev.wall + k / fps`. When the count went back (the camera restarted it: a new
    session after a reconnect) the number is unknown and the time gap says how many.
    """
    if cur.sequence > prev.sequence:
        return "skip", [prev.wall + k / fps for k in range(1, cur.sequence - prev.sequence)]
    gap = round((cur.wall - prev.wall) * fps) - 1
    if gap <= 0:  # a duplicate, or a count restarted with no frame missed
        return "repeat", []
    return "restart", [prev.wall + k / fps for k in range(1, gap + 1)]


@dataclass
class LossCount:
    """Missing frames of one camera, split by whether a fault window excuses them."""

    frames: int = 0
    outside: int = 0
    inside: int = 0
    repeats: int = 0
    restarts_outside: int = 0
    gaps_outside: list[dict[str, Any]] = field(default_factory=list)

    def add_gap(self, kind: str, times: list[float], windows: list[Window], margin: float,
                origin: float) -> None:
        if kind == "repeat":
            self.repeats += 1
            return
        lost = [t for t in times if not _excused(t, windows, margin)]
        self.outside += len(lost)
        self.inside += len(times) - len(lost)
        if lost:
            self.restarts_outside += kind == "restart"
            self.gaps_outside.append({"kind": kind, "at_s": round(lost[0] - origin, 1),
                                      "until_s": round(lost[-1] - origin, 1),
                                      "frames": len(lost)})


def count_losses(frames: list[Frame], camera: str, windows: list[Window], *, fps: float,
                 margin: float, end: float, origin: float) -> LossCount:
    """Frames the camera sent that are not in its recording, outside its fault windows.

    `frames` are in recording order. Between two recorded frames every break is a gap (its
    missing frames placed in time as `_missing_times` says); after the last one, frames up to
    `end` (the stop signal less the pipeline's latency) are missing too, so a recorder that
    gave up for good is not mistaken for a clean one. A missing frame counts as `inside` when
    it was sent within `margin` seconds of a window that excuses this camera.
    """
    mine = [w for w in windows if w.excuses(camera)]
    count = LossCount(frames=len(frames))
    for prev, cur in itertools.pairwise(frames):
        if cur.sequence != prev.sequence + 1:
            kind, times = _missing_times(prev, cur, fps)
            count.add_gap(kind, times, mine, margin, origin)
    if frames and end > frames[-1].wall:
        # Frames sent before `end`: last.wall + k / fps < end (rounded, so 226.0000001 is 226).
        after = math.ceil(round((end - frames[-1].wall) * fps, 6)) - 1
        tail = [frames[-1].wall + k / fps for k in range(1, after + 1)]
        count.add_gap("tail", tail, mine, margin, origin)
    return count


# ---- error lines of the service's log -------------------------------------------------------

# GStreamer's own debug output (GST_DEBUG=1: errors only) and GLib's criticals, which do not
# go through Python's logging and so are not JSON.
_GST_ERROR = re.compile(r"^\d+:\d\d:\d\d\.\d+\s+\d+\s+0x[0-9a-f]+\s+ERROR\s+(\S+)\s+(.*)$")
_GLIB_CRITICAL = re.compile(r"\(([^:()]+):\d+\): (\S+)-(CRITICAL|ERROR) \*\*: [\d:.]* ?(.*)$")


@dataclass(frozen=True)
class ErrorLine:
    level: str
    source: str
    message: str
    wall: float | None  # None where the line has no wall-clock time (GStreamer's, GLib's)


def parse_error_line(line: str) -> ErrorLine | None:
    """An ERROR or CRITICAL line of the service's log (JSON format), or None."""
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        level = str(entry.get("level", "")).lower()
        if level not in ("error", "critical"):
            return None
        message = str(entry.get("msg", ""))
        if entry.get("exc"):
            message += " | " + str(entry["exc"]).strip().splitlines()[-1]
        wall = datetime.fromisoformat(entry["ts"]).timestamp() if entry.get("ts") else None
        return ErrorLine(level, str(entry.get("logger", "")), message, wall)
    if match := _GST_ERROR.match(line.strip()):
        return ErrorLine("error", f"gst:{match.group(1)}", match.group(2), None)
    if match := _GLIB_CRITICAL.search(line):
        return ErrorLine(match.group(3).lower(), f"glib:{match.group(2)}", match.group(4), None)
    if line.startswith("Traceback (most recent call last)"):
        return ErrorLine("error", "python", "uncaught exception (traceback in the log)", None)
    return None


def _dedup_key(line: ErrorLine) -> str:
    """Numbers out (ports, pids, counts, times), so repeats of one problem group together."""
    return f"{line.level} {line.source}: {re.sub(r'[0-9]+', 'N', line.message)[:240]}"


def group_errors(lines: Iterable[ErrorLine], windows: list[Window], margin: float
                 ) -> list[dict[str, Any]]:
    """Error lines grouped by their text (numbers masked), the most frequent first.

    Each group says during which kinds of fault its lines were logged (`none`: while nothing
    was being injected, the lines to look at first; `?`: the line carries no wall time).
    """
    groups: dict[str, dict[str, Any]] = {}
    for line in lines:
        group = groups.setdefault(_dedup_key(line), {
            "count": 0, "level": line.level, "source": line.source,
            "example": line.message[:500], "during": {}})
        group["count"] += 1
        if line.wall is None:
            kinds = ["?"]
        else:
            kinds = sorted({w.kind for w in windows
                            if w.start - margin <= line.wall <= w.end + margin}) or ["none"]
        for kind in kinds:
            group["during"][kind] = group["during"].get(kind, 0) + 1
    return sorted(groups.values(), key=lambda g: -g["count"])
