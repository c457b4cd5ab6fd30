"""The pixel consumer: the one decoder of a stream, running only while something needs pixels.

Attached to the producer's video tee like any consumer (so adding or removing it never
touches the camera or the other consumers):

    queue(leaky) ─► [keyframe gate] ─► decodebin ─► [rate gate] ─► videoconvert ─► videoscale
                 ─► video/x-raw,format=BGR,width=W ─► appsink(max-buffers=1, drop)

- keyframe gate: when the wanted rate is at or below the camera's keyframe rate, delta frames
  are dropped before the decoder (they could not be decoded alone, and are not needed).
- rate gate: otherwise every frame is decoded (H.264 needs its references) but only frames
  due at `fps` go on to colour conversion and scaling, the expensive part after decoding.
- appsink callback (streaming thread): copies the frame into the stream's shared-memory slot
  (latest frame wins) and wakes the worker; keeps the last few frames for snapshots and
  event pictures. It never waits for anything.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from streamwarden.consumers.base import Consumer
from streamwarden.gst.init import Gst
from streamwarden.inference.shm import FrameSlot

KEEP_FRAMES = 4
QUEUE_MAX_TIME_NS = Gst.SECOND  # a decoder that falls behind drops, never buffers seconds


def slot_capacity(width: int) -> int:
    """Bytes for one BGR frame `width` wide, up to 2:1 portrait, rows padded to 4 bytes."""
    stride = (width * 3 + 3) & ~3
    return stride * width * 2


class PixelConsumer(Consumer):
    kind = "pixels"

    def __init__(self, stream_id: str, fps: float, width: int, slot: FrameSlot | None,
                 on_frame: Callable[[str], None] | None = None):
        super().__init__("pixels")
        self.stream_id = stream_id
        self.fps = fps
        self.width = width
        self.slot = slot
        self._on_frame = on_frame
        self._period_ns = int(Gst.SECOND / fps)
        self._next_due_ns = 0
        self._keyframe_times: deque[int] = deque(maxlen=8)
        self.keyframes_only = False
        self.frames_in = 0
        self.frames_decoded = 0
        self.frames_out = 0
        self.dropped_before_decoder = 0
        self._frames: OrderedDict[int, tuple[np.ndarray, float]] = OrderedDict()
        self._frames_lock = threading.Lock()
        self._local_seq = 0
        self._convert: Gst.Element | None = None

    # ---- pipeline --------------------------------------------------------------------------

    def build(self) -> Gst.Bin:
        bin_ = Gst.Bin.new(None)
        queue = Gst.ElementFactory.make("queue")
        for prop, value in (("leaky", 2), ("max-size-buffers", 0), ("max-size-bytes", 0),
                            ("max-size-time", QUEUE_MAX_TIME_NS)):
            queue.set_property(prop, value)
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("deep-element-added", self._on_element_added)
        convert = Gst.ElementFactory.make("videoconvert")
        scale = Gst.ElementFactory.make("videoscale")
        caps = Gst.ElementFactory.make("capsfilter")
        caps.set_property("caps", Gst.Caps.from_string(
            f"video/x-raw,format=BGR,width={self.width},pixel-aspect-ratio=1/1"))
        sink = Gst.ElementFactory.make("appsink")
        for prop, value in (("sync", False), ("async", False), ("emit-signals", True),
                            ("max-buffers", 1), ("drop", True), ("wait-on-eos", False)):
            sink.set_property(prop, value)
        sink.connect("new-sample", self._on_sample)
        for element in (queue, decode, convert, scale, caps, sink):
            bin_.add(element)
        queue.link(decode)
        convert.link(scale)
        scale.link(caps)
        caps.link(sink)
        decode.connect("pad-added", self._on_decoded_pad)
        queue.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self._keyframe_gate)
        convert.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self._rate_gate)
        self._convert = convert
        bin_.add_pad(Gst.GhostPad.new("video", queue.get_static_pad("sink")))
        self.bin = bin_
        return bin_

    @staticmethod
    def _on_element_added(_bin: Gst.Bin, _sub: Gst.Bin, element: Gst.Element) -> None:
        # One decoding thread per stream: 200 cameras must not mean 200 x cores threads.
        if element.find_property("max-threads") is not None:
            element.set_property("max-threads", 1)

    def _on_decoded_pad(self, _decode: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        if not caps.get_structure(0).get_name().startswith("video/"):
            return
        target = self._convert.get_static_pad("sink")
        if target.is_linked():
            target.get_peer().unlink(target)
        pad.link(target)

    # ---- gates (streaming threads) ---------------------------------------------------------

    def _keyframe_gate(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buffer = info.get_buffer()
        self.frames_in += 1
        if not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT):
            self._keyframe_times.append(time.monotonic_ns())
            times = self._keyframe_times
            if len(times) >= 3:
                rate = (len(times) - 1) * Gst.SECOND / max(1, times[-1] - times[0])
                self.keyframes_only = self.fps <= rate * 1.05
            return Gst.PadProbeReturn.OK
        if self.keyframes_only:
            self.dropped_before_decoder += 1
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    def _rate_gate(self, _pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        self.frames_decoded += 1
        now = time.monotonic_ns()
        if now < self._next_due_ns:
            return Gst.PadProbeReturn.DROP
        # Keep the average at `fps` but never bank credit across a pause.
        self._next_due_ns = max(self._next_due_ns + self._period_ns, now)
        if self._next_due_ns < now + self._period_ns // 2:
            self._next_due_ns = now + self._period_ns
        return Gst.PadProbeReturn.OK

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        buffer = sample.get_buffer()
        structure = sample.get_caps().get_structure(0)
        width = structure.get_value("width")
        height = structure.get_value("height")
        stride = (width * 3 + 3) & ~3
        wall = time.time()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.OK
        try:
            data = info.data
            seq = None
            if self.slot is not None:
                try:
                    seq = self.slot.write(data, width, height, stride, buffer.pts, wall)
                except ValueError:  # slot closed (stream being removed) or frame too big
                    seq = None
            if seq is None:
                self._local_seq += 1
                seq = self._local_seq
            raw = np.frombuffer(data, dtype=np.uint8, count=stride * height)
            pixels = raw.reshape(height, stride)[:, :width * 3].reshape(height, width, 3).copy()
        finally:
            buffer.unmap(info)
        with self._frames_lock:
            self._frames[seq] = (pixels, wall)
            while len(self._frames) > KEEP_FRAMES:
                self._frames.popitem(last=False)
        self.frames_out += 1
        if self._on_frame is not None:
            self._on_frame(self.stream_id)
        return Gst.FlowReturn.OK

    # ---- reads (any thread) ----------------------------------------------------------------

    def frame(self, seq: int | None = None) -> tuple[int, np.ndarray, float] | None:
        """A recent frame by sequence number, or the newest one: (seq, BGR pixels, wall)."""
        with self._frames_lock:
            if not self._frames:
                return None
            if seq is None:
                seq = next(reversed(self._frames))
            item = self._frames.get(seq)
        return (seq, item[0], item[1]) if item is not None else None

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "frames_in": self.frames_in,
                "frames_decoded": self.frames_decoded, "frames_out": self.frames_out,
                "dropped_before_decoder": self.dropped_before_decoder,
                "keyframes_only": self.keyframes_only, "fps": self.fps}
