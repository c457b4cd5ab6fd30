"""The pixel consumer: the one decoder of a stream, running only while something needs pixels.

Attached to the producer's video tee like any consumer (so adding or removing it never
touches the camera or the other consumers). Every per-frame step is a C element; Python runs
only for the few frames that are handed on (`fps` a second) and a 250 ms tick:

    queue(leaky) ─► identity(drop delta frames?) ─► decodebin ─► videorate(max-rate)
                 ─► videoscale(width W at most) ─► videoconvert(BGR)
                 ─► appsink(max-buffers=1, drop)

- keyframe gate: when the wanted rate is at or below the camera's keyframe rate (read from
  the producer's counters in `tick`), `identity` drops delta frames before the decoder (they
  could not be decoded alone and are not needed).
- otherwise every frame is decoded (H.264 needs its references) but `videorate` passes only
  `fps` of them on to scaling and colour conversion; scaling first, then converting the small
  picture, is about 6x cheaper than the other way round.
- activity gate (`set_activity`, inference only): a probe on the queue's input (the camera's
  thread, which runs Python per frame anyway to count it) measures each frame's size
  (media/activity.py); while the scene is idle it drops delta frames there, so the queue's
  thread does not even wake for them (it did, 25 times a second, when the probe sat behind
  the queue: 0.4 % of a core per still stream, `bench/inference.py --clients
  sw-still,sw-rec-only`, ABBA at N=4) and
  only keyframes are decoded (the model still sees one picture per GOP; one per
  `keyframe_refresh` while keyframes keep the size of the last decoded one, i.e. the same
  still picture), and lets everything through again at the first frame that moves. The
  decoder then gets a P-frame whose references it skipped; FFmpeg conceals them with the
  last decoded picture, which in a scene that was still is the same picture, so the first
  moving frame already decodes usefully. Bypassed while someone else (an MJPEG viewer) uses
  the decoder.
- appsink callback (streaming thread): copies the frame into the stream's shared-memory slot
  (latest frame wins) and wakes the worker; keeps the last few frames for snapshots and
  event pictures. It never waits for anything.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from streamwarden.consumers.base import Consumer
from streamwarden.gst.buffers import DELTA_UNIT, NO_FLAGS, is_keyframe
from streamwarden.gst.init import Gst
from streamwarden.gst.weak import weak_method
from streamwarden.inference.shm import FrameSlot
from streamwarden.media.activity import Activity, ActivityMeter, ActivitySettings

KEEP_FRAMES = 4
QUEUE_MAX_TIME_NS = Gst.SECOND  # a decoder that falls behind drops, never buffers seconds


def slot_capacity(width: int) -> int:
    """Bytes for one BGR frame `width` wide, up to 2:1 portrait, rows padded to 4 bytes."""
    stride = (width * 3 + 3) & ~3
    return stride * width * 2


def scaled_caps(width: int) -> str:
    """Square pixels, `width` wide at most: videoscale fixates a range to the width nearest
    the picture's own, so a wider picture is scaled down to `width` and a narrower one (a
    640x360 sub-stream) passes at its own size. Scaling it up would add no detail and cost
    conversion, copies and model time. The range is set once, when the bin is built:
    changing a capsfilter's caps while decodebin exposes its pad left viewers without a
    picture under load (CI, test_leaks)."""
    return f"video/x-raw,width=[2,{width}],pixel-aspect-ratio=1/1"


class PixelConsumer(Consumer):
    kind = "pixels"

    def __init__(self, stream_id: str, fps: float, width: int, slot: FrameSlot | None,
                 on_frame: Callable[[str], None] | None = None,
                 camera_counters: Callable[[], tuple[int, int]] | None = None):
        super().__init__("pixels")
        self.stream_id = stream_id
        self.fps = fps
        self.width = width
        self.slot = slot
        self.on_frame = on_frame
        # (frames, keyframes) the producer has seen: the keyframe rate without a probe here
        self._camera_counters = camera_counters or (lambda: (0, 0))
        self._start_counters: tuple[int, int] | None = None
        self._keyframe_samples: deque[tuple[float, int]] = deque(maxlen=40)  # 10 s of ticks
        self._period_ns = int(Gst.SECOND / fps)
        self._fractional = fps != math.ceil(fps)
        self._next_due_ns = 0
        self._slot_period_ns = 0
        self._next_slot_ns = 0
        self.keyframes_only = False
        self._started = False  # the first keyframe has reached the decoder
        self.frames_out = 0
        self._frames: OrderedDict[int, tuple[np.ndarray, float]] = OrderedDict()
        self._frames_lock = threading.Lock()
        self._local_seq = 0
        self._gate: Gst.Element | None = None
        self._queue: Gst.Element | None = None
        self._rate: Gst.Element | None = None
        self._size: Gst.Element | None = None
        self.slot_fps: float | None = None
        self.activity_settings: ActivitySettings | None = None
        self.on_unchanged: Callable[[], None] | None = None
        self._meter: ActivityMeter | None = None
        self._activity_probe: int | None = None
        self.gate_bypassed = False  # another user than inference wants every frame
        self.frames_gated = 0  # delta frames the activity gate kept from the decoder

    # ---- pipeline --------------------------------------------------------------------------

    def build(self) -> Gst.Bin:
        bin_ = Gst.Bin.new(None)
        queue = Gst.ElementFactory.make("queue")
        for prop, value in (("leaky", 2), ("max-size-buffers", 0), ("max-size-bytes", 0),
                            ("max-size-time", QUEUE_MAX_TIME_NS)):
            queue.set_property(prop, value)
        gate = Gst.ElementFactory.make("identity")
        gate.set_property("silent", True)
        # Start at a keyframe: deltas before it would decode to grey garbage. A one-shot probe
        # opens the gate at the first keyframe and removes itself.
        gate.set_property("drop-buffer-flags", DELTA_UNIT)
        gate.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER, weak_method(self._first_keyframe, Gst.PadProbeReturn.OK))
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("deep-element-added", self._on_element_added)
        rate = Gst.ElementFactory.make("videorate")
        rate.set_property("drop-only", True)
        rate.set_property("max-rate", max(1, math.ceil(self.fps)))
        scale = Gst.ElementFactory.make("videoscale")
        size = Gst.ElementFactory.make("capsfilter")
        size.set_property("caps", Gst.Caps.from_string(scaled_caps(self.width)))
        convert = Gst.ElementFactory.make("videoconvert")
        bgr = Gst.ElementFactory.make("capsfilter")
        bgr.set_property("caps", Gst.Caps.from_string("video/x-raw,format=BGR"))
        sink = Gst.ElementFactory.make("appsink")
        for prop, value in (("sync", False), ("async", False), ("emit-signals", True),
                            ("max-buffers", 1), ("drop", True), ("wait-on-eos", False)):
            sink.set_property(prop, value)
        sink.connect("new-sample", weak_method(self._on_sample, Gst.FlowReturn.FLUSHING))
        chain = (rate, scale, size, convert, bgr, sink)
        for element in (queue, gate, decode, *chain):
            bin_.add(element)
        queue.link(gate)
        gate.link(decode)
        for upstream, downstream in itertools.pairwise(chain):
            upstream.link(downstream)
        decode.connect("pad-added", weak_method(self._on_decoded_pad))
        self._gate, self._rate, self._size, self._queue = gate, rate, size, queue
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
        if not caps.get_structure(0).get_name().startswith("video/") or self._rate is None:
            return
        target = self._rate.get_static_pad("sink")
        if target.is_linked():
            target.get_peer().unlink(target)
        pad.link(target)


    def feed(self, slot: FrameSlot | None, on_frame: Callable[[str], None] | None,
             fps: float | None = None) -> None:
        """Hand frames to an inference slot at `fps` (other users may want more), or stop."""
        self.slot = slot
        self.on_frame = on_frame
        self.slot_fps = fps
        self._slot_period_ns = int(Gst.SECOND / fps) if fps else 0

    def set_activity(self, settings: ActivitySettings | None,
                     on_unchanged: Callable[[], None] | None = None) -> None:
        """Gate the decoder on activity (GStreamer thread; None: decode as asked).
        `on_unchanged` is called for each idle keyframe left undecoded (same picture)."""
        self.activity_settings, self.on_unchanged = settings, on_unchanged
        pad = self._queue.get_static_pad("sink") if self._queue is not None else None
        if self._activity_probe is not None and pad is not None:
            pad.remove_probe(self._activity_probe)
            self._activity_probe = None
        self._meter = ActivityMeter(settings) if settings is not None else None
        if settings is not None and pad is not None:
            self._activity_probe = pad.add_probe(
                Gst.PadProbeType.BUFFER, weak_method(self._on_frame_in, Gst.PadProbeReturn.OK))

    def _on_frame_in(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        """The camera's thread, per frame: judge activity; while idle only keyframes pass.
        Nothing here may wait: `on_unchanged` only notes the time (EventLog.unchanged)."""
        meter = self._meter
        if meter is None:
            return Gst.PadProbeReturn.OK
        buffer = info.get_buffer()
        keyframe, size, now = is_keyframe(buffer), buffer.get_size(), time.monotonic()
        state = meter.observe(size, keyframe, now)
        if self.gate_bypassed or (keyframe and meter.keyframe_wanted(size, now)) \
                or (state is Activity.ACTIVE and not keyframe):
            return Gst.PadProbeReturn.OK
        self.frames_gated += 1
        if keyframe and self.on_unchanged is not None:
            self.on_unchanged()  # what the model saw last is still there
        return Gst.PadProbeReturn.DROP

    @property
    def activity(self) -> str | None:
        """`idle` / `active` with the gate on, None without it."""
        meter = self._meter
        return meter.state.value if meter is not None else None

    def _slot_due(self, now_ns: int) -> bool:
        if now_ns < self._next_slot_ns:
            return False
        self._next_slot_ns = now_ns + self._slot_period_ns * 9 // 10  # arrival jitter allowed
        return True

    def set_fps(self, fps: float) -> None:
        """Change the rate handed on (GStreamer thread): the highest any user wants."""
        if fps == self.fps:
            return
        self.fps = fps
        self._period_ns = int(Gst.SECOND / fps)
        self._fractional = fps != math.ceil(fps)
        if self._rate is not None:
            self._rate.set_property("max-rate", max(1, math.ceil(fps)))

    def _first_keyframe(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if not is_keyframe(info.get_buffer()):
            return Gst.PadProbeReturn.OK  # identity drops it
        self._started = True
        if not self.keyframes_only and self._gate is not None:
            self._gate.set_property("drop-buffer-flags", NO_FLAGS)
        return Gst.PadProbeReturn.REMOVE

    # ---- keyframe gate (GStreamer thread, every producer tick) -----------------------------

    def tick(self, now: float) -> None:
        frames, keyframes = self._camera_counters()
        if self._start_counters is None:
            self._start_counters = (frames, keyframes)
        samples = self._keyframe_samples
        samples.append((now, keyframes))
        if len(samples) < 12 or self._gate is None:  # 3 s of history first
            return
        (t0, k0), (t1, k1) = samples[0], samples[-1]
        rate = (k1 - k0) / max(1e-6, t1 - t0)
        wanted = rate > 0 and self.fps <= rate * 1.05
        if wanted != self.keyframes_only:
            self.keyframes_only = wanted
            if not self._started:
                return  # the first-keyframe probe opens the gate as this says
            flags = DELTA_UNIT if wanted else NO_FLAGS
            self._gate.set_property("drop-buffer-flags", flags)

    # ---- frames out (streaming thread) -----------------------------------------------------

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        if self._fractional:  # videorate's max-rate is whole frames per second
            now = time.monotonic_ns()
            if now < self._next_due_ns:
                return Gst.FlowReturn.OK
            self._next_due_ns = now + self._period_ns * 9 // 10  # arrival jitter allowed
        now_ns = time.monotonic_ns()
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
            if self.slot is not None and self._slot_due(now_ns):
                try:
                    seq = self.slot.write(data, width, height, stride, buffer.pts, wall)
                except ValueError:  # slot closed (stream being removed) or frame too big
                    seq = None
            wrote_slot = seq is not None
            if seq is None:
                self._local_seq -= 1  # negative: never mistaken for a slot sequence
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
        on_frame = self.on_frame
        if on_frame is not None and wrote_slot:
            on_frame(self.stream_id)
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
        frames, _ = self._camera_counters()
        start = self._start_counters[0] if self._start_counters else frames
        frames_in = max(0, frames - start)
        decoded = int(self._rate.get_property("in")) if self._rate is not None else 0
        return {"kind": self.kind, "frames_in": frames_in, "frames_decoded": decoded,
                "frames_out": self.frames_out,
                "dropped_before_decoder": max(0, frames_in - decoded),
                "keyframes_only": self.keyframes_only, "fps": self.fps,
                "activity": self.activity, "frames_gated": self.frames_gated}
