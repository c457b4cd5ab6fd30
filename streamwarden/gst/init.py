"""Import GStreamer once, with the versions pinned, and initialise it.

Every module imports `Gst`/`GLib` from here so `gi.require_version` runs before any
`gi.repository` import and `Gst.init` happens exactly once per process.
"""

from __future__ import annotations

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")

from gi.repository import GLib, GObject, Gst, GstRtspServer  # noqa: E402

if not Gst.is_initialized():
    Gst.init(None)

__all__ = ["GLib", "GObject", "Gst", "GstRtspServer"]
