"""record.py's arithmetic on what it read back from zoo-camera recordings, no processes.

Per-file reports (tests/zoo/recorded.py `FileReport`, as dicts) add up to one client's
figures; log lines become counts per kind of message. Kept apart from the benchmark so it can
be tested on hand-made data (tests/unit/test_record_figures.py).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

# FileReport fields that add up over files
SUMMED = ("stamps", "decoded", "played", "decode_errors", "reordered", "dts_backwards",
          "pts_backwards", "pts_irregular")
LOG_KINDS_KEPT = 6  # distinct messages kept per client in the JSON


def pct(part: int | None, whole: int | None) -> float | None:
    """`part` as % of `whole`, one decimal; None when there is no whole to speak of."""
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def file_totals(files: list[dict[str, Any]]) -> dict[str, Any]:
    """One client's files added up: frames held (stamps) against frames a decoder gets.

    `short_files`: files that decode fewer frames than they hold. `reordered_pct`: packets
    with PTS ≠ DTS as % of frames, to be set against the camera's own share (a recorder that
    wrote PTS = DTS for a B-frame stream shows 0).
    """
    totals = {key: sum(f.get(key, 0) for f in files) for key in SUMMED}
    frames = totals.pop("stamps")
    return {
        "files": len(files),
        "frames": frames,
        **totals,
        "decodable_pct": pct(totals["decoded"], frames),
        "reordered_pct": pct(totals["reordered"], frames),
        "short_files": sum(1 for f in files if f.get("decoded", 0) < f.get("stamps", 0)),
        "pts_jitter_ms_max": max((f.get("pts_jitter_ms", 0.0) for f in files), default=None),
    }


def reordered_share(pts: list[float | None], dts: list[float | None]) -> float | None:
    """% of packets whose PTS differs from their DTS (packets lacking either are skipped)."""
    pairs = [(p, d) for p, d in zip(pts, dts, strict=True) if p is not None and d is not None]
    return pct(sum(p != d for p, d in pairs), len(pairs))


_ADDRESS = re.compile(r" @ 0x[0-9a-f]+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?")  # not inside a name (mp4, x264)
_STREAMWARDEN_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
_STREAMWARDEN_PREFIX = re.compile(r"^.*?\b(WARNING|ERROR|CRITICAL)\b\s+\S+:?\s*")


def message_kind(line: str) -> str:
    """A log line with what varies (addresses, numbers) taken out, so repeats count as one."""
    return _NUMBER.sub("N", _ADDRESS.sub("", line.strip()))[:140]


def log_findings(text: str, client: str) -> Counter[str]:
    """Complaint lines in one process's log, counted by kind.

    ffmpeg (run at `-v warning`): every line but its `frame=` progress lines (which end in a
    carriage return, so lines are split on both). streamwarden: WARNING and worse, the
    timestamp and logger name cut off.
    """
    found: Counter[str] = Counter()
    for line in re.split(r"[\r\n]+", text):
        if not line.strip():
            continue
        if client == "ffmpeg":
            if line.lstrip().startswith("frame="):
                continue
            found[message_kind(line)] += 1
        elif _STREAMWARDEN_LINE.search(line):
            found[message_kind(_STREAMWARDEN_PREFIX.sub(r"\1 ", line))] += 1
    return found


def findings_summary(counts: Counter[str]) -> dict[str, Any]:
    """Total complaint lines and the most frequent kinds (for the table and the JSON)."""
    return {"log_lines": sum(counts.values()),
            "log_kinds": dict(counts.most_common(LOG_KINDS_KEPT))}
