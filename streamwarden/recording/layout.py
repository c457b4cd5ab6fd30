"""Where segments live: `<base_path>/<stream_id>/<YYYY-MM-DD>/<UTC start time>.<ext>`.

The start time is in the name (UTC, millisecond precision, no colons so the names are valid
everywhere), so a listing sorts chronologically and a file found on disk without an index
row still tells when it starts. Stream ids are validated before they reach here; paths are
checked to stay under the base directory anyway.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from streamwarden.ids import validate_stream_id

EXTENSIONS = {"mp4": "mp4", "mkv": "mkv", "ts": "ts"}
_NAME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})Z(?:-\d+)?\.(mp4|mkv|ts)$"
)


def segment_path(base: Path, stream_id: str, start_wall: float, fmt: str) -> Path:
    """A fresh path for a segment starting at `start_wall` (never an existing file)."""
    validate_stream_id(stream_id)
    when = datetime.fromtimestamp(start_wall, UTC)
    day = base / stream_id / when.strftime("%Y-%m-%d")
    stem = when.strftime("%Y-%m-%dT%H-%M-%S.") + f"{when.microsecond // 1000:03d}Z"
    ext = EXTENSIONS[fmt]
    path = day / f"{stem}.{ext}"
    counter = 1
    while path.exists():
        path = day / f"{stem}-{counter}.{ext}"
        counter += 1
    return path


def start_time_from_name(path: Path) -> float | None:
    """The UTC start time encoded in a segment file name, or None if it is not ours."""
    match = _NAME.match(path.name)
    if not match:
        return None
    day, hh, mm, ss, ms = match.group(1, 2, 3, 4, 5)
    when = datetime.strptime(f"{day} {hh}:{mm}:{ss}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return when.timestamp() + int(ms) / 1000


def is_inside(base: Path, path: Path) -> bool:
    """True if `path` resolves to somewhere under `base` (no `..` escapes, no symlink tricks)."""
    try:
        path.resolve().relative_to(base.resolve())
    except ValueError:
        return False
    return True
