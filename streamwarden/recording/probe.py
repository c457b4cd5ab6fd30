"""How long a media file plays, read by GStreamer's discoverer (no decoding of frames)."""

from __future__ import annotations

from pathlib import Path

import gi

gi.require_version("GstPbutils", "1.0")
from gi.repository import GstPbutils  # noqa: E402

from streamwarden.gst.init import Gst  # noqa: E402


def playable_duration(path: Path, timeout_s: float = 10.0) -> float | None:
    """Seconds of media in the file, or None if it cannot be read as media."""
    try:
        discoverer = GstPbutils.Discoverer.new(int(timeout_s * Gst.SECOND))
        info = discoverer.discover_uri(path.resolve().as_uri())
    except Exception:  # GLib.Error for unreadable/corrupt files
        return None
    if info.get_result() != GstPbutils.DiscovererResult.OK:
        return None
    if not info.get_video_streams() and not info.get_audio_streams():
        return None
    duration = info.get_duration()
    return duration / Gst.SECOND if duration and duration != Gst.CLOCK_TIME_NONE else 0.0
