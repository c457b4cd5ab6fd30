"""What a consumer is: a bin fed from the producer's tee, added and removed while it plays.

A consumer owns everything after the tee: its first element is a leaky queue, so a consumer
that stalls loses its own frames instead of blocking the producer and the other consumers. The
producer only requests a tee pad, links it to the consumer's `video` (and `audio`) ghost pad,
and on detach releases the pad and, if the consumer asks for it, sends EOS so it can close
its files before it is stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from streamwarden.gst.init import Gst
from streamwarden.gst.weak import weak_method

# Two seconds of frames is plenty for a consumer that keeps up; one that does not drops the
# oldest instead of pushing back on the producer.
QUEUE_MAX_TIME_NS = 2 * Gst.SECOND
_PROBE_OK = Gst.PadProbeReturn.OK


def leaky_queue(name: str | None) -> Gst.Element:
    queue = Gst.ElementFactory.make("queue", name)
    queue.set_property("leaky", 2)  # downstream: drop the oldest
    queue.set_property("max-size-buffers", 0)
    queue.set_property("max-size-bytes", 0)
    queue.set_property("max-size-time", QUEUE_MAX_TIME_NS)
    return queue


def appsink_tap(name: str, on_sample, on_event) -> Gst.Bin:
    """A consumer bin with, per media kind, a leaky queue into an appsink.

    `on_sample(sink, kind)` runs for each frame and `on_event(pad, info, kind)` for each
    downstream event, both on the queue's streaming thread; the bin has `video` and `audio`
    sink ghost pads. Used by consumers that handle encoded frames in Python (recorder, relay).
    """
    bin_ = Gst.Bin.new(name)
    for kind in ("video", "audio"):
        queue = leaky_queue(None)
        sink = Gst.ElementFactory.make("appsink")
        for prop, value in (("sync", False), ("async", False), ("emit-signals", True),
                            ("wait-on-eos", False)):
            sink.set_property(prop, value)
        sink.connect("new-sample", weak_method(on_sample, Gst.FlowReturn.FLUSHING), kind)
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM,
                                              weak_method(on_event, _PROBE_OK), kind)
        bin_.add(queue)
        bin_.add(sink)
        queue.link(sink)
        bin_.add_pad(Gst.GhostPad.new(kind, queue.get_static_pad("sink")))
    return bin_


def appsink_buffer(name: str, max_buffers: int, on_event) -> Gst.Bin:
    """A consumer bin with, per media kind, a bare appsink that Python drains in batches.

    For consumers that do not need each frame at once (the recorder). No queue and no signal
    per frame: the appsink stores the producer's buffers in C, in the producer's streaming
    thread, and the consumer pulls them (`try-pull-sample`) from a thread of its own a few
    times a second. That saves a thread hop and a trip into Python per frame, which is most
    of what a recorded stream costs. The producer stays protected as the leaky queue would
    protect it: `sync=false` never waits for a clock and `drop=true` discards the oldest
    buffer once `max_buffers` are waiting, so the appsink never blocks the tee.
    `on_event(pad, info, kind)` runs for each downstream event on the producer's thread,
    after every buffer that came before it is stored, so it can drain those first.
    """
    bin_ = Gst.Bin.new(name)
    for kind in ("video", "audio"):
        sink = Gst.ElementFactory.make("appsink", f"{name}-{kind}")
        for prop, value in (("sync", False), ("async", False), ("emit-signals", False),
                            ("wait-on-eos", False), ("enable-last-sample", False),
                            ("max-buffers", max_buffers), ("drop", True)):
            sink.set_property(prop, value)
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM,
                                              weak_method(on_event, _PROBE_OK), kind)
        bin_.add(sink)
        bin_.add_pad(Gst.GhostPad.new(kind, sink.get_static_pad("sink")))
    return bin_


class Consumer(ABC):
    """A branch after the producer's tee. Build once, attach once, detach once."""

    kind: str = "consumer"
    wants_audio: bool = False
    needs_eos_on_detach: bool = False

    def __init__(self, name: str):
        self.name = name
        self.bin: Gst.Bin | None = None
        self._sink_count = 0
        self._sinks_at_eos = 0

    @abstractmethod
    def build(self) -> Gst.Bin:
        """Create the bin with a `video` (and optionally `audio`) sink ghost pad."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Numbers for the API; read from another thread, so plain values only."""

    def disposed(self) -> None:  # noqa: B027 - optional hook
        """The bin left the pipeline for good (GStreamer thread): release what build() took."""

    def tick(self, now: float) -> None:  # noqa: B027 - optional hook
        """Called every producer tick on the GStreamer thread (timers, retries)."""

    def discontinuity(self, wall: float, seconds: float) -> None:  # noqa: B027 - optional hook
        """The camera's clock jumped `seconds` at `wall` (GStreamer thread, once per jump;
        the frames themselves are handled as they come)."""

    def on_forwarded(self, message: Gst.Message) -> None:
        """A message from inside this consumer's bin (forwarded by the bin), GStreamer thread."""
        if message.type == Gst.MessageType.EOS:
            self._sinks_at_eos += 1

    @property
    def drained(self) -> bool:
        """After EOS on detach: True once everything the consumer writes is finished."""
        return self._sinks_at_eos >= self._sink_count

    def expect_eos(self) -> None:
        """Detach sent EOS: from now on `drained` tells when the consumer is done."""
        self._sink_count = max(1, _count_sinks(self.bin)) if self.bin is not None else 0
        self._sinks_at_eos = 0


def _count_sinks(bin_: Gst.Bin) -> int:
    """How many sink elements will post EOS (a sink bin like splitmuxsink counts once)."""
    count = 0
    iterator = bin_.iterate_sinks()
    while True:
        result, _element = iterator.next()
        if result == Gst.IteratorResult.OK:
            count += 1
        elif result == Gst.IteratorResult.RESYNC:
            iterator.resync()
            count = 0
        else:
            return count
