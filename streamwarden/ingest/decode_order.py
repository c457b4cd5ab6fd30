"""Decode order for RTSP video, and one time base for every track of an RTSP camera.

RTP carries presentation times only: a depayloaded H.264/H.265 frame has a PTS and no DTS.
Without B-frames that is harmless (decode order is presentation order), but with B-frames
every consumer that needs a decode time (a muxer, the live view's `tfdt`, a rebase) was
handed the PTS, which goes back and forth: MP4 files with PTS = DTS, live views re-anchored
on every B-frame. GStreamer 1.22's `h264timestamper` / `h265timestamper` (gst-plugins-bad)
rebuild the DTS the way a decoder's reorder buffer would: they read the reorder depth from
the SPS (H.264: the VUI's `max_num_reorder_frames`; H.265: `sps_max_num_reorder_pics`),
hold that many frames plus two, and give each frame the smallest PTS still waiting, minus
the depth in frame durations. So a stream without B-frames passes with no delay, and one with
two B-frames is held 4 frames (160 ms at 25 fps). An H.264 SPS without the VUI's
bitstream-restriction part gives no depth: Baseline (and the intra profiles) are known to
have none, any other profile is assumed to reorder as much as its level's DPB holds (at most
16 frames; 4 or 5 for 720p/1080p at the usual levels), which delays such a camera by that many
frames but still gives correct, increasing decode times.

The timestamper shifts its output by "1000 hours minus the first PTS" (x264's trick to keep
decode times ahead of the first presentation time positive), segment included; audio never
passes through it. Consumers compare audio and video times (the recorder interleaves them,
the rebase drops what decodes before its anchor), so `CameraTime` puts every track of an RTSP
camera, buffers and segment alike, on `camera time + TIME_BASE` instead: the same shift for
audio and video, fixed, and large enough that no rebuilt decode time is ever negative.
"""

from __future__ import annotations

import threading

from streamwarden.gst.init import Gst
from streamwarden.gst.weak import weak_method
from streamwarden.media.timeline import RtpClock

TIME_BASE = 1000 * 3600 * Gst.SECOND  # what x264 and the timestamper use: 1000 hours
_TIMESTAMPERS = {"video/x-h264": "h264timestamper", "video/x-h265": "h265timestamper"}
_NONE = Gst.CLOCK_TIME_NONE
_OK = Gst.PadProbeReturn.OK
_DROP = Gst.PadProbeReturn.DROP
_BUFFER = Gst.PadProbeType.BUFFER
_LIST = Gst.PadProbeType.BUFFER_LIST
_SEGMENT = Gst.EventType.SEGMENT


