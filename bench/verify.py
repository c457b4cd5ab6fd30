"""Reading recordings back: which camera frames each stream's files hold, and are they whole.

The synthetic camera stamps every video frame with its sequence number and wall-clock time
(SEI user data, see streamwarden.demo.stamp). The stamp survives depayloading, parsing and
muxing, so the recorded bytes alone tell which frames were written: a stream recorded
without loss has contiguous sequence numbers across all its segments, in file order. No
decoding is needed, so checking costs little next to the run.
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import Any

from streamwarden.demo.stamp import read_stamps

# Files listed in this order are in recording order: streamwarden names them after their UTC
# start time under a YYYY-MM-DD dir, ffmpeg numbers them %05d.
SEGMENT_GLOB = "**/*.mp4"


def mp4_problem(data: bytes) -> str | None:
    """Why an MP4 file would not play (None if it would): top-level boxes only, no decoding.

    A file a recorder did not finalise has no `moov` (plain MP4: it is written last) or ends
    inside a box (cut mid-write). A fragmented MP4 has its `moov` first and stays playable up
    to its last whole fragment, so only a cut box counts against it.
    """
    offset, boxes = 0, set()
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1 and offset + 16 <= len(data):
            size = struct.unpack_from(">Q", data, offset + 8)[0]
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - offset
        if size < 8:
            return f"bad box size {size} at {offset}"
        boxes.add(kind)
        offset += size
    if offset != len(data):
        return f"truncated: last box ends at {offset}, file is {len(data)} bytes"
    if b"moov" not in boxes:
        return "no moov box (not finalised)"
    return None


def _sequence_breaks(sequences: list[int]) -> tuple[int, int, int]:
    """(missing, repeated, breaks): frames skipped, steps that went back, discontinuities.

    A step back is a duplicate, or the camera restarting its count (its media re-prepared);
    either way the stream is not one contiguous run of frames.
    """
    missing = repeated = breaks = 0
    for prev, cur in itertools.pairwise(sequences):
        if cur == prev + 1:
            continue
        breaks += 1
        if cur > prev:
            missing += cur - prev - 1
        else:
            repeated += 1
    return missing, repeated, breaks


def check_stream(directory: Path, stop_wall: float) -> dict[str, Any]:
    """One stream's files: frames held, breaks in the sequence, files that would not play.

    `tail_s` is how long before the stop signal the last recorded frame was sent by the
    camera: frames the client had received but did not write on its way out show up here
    (a few hundred ms is the pipeline's latency; seconds would be frames dropped at stop).
    """
    files = sorted(directory.glob(SEGMENT_GLOB)) if directory.is_dir() else []
    sequences: list[int] = []
    first_wall = last_wall = None
    bad: dict[str, str] = {}
    for path in files:
        data = path.read_bytes()
        problem = mp4_problem(data)
        if problem:
            bad[path.name] = problem
        stamps = read_stamps(data)
        sequences += [s.sequence for s in stamps]
        if stamps:
            first_wall = first_wall if first_wall is not None else stamps[0].wall_time
            last_wall = stamps[-1].wall_time
    missing, repeated, breaks = _sequence_breaks(sequences)
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "frames": len(sequences),
        "first_sequence": sequences[0] if sequences else None,
        "last_sequence": sequences[-1] if sequences else None,
        "missing": missing,
        "repeated": repeated,
        "breaks": breaks,
        "bad_files": bad,
        "span_s": round(last_wall - first_wall, 3) if sequences else None,
        "tail_s": round(stop_wall - last_wall, 3) if last_wall is not None else None,
    }


def check_recordings(dirs: dict[str, Path], stop_wall: float) -> dict[str, Any]:
    """Every stream's check, and totals: `lossless` when all streams hold contiguous frames."""
    streams = {sid: check_stream(path, stop_wall) for sid, path in dirs.items()}
    tails = [s["tail_s"] for s in streams.values() if s["tail_s"] is not None]
    totals = {
        "files": sum(s["files"] for s in streams.values()),
        "frames": sum(s["frames"] for s in streams.values()),
        "missing": sum(s["missing"] for s in streams.values()),
        "repeated": sum(s["repeated"] for s in streams.values()),
        "bad_files": sum(len(s["bad_files"]) for s in streams.values()),
        "streams_empty": sum(1 for s in streams.values() if not s["frames"]),
        # The camera counts from 0 for each client session, so this is how many frames it sent
        # before the first one recorded: > 0 means the start of the recording was not kept.
        "first_sequence_max": max((s["first_sequence"] for s in streams.values()
                                   if s["first_sequence"] is not None), default=None),
        "tail_s_max": max(tails) if tails else None,
    }
    totals["lossless"] = not (totals["missing"] or totals["repeated"] or totals["bad_files"]
                              or totals["streams_empty"])
    return {**totals, "streams": streams}
