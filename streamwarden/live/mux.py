"""The live-view consumer: one fragmented-MP4 mux per stream, shared by every browser viewer.

Attached to the stream's video tee only while someone watches: a leaky queue into an appsink
that accepts any caps (so it never narrows what the camera may link to). The appsink callback
(a streaming thread) takes the camera's H.264 or H.265 access units as they are — "avc" /
"hvc1" / "hev1" with codec_data from RTSP, RTMP and MP4 sources; H.264 byte-stream converted
in Python (annexb.py) — wraps each in a moof+mdat (fmp4.py) with its composition offset
(B-frames: decode times come from the stream, rebuilt for RTSP by ingest) and hands the
bytes to `deliver` without blocking. Whether the browser can play H.265 is its business:
the init announcement carries the codec string and the dashboard asks MSE first. Decode times are
rebased onto one continuous timeline (media.timeline.ContinuousTimeline) that also runs on
across a camera reconnect, so the browser's SourceBuffer never sees time go backwards; after
a reconnect delivery resumes at a keyframe (media.timeline.KeyframeGate).
New caps (new SPS/PPS, size) produce a new init segment. What cannot be muxed (H.265
byte-stream, which no source tried hands over, or caps without codec_data) is named in
`unsupported` and the viewers are told.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamwarden.consumers.base import Consumer, leaky_queue
from streamwarden.gst.buffers import is_keyframe, same_caps, timestamps
from streamwarden.gst.init import Gst
from streamwarden.gst.weak import weak_method
from streamwarden.live import fmp4
from streamwarden.live.annexb import AnnexBConverter
from streamwarden.media.timeline import SECOND, ContinuousTimeline, KeyframeGate


def to_ticks(ns: int) -> int:
    return ns * fmp4.TIMESCALE // SECOND


@dataclass(frozen=True)
class InitSegment:
    codec: str  # RFC 6381, e.g. avc1.64001f
    width: int
    height: int
    data: bytes

    @property
    def mime(self) -> str:
        return f'video/mp4; codecs="{self.codec}"'


# deliver(init, fragment, keyframe): exactly one of init/fragment is set
Deliver = Callable[[InitSegment | None, bytes | None, bool], None]


class LiveMux(Consumer):
    kind = "live"
    wants_audio = False

    def __init__(self, stream_id: str, deliver: Deliver):
        super().__init__("live")
        self.stream_id = stream_id
        self._deliver = deliver
        self._lock = threading.Lock()
        self._timeline = ContinuousTimeline()
        self._caps: Gst.Caps | None = None
        self._sequence = 0
        self._gate = KeyframeGate()  # after a start, a reconnect, new caps: deltas are junk
        self._annexb: AnnexBConverter | None = None
        self._entry = b"avc1"  # the sample entry: avc1, hvc1 or hev1
        self._size = (0, 0)
        self.init: InitSegment | None = None
        self.fragments = 0
        self.viewers = 0  # kept up to date by the asyncio side, read by stats()
        self.error: str | None = None
        self.unsupported: str | None = None  # what we cannot mux (H.265 byte-stream)

    def build(self) -> Gst.Bin:
        bin_ = Gst.Bin.new(f"live-{self.stream_id}")
        queue = leaky_queue(None)
        sink = Gst.ElementFactory.make("appsink")
        for prop, value in (("sync", False), ("async", False), ("emit-signals", True),
                            ("wait-on-eos", False)):
            sink.set_property(prop, value)
        sink.connect("new-sample", weak_method(self._on_sample, Gst.FlowReturn.FLUSHING))
        sink.get_static_pad("sink").add_probe(
            Gst.PadProbeType.EVENT_DOWNSTREAM, weak_method(self._on_event, Gst.PadProbeReturn.OK))
        bin_.add(queue)
        bin_.add(sink)
        queue.link(sink)
        bin_.add_pad(Gst.GhostPad.new("video", queue.get_static_pad("sink")))
        self.bin = bin_
        return bin_

    # ---- streaming thread ------------------------------------------------------------------

    def _on_event(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.get_event().type == Gst.EventType.STREAM_START:
            with self._lock:  # the camera reconnected: its timestamps start afresh
                self._timeline.reanchor()
                self._gate.close()
        return Gst.PadProbeReturn.OK

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        with self._lock:
            caps = sample.get_caps()
            if caps is not None and (self._caps is None or not same_caps(caps, self._caps)):
                self._caps = caps
                self._new_caps(caps)
            if self.unsupported is None:
                self._mux(sample.get_buffer())
        return Gst.FlowReturn.OK

    def _new_caps(self, caps: Gst.Caps) -> None:
        s = caps.get_structure(0)
        self._size = (s.get_int("width")[1], s.get_int("height")[1])
        self._gate.close()
        self._annexb = None
        name, fmt = s.get_name(), s.get_string("stream-format")
        self._entry = b"avc1" if name == "video/x-h264" else (fmt or "hvc1").encode()
        if name not in ("video/x-h264", "video/x-h265"):
            self.unsupported = name
            return
        self.unsupported = None
        if name == "video/x-h264" and fmt == "byte-stream":
            self._annexb = AnnexBConverter()  # the init comes with the first SPS/PPS
            return
        codec_data = s.get_value("codec_data")
        if codec_data is None or fmt == "byte-stream":
            self.error = f"no codec_data in {fmt} caps"
            self.unsupported = f"{name}, stream-format={fmt}"
            return
        self._publish_init(bytes(codec_data.extract_dup(0, codec_data.get_size())))

    def _publish_init(self, config: bytes) -> None:
        width, height = self._size
        entry = self._entry
        try:
            codec = (fmp4.codec_string(config) if entry == b"avc1"
                     else fmp4.hevc_codec_string(config, entry.decode()))
        except ValueError as exc:
            self.error = str(exc)
            return
        self.error = None
        self.init = InitSegment(codec, width, height,
                                fmp4.init_segment(config, width, height, entry))
        self._gate.close()
        self._deliver(self.init, None, False)

    def _mux(self, buffer: Gst.Buffer) -> None:
        pts, dts = timestamps(buffer)
        decode = dts if dts is not None else pts
        if decode is None:
            return
        keyframe = is_keyframe(buffer)
        payload = buffer.extract_dup(0, buffer.get_size())
        if self._annexb is not None:
            payload, avcc = self._annexb.convert(payload)
            if avcc is not None:
                self._publish_init(avcc)
        if self.init is None or not self._gate.admit(True, keyframe):
            return
        decode_ns = self._timeline.place(decode)
        offset_ns = pts - decode if pts is not None else 0
        self._sequence += 1
        data = fmp4.fragment(self._sequence, to_ticks(decode_ns),
                             to_ticks(self._timeline.frame_ns), to_ticks(offset_ns), keyframe,
                             payload)
        self.fragments += 1
        self._deliver(None, data, keyframe)

    # ---- any thread ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        init = self.init
        return {"kind": self.kind, "name": self.name, "viewers": self.viewers,
                "fragments": self.fragments, "codec": init.codec if init else None,
                "error": self.error}
