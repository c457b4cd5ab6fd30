"""The set of running streams: add, remove, look up, supervise, auto-remove.

The streams dict is only changed on the GStreamer thread (inside `GstLoop.run` calls), so
adding or removing one camera never races with another's restart. The asyncio side reads
snapshots and awaits the GStreamer thread for changes; a single 250 ms timer on the GStreamer
thread ticks every stream's supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from streamwarden.config.model import Config, SourceSettings, StreamConfig
from streamwarden.consumers.base import Consumer
from streamwarden.gst.loop import GstLoop
from streamwarden.gst.reaper import Reaper
from streamwarden.ingest.stream import Stream
from streamwarden.ingest.supervisor import Transition
from streamwarden.recording.recorder import Recorder, RecorderSettings, SegmentListener

log = logging.getLogger("streamwarden.manager")

TICK_MS = 250


class StreamExistsError(Exception):
    pass


class StreamNotFoundError(Exception):
    pass


class StreamManager:
    def __init__(self, config: Config, loop: GstLoop, reaper: Reaper,
                 segments: SegmentListener | None = None):
        self.config = config
        self.loop = loop
        self.reaper = reaper
        self.segments = segments
        self.emit: Callable[[dict], None] = lambda event: None  # thread-safe event sink
        self.restream = None  # RestreamServer, set by the service when enabled
        self.inference = None  # InferenceController, set by the service
        self.pixels = None  # SharedPixels, set by the service
        self.recording_path = Path(config.recording.base_path).resolve()
        self._streams: dict[str, Stream] = {}
        self._tick_source: int | None = None
        self._listeners: list[Callable[[Stream, Transition], None]] = []

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._tick_source = self.loop.call(self.loop.timeout_add, TICK_MS, self._tick)

    def _tick(self) -> bool:
        now = time.monotonic()
        for stream in list(self._streams.values()):
            try:
                stream.tick(now)
            except Exception:  # one stream's bug must not stop the others' supervision
                log.exception("stream %s: supervision tick failed", stream.id)
        return True

    async def close(self) -> None:
        """Stop every stream: sources first, EOS to consumers, then the pipelines."""
        streams = await self.loop.run(self._begin_close_all)
        await self._finish(streams)
        await asyncio.to_thread(self.reaper.wait_idle, 3.0)

    def _begin_close_all(self) -> list[Stream]:
        if self._tick_source is not None:
            GstLoop.source_remove(self._tick_source)
            self._tick_source = None
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream.begin_close()
        return streams

    async def _finish(self, streams: list[Stream]) -> None:
        """Wait (bounded by the drain deadline) for consumers to finish, then stop pipelines."""
        while not all(await self.loop.run(lambda: [p.drained for p in streams])):
            await asyncio.sleep(0.05)
        for stream in streams:
            await self.loop.run(stream.finish_close)
            log.info("stream %s removed", stream.id, extra={"stream_id": stream.id})
            self.emit({"type": "stream_removed", "stream_id": stream.id})

    # ---- changes ---------------------------------------------------------------------------

    def on_transition(self, listener: Callable[[Stream, Transition], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, stream: Stream, transition: Transition) -> None:
        self.emit({"type": "state", "stream_id": stream.id, "state": transition.new.value,
                   "previous_state": transition.old.value, "reason": transition.reason,
                   "retry_count": stream.supervisor.retry_count})
        for listener in self._listeners:
            listener(stream, transition)

    async def add(self, config: StreamConfig, origin: str = "config") -> Stream:
        if config.id in self._streams:
            raise StreamExistsError(config.id)
        if config.enable_inference and self.inference is not None:
            # Loading a model takes seconds and may fail (ModelError): before anything changes.
            await asyncio.to_thread(self.inference.ensure_started)
        return await self.loop.run(self._add_now, config, origin)

    def _add_now(self, config: StreamConfig, origin: str = "config") -> Stream:
        if config.id in self._streams:
            raise StreamExistsError(config.id)
        settings = config.settings(self.config.stream_defaults)
        stream = Stream(config, settings, self.reaper, origin, self._notify)
        if self.inference is not None:
            inference = self.inference
            stream.extra_health = lambda: inference.stream_health(
                stream.id, stream.config.enable_inference)
        self._streams[config.id] = stream
        shown = stream.display_uri.text
        log.info("stream %s added: %s", config.id, shown,
                 extra={"stream_id": config.id, "uri": shown})
        self.emit({"type": "stream_added", "stream_id": config.id})
        stream.start()
        if self.restream is not None and config.restream:
            self.restream.mount(config.id)
        if config.enable_recording or settings.buffer_duration > 0:
            recorder = self._recorder_for(stream)
            if config.enable_recording:
                recorder.start("continuous")
        if config.enable_inference and self.inference is not None:
            self.inference.attach(stream)
        return stream

    def recorder_for(self, stream: Stream) -> Recorder:
        """The stream's recorder (GStreamer thread); event recordings start through it."""
        return self._recorder_for(stream)

    def _recorder_for(self, stream: Stream) -> Recorder:
        """The stream's recorder, attached on first need (always, with a pre-event buffer)."""
        recorder = stream.consumer(Recorder)
        if recorder is not None:
            return recorder
        rec = self.config.recording
        settings: SourceSettings = stream.settings
        recorder = Recorder(
            stream.id,
            RecorderSettings(self.recording_path, rec.format, rec.segment_duration,
                             rec.fragment_duration, settings.buffer_duration, rec.min_free,
                             rec.file_mode, rec.dir_mode),
            self.reaper, self.segments, on_event=self.emit,
        )
        stream.attach(recorder)
        return recorder

    async def update(self, stream_id: str, changes: dict) -> Stream:
        """Apply a PATCH: recording toggles in place; a new URI or source settings restart."""
        stream = self.get(stream_id)
        merged = StreamConfig.model_validate({**stream.config.model_dump(), **changes})
        restart_keys = set(SourceSettings.model_fields) | {"uri"}
        if any(getattr(merged, k, None) != getattr(stream.config, k, None)
               for k in restart_keys):
            await self.remove(stream_id)
            return await self.add(merged, stream.origin)

        if (merged.enable_inference and not stream.config.enable_inference
                and self.inference is not None):
            await asyncio.to_thread(self.inference.ensure_started)

        def in_place() -> Stream:
            was_recording = stream.config.enable_recording
            was_inferring = stream.config.enable_inference
            stream.config = merged
            if self.inference is not None and merged.enable_inference != was_inferring:
                if merged.enable_inference:
                    self.inference.attach(stream)
                else:
                    self.inference.detach(stream)
            if merged.enable_recording and not was_recording:
                self._recorder_for(stream).start("continuous")
            elif was_recording and not merged.enable_recording:
                recorder = stream.consumer(Recorder)
                if recorder is not None:
                    recorder.stop()
            return stream

        return await self.loop.run(in_place)

    async def record_start(self, stream_id: str, reason: str = "manual",
                           pre_roll: float | None = None, duration: float | None = None,
                           post_roll: float | None = None) -> Recorder:
        """Start or extend a recording (the inference issue's triggers call this too)."""
        def start() -> Recorder:
            recorder = self._recorder_for(self.get(stream_id))
            recorder.start(reason, pre_roll, duration, post_roll)
            return recorder

        return await self.loop.run(start)

    async def record_stop(self, stream_id: str) -> Recorder | None:
        def stop() -> Recorder | None:
            recorder = self.get(stream_id).consumer(Recorder)
            if recorder is not None:
                recorder.stop()
                return recorder
            return None

        return await self.loop.run(stop)

    async def remove(self, stream_id: str) -> None:
        if stream_id not in self._streams:
            raise StreamNotFoundError(stream_id)
        stream = await self.loop.run(self._begin_remove, stream_id)
        await self._finish([stream])

    def _begin_remove(self, stream_id: str) -> Stream:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            raise StreamNotFoundError(stream_id)
        if self.restream is not None:
            self.restream.unmount(stream_id)
        stream.begin_close()
        if self.inference is not None:
            self.inference.forget(stream_id)
        if self.pixels is not None:
            self.pixels.forget(stream_id)
        return stream

    def attach(self, stream_id: str, consumer: Consumer) -> None:
        """Attach a consumer to a running stream (from a plain thread)."""
        self.loop.call(lambda: self.get(stream_id).attach(consumer))

    def detach(self, stream_id: str, consumer: Consumer) -> None:
        self.loop.call(lambda: self.get(stream_id).detach(consumer))

    # ---- reads -----------------------------------------------------------------------------

    def get(self, stream_id: str) -> Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise StreamNotFoundError(stream_id)
        return stream

    def all(self) -> list[Stream]:
        return list(self._streams.values())

    # ---- health supervision (asyncio) ------------------------------------------------------

    async def supervise(self) -> None:
        """Every `health_check_interval`: remove streams unhealthy past the threshold if asked."""
        app = self.config.app
        while True:
            await asyncio.sleep(app.health_check_interval)
            if not app.auto_remove_unhealthy:
                continue
            now = time.monotonic()
            for stream in self.all():
                unhealthy = stream.supervisor.unhealthy_for(now)
                if unhealthy >= app.removal_threshold:
                    log.warning(
                        "stream %s auto-removed: unhealthy for %.0fs (removal_threshold %gs)",
                        stream.id, unhealthy, app.removal_threshold,
                        extra={"stream_id": stream.id, "reason": "auto_remove_unhealthy"},
                    )
                    with contextlib.suppress(StreamNotFoundError):
                        await self.remove(stream.id)