class RtpTimes:
    """Gives each RTP packet leaving rtspsrc the time `media.timeline.RtpClock` makes of its
    RTP timestamp (exact frame spacing, in step with the jitter buffer's clock), so the
    timestamper after the video parser sorts true presentation times (audio gets the same,
    so it stays in step with the video).

    The probe runs for every packet on the jitter buffer's thread, the ingest's hot path.
    `bench/rtp_probe.py` measures it (µs per packet over no probe, the ingest bench's 720p
    clip): PyGObject's dispatch of an empty probe is ~8.2 and cannot be avoided in Python;
    on top of it, reading `info.type` cost ~4.5 and a `gst.weak.weak_method` wrapper ~0.9,
    while reading the RTP time and `RtpClock.pts` cost ~2 (`extract_dup` beats `Buffer.map`
    and GstRtp's `RTPBuffer`; asking the clock once per RTP timestamp instead of per packet
    saved nothing measurable: a repeated timestamp is its fast path). Hence:

    - buffers and buffer lists get a probe each, so no `info.type` is read per packet (a
      probe that matches nothing costs nothing measurable; rtspsrc pushes single packets);
    - the buffer probe is this object's own method, not a `weak_method` wrapper: the object
      holds nothing from GStreamer (its clock), so the pad holding it makes no cycle
      through C.

    ~10.3 µs a packet instead of ~15. What is left is the dispatch itself, which only an
    element in C would take off. A probe after the depayloader (once per frame) cannot do
    the work: a depayloaded frame carries the jitter buffer's time, not the RTP timestamp,
    and that time (the sender's skew re-estimated per packet) cannot be turned back into it.
    """

    __slots__ = ("__weakref__", "clock")

    def __init__(self, pad: Gst.Pad, clock_rate: int):
        self.clock = RtpClock(clock_rate)
        pad.add_probe(_BUFFER, self._on_packet)
        pad.add_probe(_LIST, weak_method(self._on_list, _OK))

    def _retime(self, packet: Gst.Buffer) -> None:
        reference = packet.pts
        if reference != _NONE:
            head = packet.extract_dup(4, 4)  # the RTP timestamp; fewer bytes: not RTP
            if len(head) == 4:
                packet.pts = self.clock.pts(int.from_bytes(head, "big"), reference)

    def _on_packet(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self._retime(info.get_buffer())
        return _OK

    def _on_list(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        """A buffer list (not what rtspsrc pushes, but not to be missed)."""
        packets = info.get_buffer_list()
        for index in range(packets.length()):
            self._retime(packets.get(index))
        return _OK

    def take_jumps(self) -> list[int]:
        """Jumps of the camera's clock (ns) seen since the last call."""
        jumps, self.clock.jumps = self.clock.jumps, []
        return jumps


def timestamper_for(caps: Gst.Caps | None) -> Gst.Element | None:
    """A DTS-rebuilding element for these (parsed, access-unit aligned) video caps, if any."""
    if caps is None or caps.get_size() == 0:
        return None
    factory = _TIMESTAMPERS.get(caps.get_structure(0).get_name())
    return Gst.ElementFactory.make(factory) if factory else None


class CameraTime:
    """Keeps the buffers and segments leaving `src` on `camera time + TIME_BASE`.

    `measured` is where the camera's own segment is read (a timestamper's sink pad: what
    leaves its src pad was shifted by its own amount); without one, `src`'s own segments are
    the camera's. Each segment seen on `src` is replaced by the camera's segment moved by
    TIME_BASE, and every buffer after it is moved by what makes the two agree.
    """

    def __init__(self, src: Gst.Pad, measured: Gst.Pad | None = None):
        self._camera: Gst.Segment | None = None
        self._delta = TIME_BASE
        self._replacing = threading.local()
        kinds = Gst.PadProbeType.EVENT_DOWNSTREAM | _BUFFER | _LIST
        src.add_probe(kinds, weak_method(self._on_src, _OK))
        if measured is not None:
            measured.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM,
                               weak_method(self._on_measured, _OK))

    def _move(self, buffer: Gst.Buffer) -> None:
        delta = self._delta
        if buffer.pts != _NONE:
            buffer.pts += delta
        if buffer.dts != _NONE:
            buffer.dts += delta

    def _on_measured(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event.type == _SEGMENT:
            self._camera = event.parse_segment().copy()
        return _OK

    def _on_src(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.type & _BUFFER:
            self._move(info.get_buffer())
            return _OK
        if info.type & _LIST:
            buffers = info.get_buffer_list()
            for index in range(buffers.length()):
                self._move(buffers.get(index))
            return _OK
        event = info.get_event()
        if event.type != _SEGMENT or getattr(self._replacing, "active", False):
            return _OK
        seen = event.parse_segment()
        camera = self._camera or seen
        self._delta = TIME_BASE - (seen.start - camera.start)
        moved = camera.copy()
        moved.start += TIME_BASE
        if moved.position != _NONE:
            moved.position += TIME_BASE
        if moved.stop != _NONE:
            moved.stop += TIME_BASE
        replacement = Gst.Event.new_segment(moved)
        replacement.set_seqnum(event.get_seqnum())
        self._replacing.active = True
        try:  # sticky: replaces the dropped one on the pad, then goes downstream in its place
            pad.push_event(replacement)
        finally:
            self._replacing.active = False
        return _DROP
