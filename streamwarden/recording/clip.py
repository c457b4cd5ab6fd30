"""One MP4 for a time range, remuxed from the segments that cover it (no re-encoding).

ffmpeg's concat demuxer joins the segments and input-side seeking starts the copy at the
keyframe at or before the requested start, so the clip always begins with a decodable frame
and ends at the requested end; `+faststart` lets a browser play it while it downloads.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from streamwarden.db import RecordingRow


class ClipError(Exception):
    pass


def build_clip(segments: list[RecordingRow], start_ts: float, end_ts: float,
               out_path: Path, timeout_s: float = 120.0) -> Path:
    if not segments:
        raise ClipError("no segments")
    if shutil.which("ffmpeg") is None:
        raise ClipError("ffmpeg is not installed (scripts/setup.sh installs it)")
    segments = sorted(segments, key=lambda s: s.start_ts)
    listing = out_path.with_suffix(".txt")
    listing.write_text("".join(
        "file '{}'\n".format(s.path.replace("'", "'\\''")) for s in segments))
    offset = max(0.0, start_ts - segments[0].start_ts)
    length = end_ts - max(start_ts, segments[0].start_ts)
    command = [
        "ffmpeg", "-v", "error", "-y", "-ss", f"{offset:.3f}", "-f", "concat", "-safe", "0",
        "-i", str(listing), "-t", f"{length:.3f}", "-c", "copy", "-map", "0",
        "-movflags", "+faststart", "-f", "mp4", str(out_path),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ClipError("building the clip took too long") from None
    finally:
        listing.unlink(missing_ok=True)
    if result.returncode != 0 or not out_path.exists():
        raise ClipError(f"remux failed: {result.stderr.strip()[-300:]}")
    return out_path
