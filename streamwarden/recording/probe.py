"""How long a media file plays: what its container claims, and what can really be read.

`playable_duration` asks GStreamer's discoverer, which reads the container's header: quick,
and right for a file that was finalised. A cut file (a full disk, `kill -9`) is another
matter: a fragmented MP4 carries the duration mp4mux wrote in its header, which can be the
whole recording session's, not the part this file holds or the part that made it to disk.
`played_seconds` measures instead: it demuxes the file (no decoding) and takes the span from
the first frame to the end of the last one that could be read. Index repairs use that.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gi

gi.require_version("GstPbutils", "1.0")
from gi.repository import GstPbutils  # noqa: E402

from streamwarden.gst.init import Gst  # noqa: E402

# Demuxing runs as fast as the file reads: this long with no frame and no end means stuck
# (qtdemux, for one, sometimes neither ends nor fails on a file that is only a header).
IDLE_S = 2.0


def playable_duration(path: Path, timeout_s: float = 10.0) -> float | None:
    """Seconds the container says it holds (discoverer), None if it cannot be read as media."""
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


class _Span:
    """First timestamp and end of the last frame seen on any stream (streaming threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: int | None = None
        self.end: int | None = None
        self.progress = time.monotonic()  # when the last frame came

    def probe(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buffer = info.get_buffer()
        pts = buffer.pts if buffer.pts != Gst.CLOCK_TIME_NONE else buffer.dts
        if pts != Gst.CLOCK_TIME_NONE:
            length = buffer.duration if buffer.duration != Gst.CLOCK_TIME_NONE else 0
            with self._lock:
                self.first = pts if self.first is None else min(self.first, pts)
                self.end = pts + length if self.end is None else max(self.end, pts + length)
        self.progress = time.monotonic()
        return Gst.PadProbeReturn.OK

    @property
    def seconds(self) -> float | None:
        if self.first is None or self.end is None:
            return None
        return (self.end - self.first) / Gst.SECOND


def _on_pad(demux: Gst.Element, pad: Gst.Pad, span: _Span) -> None:
    """A demuxed stream: into a fakesink, through the span's probe. Holds no pipeline (no
    reference cycle through C): the pipeline is the demuxer's parent."""
    sink = Gst.ElementFactory.make("fakesink")
    demux.get_parent().add(sink)
    sink.sync_state_with_parent()
    pad.add_probe(Gst.PadProbeType.BUFFER, span.probe)
    pad.link(sink.get_static_pad("sink"))


def played_seconds(path: Path, timeout_s: float = 30.0) -> float | None:
    """Seconds of media that can really be read from the file (None: nothing can). A cut
    file ends at its last whole frame; an error after some frames (the cut) ends the scan."""
    pipeline = Gst.Pipeline.new("played-seconds")
    source = Gst.ElementFactory.make("filesrc")
    demux = Gst.ElementFactory.make("parsebin")
    if source is None or demux is None:
        return None
    source.set_property("location", str(path))
    pipeline.add(source)
    pipeline.add(demux)
    source.link(demux)
    span = _Span()
    demux.connect("pad-added", _on_pad, span)
    try:
        pipeline.set_state(Gst.State.PLAYING)
        _wait_for_end(pipeline.get_bus(), span, time.monotonic() + timeout_s)
    finally:
        pipeline.set_state(Gst.State.NULL)
    return span.seconds


def _wait_for_end(bus: Gst.Bus, span: _Span, deadline: float) -> None:
    """Until EOS or an error, the deadline, or IDLE_S without a frame."""
    ends = Gst.MessageType.EOS | Gst.MessageType.ERROR
    while True:
        now = time.monotonic()
        if now >= deadline or now - span.progress >= IDLE_S:
            return
        if bus.timed_pop_filtered(int(0.1 * Gst.SECOND), ends) is not None:
            return
