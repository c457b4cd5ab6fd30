"""One connection attempt to a camera: urisourcebin → parsebin → ghost pads `video`/`audio`.

A `SourceBin` is built per attempt and thrown away whole when the attempt ends, so nothing a
broken connection left behind (half-negotiated depayloaders, a stuck socket) leaks into the
next one. Inside it, linking happens on streaming threads as in decodebin (it is the bin's own
autoplugging); what leaves it are two ghost pads carrying parsed, still-encoded media.

`urisourcebin` picks the protocol element (rtspsrc, souphttpsrc, srtsrc, rtmpsrc, filesrc)
and `parsebin` the depayloader/demuxer and parser, so every scheme ends in the same shape.
Sources that are not live (files, HTTP downloads, RTMP) are paced by `clocksync` so a file
plays at camera speed instead of flooding the consumers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from streamwarden.config.model import SourceSettings
from streamwarden.gst.init import Gst
from streamwarden.gst.weak import weak_method
from streamwarden.ingest.decode_order import CameraTime, RtpTimes, timestamper_for

log = logging.getLogger(__name__)

VIDEO_CAPS = ("video/x-h264", "video/x-h265")
AUDIO_CAPS = ("audio/mpeg", "audio/x-opus", "audio/x-alaw", "audio/x-mulaw")
_LIVE_SCHEMES = ("rtsp", "rtsps", "rtspt", "srt")
_RTP_SCHEMES = ("rtsp", "rtsps", "rtspt")  # presentation times only: decode order rebuilt
_RTSP_TCP = 4  # GstRTSPLowerTrans flags
_RTSP_UDP = 1


def media_kind(caps: Gst.Caps | None) -> str | None:
    """'video' or 'audio' for codecs we carry, None for anything else (it is discarded)."""
    if caps is None or caps.get_size() == 0:
        return None
    name = caps.get_structure(0).get_name()
    if name in VIDEO_CAPS:
        return "video"
    if name in AUDIO_CAPS:
        return "audio"
    return None


def _make(factory: str, name: str | None = None) -> Gst.Element:
    element = Gst.ElementFactory.make(factory, name)
    if element is None:
        raise RuntimeError(f"GStreamer element {factory!r} is not installed")
    return element


class SourceBin:
    """Builds the elements of one attempt; calls `on_output(kind, ghost_pad)` per exposed pad."""

    def __init__(
        self,
        name: str,
        uri: str,
        settings: SourceSettings,
        on_output: Callable[[str, Gst.Pad, int], None],
        generation: int = 0,
    ):
        self.uri = uri
        self.settings = settings
        self.scheme = urlsplit(uri).scheme.lower()
        self.paced = self.scheme not in _LIVE_SCHEMES
        self.rtp = self.scheme in _RTP_SCHEMES
        self._on_output = on_output
        self.generation = generation
        self._lock = threading.Lock()
        self.exposed: dict[str, Gst.Pad] = {}
        self._times: list[CameraTime] = []  # their probes hold them weakly
        self._jitterbuffers: list[Gst.Element] = []  # RTP: where lost packets are counted
        self._rtp_times: list[RtpTimes] = []  # RTP: presentation times from RTP's own
        self.bin = Gst.Bin.new(name)
        source = _make("urisourcebin")
        source.set_property("uri", uri)
        # Playback never pauses to pre-buffer (a live camera must not stall; consumers have
        # their own queues), so buffering messages would only report a meaningless fill level.
        source.set_property("use-buffering", False)
        source.connect("source-setup", weak_method(self._configure_source))
        source.connect("pad-added", weak_method(self._on_source_pad))
        self.bin.add(source)

    def _configure_source(self, _urisourcebin: Gst.Element, source: Gst.Element) -> None:
        """Per-protocol settings: RTSP transport, jitter-buffer latency, credentials, timeouts."""
        factory = source.get_factory().get_name() if source.get_factory() else ""
        props = {p.name for p in source.list_properties()}
        if factory == "rtspsrc":
            tcp = self.settings.transport == "tcp" or self.scheme == "rtspt"
            source.set_property("protocols", _RTSP_TCP if tcp else _RTSP_UDP)
            source.set_property("latency", int(self.settings.latency * 1000))
            # Our watchdog (`timeout`) decides first; rtspsrc's own limits are a backstop.
            source.set_property("tcp-timeout", int(self.settings.timeout * 2_000_000))
            source.set_property("timeout", int(self.settings.timeout * 2_000_000))
            source.connect("new-manager", weak_method(self._on_rtp_manager))
            parts = urlsplit(self.uri)
            if parts.username:
                source.set_property("user-id", unquote(parts.username))
            if parts.password:
                source.set_property("user-pw", unquote(parts.password))
        elif "timeout" in props and factory in ("souphttpsrc",):
            source.set_property("timeout", max(1, int(self.settings.timeout)))
        if factory == "souphttpsrc" and "is-live" in props:
            source.set_property("is-live", False)

    def _on_rtp_manager(self, _rtspsrc: Gst.Element, manager: Gst.Element) -> None:
        if manager.find_property("latency") is not None:  # rtpbin (not a custom manager)
            manager.connect("new-jitterbuffer", weak_method(self._on_jitterbuffer))

    def _on_jitterbuffer(self, _rtpbin: Gst.Element, jitterbuffer: Gst.Element, *_ids) -> None:
        with self._lock:
            self._jitterbuffers.append(jitterbuffer)

    def lost_packets(self) -> int:
        """RTP packets this attempt's jitter buffers gave up on (0 for other protocols)."""
        with self._lock:
            buffers = list(self._jitterbuffers)
        lost = 0
        for jitterbuffer in buffers:
            stats = jitterbuffer.get_property("stats")
            ok, value = stats.get_uint64("num-lost") if stats is not None else (False, 0)
            lost += value if ok else 0
        return lost

    def clock_jumps(self) -> list[int]:
        """Jumps of an RTP camera's clock (ns) since the last call (the jitter buffer has
        resynchronised to them: nothing downstream sees them)."""
        with self._lock:
            times = list(self._rtp_times)
        return [jump for rtp in times for jump in rtp.take_jumps()]

    def _on_source_pad(self, _element: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        structure = caps.get_structure(0) if caps is not None and caps.get_size() else None
        if structure is not None and structure.get_name() == "application/x-rtp":
            ok, rate = structure.get_int("clock-rate")
            with self._lock:
                self._rtp_times.append(RtpTimes(pad, rate if ok and rate > 0 else 90000))
        parser = _make("parsebin")
        parser.connect("pad-added", weak_method(self._on_parsed_pad))
        self.bin.add(parser)
        parser.sync_state_with_parent()
        result = pad.link(parser.get_static_pad("sink"))
        if result != Gst.PadLinkReturn.OK:
            log.warning("%s: cannot link source pad to parsebin: %s", self.bin.get_name(), result)

    def _discard(self, pad: Gst.Pad) -> None:
        sink = _make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.bin.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def _chain(self, pad: Gst.Pad, element: Gst.Element, props: dict | None = None) -> Gst.Pad:
        """`pad` ! `element`, started with the bin; returns the element's src pad."""
        for name, value in (props or {}).items():
            element.set_property(name, value)
        self.bin.add(element)
        element.sync_state_with_parent()
        pad.link(element.get_static_pad("sink"))
        return element.get_static_pad("src")

    def _decode_order(self, kind: str, pad: Gst.Pad, caps: Gst.Caps | None) -> Gst.Pad:
        """RTP video gets its decode times rebuilt; every RTP track is put on one time base
        (decode_order.py says why)."""
        timestamper = timestamper_for(caps) if kind == "video" else None
        if timestamper is None:
            self._times.append(CameraTime(pad))
            return pad
        src = self._chain(pad, timestamper)
        self._times.append(CameraTime(src, timestamper.get_static_pad("sink")))
        return src

    def _on_parsed_pad(self, _parsebin: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        kind = media_kind(caps)
        with self._lock:
            if kind is None or kind in self.exposed:
                self._discard(pad)
                return
            target = self._decode_order(kind, pad, caps) if self.rtp else pad
            if self.paced:
                target = self._chain(target, _make("clocksync"), {"sync-to-first": True})
            ghost = Gst.GhostPad.new(kind, target)
            ghost.set_active(True)
            self.exposed[kind] = ghost
            self.bin.add_pad(ghost)
        self._on_output(kind, ghost, self.generation)
