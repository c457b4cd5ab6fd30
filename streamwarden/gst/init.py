"""Import GStreamer once, with the versions pinned, and initialise it.

Every module imports `Gst`/`GLib` from here so `gi.require_version` runs before any
`gi.repository` import and `Gst.init` happens exactly once per process.
"""

from __future__ import annotations

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")  # RTSP messages: the restream's Authorization header
# GstApp: appsink/appsrc wrap as their own classes, so try_pull_sample/push_buffer are direct
# calls instead of signal emissions (the recorder makes them for every frame).
gi.require_version("GstApp", "1.0")

from gi.repository import GLib, GObject, Gst, GstApp, GstRtsp, GstRtspServer  # noqa: E402

if not Gst.is_initialized():
    Gst.init(None)



def has_element(factory: str) -> bool:
    """Whether a GStreamer element is installed (e.g. DeepStream's nvinfer)."""
    return Gst.ElementFactory.find(factory) is not None


__all__ = ["GLib", "GObject", "Gst", "GstApp", "GstRtsp", "GstRtspServer", "has_element"]
