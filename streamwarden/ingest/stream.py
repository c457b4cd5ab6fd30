"""A stream: one camera's pipeline, ending in a tee per media kind.

    [ SourceBin (rebuilt per attempt) ] --video--> tee_video --> consumer bins ...
                                        --audio--> tee_audio --> consumer bins ...

Each camera has its own pipeline (its own bus, state and clock), so an error, a stuck state
change or a renegotiation in one camera cannot touch another. The tees live as long as the
stream does; only the source in front of them is replaced on a restart, so consumers stay
attached through outages and see a clean discontinuity (new stream-start, caps and segment).

A stream with a `detect_uri` owns a second `Stream` for it (`detect`, role "detect"): the
camera's sub-stream, one more connection with its own pipeline, supervisor (same settings),
counters and tee, and no consumer but the pixel decoder. Whoever needs pixels attaches to
`pixel_source` (the sub-stream when there is one); recording, restream and live view stay on
the main tees. The two fail and recover independently; adding or removing the sub-stream
(`reconfigure`) never touches the main connection.

All methods run on the GStreamer thread, except the probe callbacks (streaming threads) and
the lookups `consumer` / `consumers` and the plain attributes (any thread). The stream's
health and statistics, as the API shows them, are assembled in `api/views.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from streamwarden.config.model import SourceSettings, StreamConfig
from streamwarden.consumers.base import Consumer
from streamwarden.gst.buffers import caps_facts, decode_time, is_damaged, is_keyframe
from streamwarden.gst.init import GLib, Gst
from streamwarden.gst.reaper import Reaper
from streamwarden.gst.weak import weak_method
from streamwarden.ingest.outputs import C, Outputs
from streamwarden.ingest.source_bin import SourceBin
from streamwarden.ingest.stats import MediaInfo, RateMeter, StreamCounters
from streamwarden.ingest.supervisor import (
    Action,
    RetryReason,
    SourceSupervisor,
    StreamState,
    Transition,
)
from streamwarden.uris import DisplayUri

log = logging.getLogger("streamwarden.stream")

_DROP = Gst.PadProbeReturn.DROP
_OK = Gst.PadProbeReturn.OK


class Stream:
    """Owns one camera's pipeline, its source attempts, its tees and attached consumers.

    What the API calls a stream. It owns its pipeline and its own numbers (counters, rates,
    media, supervisor state) and nothing else: features (recording, restream, live view,
    inference) attach consumers to it, and the API assembles health from its numbers and
    the features' contributions (`api/views.py`).
    """

    def __init__(
        self,
        config: StreamConfig,
        settings: SourceSettings,
        reaper: Reaper,
        origin: str = "config",
        on_transition: Callable[[Stream, Transition], None] | None = None,
        role: str = "main",
    ):
        self.config = config
        self.id = config.id
        self.role = role  # "main", or "detect" for a stream's sub-stream
        self.label = config.id if role == "main" else f"{config.id} ({role})"  # for logs
        # What logs and the API show instead of the URI (it may hold credentials): once.
        self.display_uri = DisplayUri.of(config.uri)
        self.origin = origin  # "config" or "api": where the stream's definition lives
        self.settings = settings
        self._reaper = reaper
        self._on_transition = on_transition
        self.counters = StreamCounters()
        self.rates = RateMeter()
        self.media = MediaInfo()
        self.buffering_percent = 100
        self.created_at = time.time()
        self.supervisor = SourceSupervisor(settings, time.monotonic())
        self._generation = 0
        self._source: SourceBin | None = None
        # Pads held (blocked) until the GStreamer thread links them, by kind; guarded by
        # the lock because streaming threads add to it and teardown empties it.
        self._blocks_lock = threading.Lock()
        self._blocked: dict[str, tuple[Gst.Pad, int]] = {}
        self._eos_generation = -1
        self._seen_frame_ns = 0
        self._lost_before = 0  # RTP packets lost by the attempts before the current one
        self._closing = False
        self.detect: Stream | None = None  # the sub-stream (detect_uri), if any
        self._closing_detect: list[Stream] = []
        suffix = "" if role == "main" else f"-{role}"
        self.pipeline = Gst.Pipeline.new(f"stream-{self.id}{suffix}")
        self.outputs = Outputs(self.id, self.pipeline, reaper)
        self._bus = self.pipeline.get_bus()
        self._bus.add_signal_watch()
        self._bus_handler = self._bus.connect("message", weak_method(self._on_message))

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def tees(self) -> dict[str, Gst.Element]:
        return self.outputs.tees

    def reconfigure(self, config: StreamConfig) -> StreamConfig:
        """Take a config that changes nothing the main pipeline was built from (recording
        and inference toggles, the sub-stream; the manager restarts the stream for the
        rest); returns the old. A new or removed `detect_uri` starts or stops the sub-stream
        here, before the features hear of the change (they move the decoder to it)."""
        if config.id != self.id or config.uri != self.config.uri:
            raise ValueError("a stream's id and URI cannot change in place")
        previous, self.config = self.config, config
        if config.detect_uri != previous.detect_uri:
            self._stop_detect()
            self._start_detect()
        return previous

    @property
    def pixel_source(self) -> Stream:
        """The stream whose frames are decoded for detection, MJPEG and snapshots."""
        return self.detect or self

    def start(self) -> None:
        self.outputs.tee("video")
        self.pipeline.set_state(Gst.State.PLAYING)
        self._log_transition(Transition(StreamState.STARTING, StreamState.STARTING, "added"))
        self._start_attempt()
        self._start_detect()

    def _start_detect(self) -> None:
        uri = self.config.detect_uri
        if uri is None or self.role != "main":
            return
        config = self.config.model_copy(update={"uri": uri, "detect_uri": None})
        self.detect = Stream(config, self.settings, self._reaper, self.origin, role="detect")
        self.detect.start()

    def _stop_detect(self) -> None:
        detect, self.detect = self.detect, None
        if detect is not None:
            detect.begin_close()
            self._closing_detect.append(detect)
            self._finish_detect()

    def _finish_detect(self) -> None:
        for detect in list(self._closing_detect):
            if detect.drained:
                detect.finish_close()
                self._closing_detect.remove(detect)

    def begin_close(self) -> None:
        """Stop the source, then send EOS to the consumers so files are finished properly."""
        self._closing = True
        self._teardown_source()
        self.supervisor.stop()
        self._emit_transitions()
        self.outputs.detach_all(eos=True)
        if self.detect is not None:
            self._closing_detect.append(self.detect)
            self.detect.begin_close()

    @property
    def drained(self) -> bool:
        self.outputs.check_drain_deadlines(time.monotonic())
        return self.outputs.drained and all(d.drained for d in self._closing_detect)

    def finish_close(self) -> None:
        """After the consumers drained (or their deadline passed): stop the pipeline."""
        self._bus.disconnect(self._bus_handler)
        self._bus.remove_signal_watch()
        self.pipeline.set_state(Gst.State.NULL)
        self.outputs.tees.clear()
        for detect in self._closing_detect:
            detect.finish_close()
        self._closing_detect.clear()

    # ---- source attempts -------------------------------------------------------------------

    def _start_attempt(self) -> None:
        self._generation += 1
        generation = self._generation
        source = SourceBin(
            f"source-{self.id}-{generation}",
            self.config.uri,
            self.settings,
            weak_method(self._on_output),
            generation,
        )
        self._source = source
        self.pipeline.add(source.bin)
        if not source.bin.sync_state_with_parent():
            self._problem(RetryReason.ERROR, "the source could not be started")

    def _teardown_source(self) -> None:
        with self._blocks_lock:
            source, self._source = self._source, None
            self._generation += 1
            blocked, self._blocked = self._blocked, {}
        if source is None:
            return
        self._lost_before += source.lost_packets()
        for pad in list(source.exposed.values()):
            pad.add_probe(Gst.PadProbeType.ALL_BOTH, lambda *_: _DROP)
            peer = pad.get_peer()
            if peer is not None:
                pad.unlink(peer)
        # A pad still held for linking blocks its streaming thread, and that thread's element
        # cannot stop while it is blocked: set_state(NULL) would wait forever (the block is
        # only released when the bin's own pads deactivate, after its children stopped).
        for pad, block_id in blocked.values():
            pad.remove_probe(block_id)
        self.pipeline.remove(source.bin)
        self._reaper.dispose(source.bin, f"stream {self.id} source")

    def _on_output(self, kind: str, pad: Gst.Pad, generation: int) -> None:
        """Streaming thread: a new parsed pad. Hold it and let the GStreamer thread link it."""
        with self._blocks_lock:
            if generation != self._generation:
                return  # the attempt is being torn down: never block its threads
            block_id = pad.add_probe(Gst.PadProbeType.BLOCK_DOWNSTREAM, lambda *_: _OK)
            self._blocked[kind] = (pad, block_id)
        GLib.idle_add(self._link_output, generation, kind, pad, block_id)

    def _link_output(self, generation: int, kind: str, pad: Gst.Pad, block_id: int) -> bool:
        if generation != self._generation:
            return False  # the attempt is gone; its teardown released the pad
        tee = self.outputs.tee(kind)
        sink = tee.get_static_pad("sink")
        if sink.is_linked():
            sink.get_peer().unlink(sink)
        try:  # the Gst override raises LinkError rather than returning the failure
            pad.link(sink)
        except Gst.LinkError as exc:  # the restart this causes releases the held pad
            self._problem(RetryReason.ERROR, f"cannot link {kind} output ({exc})")
            return False
        if kind == "video":
            self.counters.new_attempt()  # before the counting probe sees its first frame
        weak = weak_method
        pad.add_probe(Gst.PadProbeType.BUFFER, weak(self._on_buffer, _DROP), generation, kind)
        pad.add_probe(Gst.PadProbeType.BUFFER_LIST, weak(self._on_buffer_list, _DROP),
                      generation, kind)
        pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, weak(self._on_event, _DROP),
                      generation, kind)
        with self._blocks_lock:
            self._blocked.pop(kind, None)
        pad.remove_probe(block_id)
        return False

    def _on_buffer(self, _pad: Gst.Pad, info: Gst.PadProbeInfo, generation: int,
                   kind: str) -> Gst.PadProbeReturn:
        """Per frame, on the streaming thread: as little Python as possible."""
        if generation != self._generation:
            return _DROP
        self._count(kind, info.get_buffer())
        return _OK

    def _count(self, kind: str, buffer: Gst.Buffer) -> None:
        if kind == "video":
            self.counters.on_video(buffer.get_size(), is_keyframe(buffer), decode_time(buffer),
                                   is_damaged(buffer))
        else:
            self.counters.on_audio(buffer.get_size())

    def _on_buffer_list(self, _pad: Gst.Pad, info: Gst.PadProbeInfo, generation: int,
                        kind: str) -> Gst.PadProbeReturn:
        if generation != self._generation:
            return _DROP
        buffers = info.get_buffer_list()
        for index in range(buffers.length()):
            self._count(kind, buffers.get(index))
        return _OK

    def _on_event(self, _pad: Gst.Pad, info: Gst.PadProbeInfo, generation: int,
                  kind: str) -> Gst.PadProbeReturn:
        if generation != self._generation:
            return _DROP
        event = info.get_event()
        if event.type == Gst.EventType.CAPS:
            self.media.update(kind, caps_facts(event.parse_caps()))
        elif event.type == Gst.EventType.EOS:
            # An ending camera is an outage, not the end of the consumers: keep EOS from
            # them and let the supervisor restart the source.
            self._eos_generation = generation
            return _DROP
        return _OK

    # ---- supervision -----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Periodic check on the GStreamer thread: data seen, timeouts, restarts, rates."""
        if self._closing:
            return
        if self.detect is not None:
            self.detect.tick(now)
        if self._closing_detect:
            self._finish_detect()
        last = self.counters.last_frame_ns
        if last and last != self._seen_frame_ns:
            self._seen_frame_ns = last
            self.supervisor.on_data(now)
        if self._eos_generation == self._generation:
            self._eos_generation = -1
            self._problem(RetryReason.EOS, "end of stream")
        self._note_losses()
        self.outputs.tick(now)
        action = self.supervisor.tick(now)
        self._apply(action)
        self.rates.sample(now, self.counters)
        self._emit_transitions()

    def _note_losses(self) -> None:
        """Lost RTP packets (the current attempt's jitter buffers) and clock jumps: each
        jump logged once, here on the GStreamer thread, and told to the consumers."""
        source = self._source
        self.counters.lost_packets = self._lost_before + (source.lost_packets() if source else 0)
        now = time.time()
        clock = [(now, jump / 1e9) for jump in source.clock_jumps()] if source else []
        if not clock and not self.counters.jumps:
            return
        for wall, seconds in self.counters.take_jumps(clock):
            log.warning("stream %s: the camera's timestamps jumped %+.3f s; recording and "
                        "viewers carry on across it", self.id, seconds,
                        extra={"stream_id": self.id, "event": "discontinuity",
                               "jump_seconds": round(seconds, 3), "time": wall})
            for consumer in self.consumers():
                consumer.discontinuity(wall, seconds)

    def _problem(self, reason: RetryReason, detail: str | None) -> None:
        detail = self.display_uri.scrub(detail) if detail else detail
        self._apply(self.supervisor.on_problem(time.monotonic(), reason, detail))
        self._emit_transitions()

    def _apply(self, action: Action) -> None:
        if action is Action.TEARDOWN:
            self._teardown_source()
        elif action is Action.START:
            self._start_attempt()

    def _emit_transitions(self) -> None:
        for transition in self.supervisor.pop_transitions():
            self._log_transition(transition)

    def _log_transition(self, transition: Transition) -> None:
        log.info(
            "stream %s: %s -> %s (%s)",
            self.label,
            transition.old.value,
            transition.new.value,
            transition.reason,
            extra={
                "stream_id": self.id,
                "state": transition.new.value,
                "previous_state": transition.old.value,
                "reason": transition.reason,
                "uri": self.display_uri.text,
                "source": self.role,
                "retry_count": self.supervisor.retry_count,
            },
        )
        if self._on_transition is not None:
            self._on_transition(self, transition)

    def _owned_by_current_source(self, element: Gst.Object | None) -> bool:
        source = self._source
        while element is not None:
            if source is not None and element is source.bin:
                return True
            element = element.get_parent()
        return False

    def _on_message(self, _bus: Gst.Bus, message: Gst.Message) -> None:
        kind = message.type
        if kind == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            text = err.message
            reason = (debug or "").strip().splitlines()[-1:] if debug else []
            if reason and reason[0] not in text and "): " not in reason[0]:
                text = f"{text} ({reason[0]})"
            consumer = self.outputs.owner_of(message.src)
            if consumer is not None:
                log.error("stream %s: consumer %s failed: %s", self.label, consumer.name,
                          err.message, extra={"stream_id": self.id, "consumer": consumer.name})
                self.detach(consumer, eos=False)
            elif self._owned_by_current_source(message.src) or message.src is self.pipeline:
                self._problem(RetryReason.ERROR, text)
        elif kind == Gst.MessageType.ELEMENT:
            self.outputs.handle_forwarded(message)
        elif kind == Gst.MessageType.BUFFERING:
            if self._owned_by_current_source(message.src):
                self.buffering_percent = message.parse_buffering()
        elif kind == Gst.MessageType.WARNING:
            warn, _debug = message.parse_warning()
            if self._owned_by_current_source(message.src):
                log.debug("stream %s: %s", self.label, self.display_uri.scrub(warn.message))

    # ---- consumers -------------------------------------------------------------------------

    def attach(self, consumer: Consumer) -> None:
        self.outputs.attach(consumer)

    def detach(self, consumer: Consumer, eos: bool = True) -> bool:
        """Detach `consumer` if it is attached (False otherwise); EOS first if it writes."""
        return self.outputs.detach(consumer, eos)

    def consumer(self, kind: type[C]) -> C | None:
        """The attached consumer of class `kind`, e.g. `stream.consumer(Recorder)`; any thread."""
        return self.outputs.find(kind)

    def consumers(self) -> list[Consumer]:
        """Every attached consumer (their stats are part of the stream's statistics)."""
        return self.outputs.consumers()
