"""The simplest consumer: counts frames and keyframes and the longest gap between frames.

It exists to prove the producer/consumer shape (consumers attach and detach while the camera
streams) and to measure continuity: `max_gap_ms` is what a recorder would have lost.
"""

from __future__ import annotations

import time
from typing import Any

from streamwarden.consumers.base import Consumer, leaky_queue
from streamwarden.gst.buffers import is_keyframe
from streamwarden.gst.init import Gst
from streamwarden.gst.weak import weak_method

_OK = Gst.PadProbeReturn.OK


class FrameCounter(Consumer):
    kind = "frame_counter"

    def __init__(self, name: str = "frame_counter", wait_for_eos: bool = False):
        super().__init__(name)
        # With wait_for_eos the counter behaves like a file writer: on detach it is drained
        # (EOS first) before it is stopped, and `eos_received` records that it saw the end.
        self.needs_eos_on_detach = wait_for_eos
        self.eos_received = False
        self.frames = 0
        self.keyframes = 0
        self.max_gap_ns = 0
        self.last_ns = 0

    def build(self) -> Gst.Bin:
        bin_ = Gst.Bin.new(None)
        queue = leaky_queue(None)
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        bin_.add(queue)
        bin_.add(sink)
        queue.link(sink)
        sink_pad = sink.get_static_pad("sink")
        sink_pad.add_probe(Gst.PadProbeType.BUFFER, weak_method(self._on_buffer, _OK))
        sink_pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, weak_method(self._on_event, _OK))
        bin_.add_pad(Gst.GhostPad.new("video", queue.get_static_pad("sink")))
        self.bin = bin_
        return bin_

    def _on_buffer(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        now = time.monotonic_ns()
        if self.last_ns:
            self.max_gap_ns = max(self.max_gap_ns, now - self.last_ns)
        self.last_ns = now
        self.frames += 1
        if is_keyframe(info.get_buffer()):
            self.keyframes += 1
        return _OK

    def _on_event(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.get_event().type == Gst.EventType.EOS:
            self.eos_received = True
        return Gst.PadProbeReturn.OK

    def reset_gap(self) -> None:
        """Start measuring the longest gap afresh (after warm-up, say)."""
        self.max_gap_ns = 0

    def stats(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "max_gap_ms": round(self.max_gap_ns / 1e6, 1),
        }
