"""The set of running streams: add, change, remove, supervise, auto-remove.

Streams live in the `StreamRegistry`, changed only here and only on the GStreamer thread
(inside `GstLoop.run` calls), so adding or removing one camera never races with another's
restart. The asyncio side reads snapshots and awaits the GStreamer thread for changes; a
single 250 ms timer on the GStreamer thread ticks every stream's supervisor.

What streams can do besides ingesting (recording, restream, live view, inference) comes in
as `Feature` objects at construction; the manager calls their hooks as streams come, change
and go (see feature.py for which hook runs on which thread) and knows none of them by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from streamwarden.config.diff import RESTART_KEYS
from streamwarden.config.model import Config, StreamConfig
from streamwarden.consumers.base import Consumer
from streamwarden.feature import Feature
from streamwarden.gst.loop import GstLoop
from streamwarden.gst.reaper import Reaper
from streamwarden.ingest.registry import StreamExistsError, StreamNotFoundError, StreamRegistry
from streamwarden.ingest.stream import Stream
from streamwarden.ingest.supervisor import Transition
from streamwarden.notify import Notify

log = logging.getLogger("streamwarden.manager")

TICK_MS = 250

__all__ = ["StreamExistsError", "StreamManager", "StreamNotFoundError"]


def _transition_reporter(notify: Notify,
                         features: Sequence[Feature]) -> Callable[[Stream, Transition], None]:
    def report(stream: Stream, transition: Transition) -> None:
        notify({"type": "state", "stream_id": stream.id, "state": transition.new.value,
                "previous_state": transition.old.value, "reason": transition.reason,
                "retry_count": stream.supervisor.retry_count})
        for feature in features:
            try:
                feature.state_changed(stream, transition)
            except Exception:  # one feature's bug must not stop supervision
                log.exception("stream %s: %s failed on a state change", stream.id,
                              type(feature).__name__)

    return report


class StreamManager:
    def __init__(self, config: Config, loop: GstLoop, reaper: Reaper, streams: StreamRegistry,
                 features: Sequence[Feature] = (), notify: Notify = lambda message: None):
        self.config = config
        self.loop = loop
        self.reaper = reaper
        self.streams = streams
        self.features = tuple(features)  # hooks run in this order
        self._notify = notify  # thread-safe: stream_added / stream_removed / state
        # Each stream reports its state changes through this; it holds `notify` and the
        # features only, so a stream (which features can reach through the registry) never
        # leads to the manager.
        self._report_transition = _transition_reporter(notify, self.features)
        self._tick_source: int | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._tick_source = self.loop.call(self.loop.timeout_add, TICK_MS, self._tick)

    def _tick(self) -> bool:
        now = time.monotonic()
        for stream in self.streams.all():
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
        streams = self.streams.clear()
        for stream in streams:
            stream.begin_close()
        return streams

    async def _finish(self, streams: list[Stream]) -> None:
        """Wait (bounded by the drain deadline) for consumers to finish, then stop pipelines."""
        while not all(await self.loop.run(lambda: [s.drained for s in streams])):
            await asyncio.sleep(0.05)
        for stream in streams:
            await self.loop.run(stream.finish_close)
            log.info("stream %s removed", stream.id, extra={"stream_id": stream.id})
            self._notify({"type": "stream_removed", "stream_id": stream.id})

    # ---- changes ---------------------------------------------------------------------------

    def _prepare(self, config: StreamConfig, previous: StreamConfig | None) -> None:
        """Worker thread: every feature's `prepare`, before anything changes."""
        for feature in self.features:
            feature.prepare(config, previous)

    async def add(self, config: StreamConfig, origin: str = "config") -> Stream:
        """Start a stream; a feature's `prepare` may refuse it first (e.g. `ModelError`)."""
        if config.id in self.streams:
            raise StreamExistsError(config.id)
        await asyncio.to_thread(self._prepare, config, None)
        return await self.loop.run(self._add_now, config, origin)

    def _add_now(self, config: StreamConfig, origin: str) -> Stream:
        if config.id in self.streams:  # another add came first; build no pipeline for it
            raise StreamExistsError(config.id)
        settings = config.settings(self.config.stream_defaults)
        stream = Stream(config, settings, self.reaper, origin, self._report_transition)
        self.streams.add(stream)
        shown = stream.display_uri.text
        log.info("stream %s added: %s", config.id, shown,
                 extra={"stream_id": config.id, "uri": shown})
        self._notify({"type": "stream_added", "stream_id": config.id})
        stream.start()
        for feature in self.features:
            feature.stream_added(stream)
        return stream

    async def update(self, stream_id: str, changes: dict) -> Stream:
        """Apply a PATCH: recording and inference toggle in place; a new URI or source
        settings restart the stream (removed, then added again with the same origin)."""
        stream = self.get(stream_id)
        merged = StreamConfig.model_validate({**stream.config.model_dump(), **changes})
        if any(getattr(merged, k, None) != getattr(stream.config, k, None)
               for k in RESTART_KEYS):
            return await self.replace(merged, stream.origin)
        return await self.change(stream_id, merged)

    async def change(self, stream_id: str, config: StreamConfig) -> Stream:
        """Give a running stream a new config in place (its source is not touched): the
        features' `stream_changed` turn recording, inference, restream on or off."""
        stream = self.get(stream_id)
        await asyncio.to_thread(self._prepare, config, stream.config)

        def in_place() -> Stream:
            previous = stream.reconfigure(config)
            for feature in self.features:
                feature.stream_changed(stream, previous)
            return stream

        return await self.loop.run(in_place)

    async def replace(self, config: StreamConfig, origin: str) -> Stream:
        """Rebuild the stream running under `config.id` from `config` (a restart: removed,
        then added). The features' `prepare` runs first, so a refusal changes nothing."""
        self.get(config.id)  # StreamNotFoundError before anything is prepared
        await asyncio.to_thread(self._prepare, config, None)
        await self.remove(config.id)
        return await self.loop.run(self._add_now, config, origin)

    async def remove(self, stream_id: str) -> None:
        if stream_id not in self.streams:
            raise StreamNotFoundError(stream_id)
        stream = await self.loop.run(self._begin_remove, stream_id)
        await self._finish([stream])

    def _begin_remove(self, stream_id: str) -> Stream:
        stream = self.streams.pop(stream_id)  # raises StreamNotFoundError
        stream.begin_close()
        for feature in self.features:
            feature.stream_removed(stream)
        return stream

    def attach(self, stream_id: str, consumer: Consumer) -> None:
        """Attach a consumer to a running stream (from a plain thread)."""
        self.loop.call(lambda: self.get(stream_id).attach(consumer))

    def detach(self, stream_id: str, consumer: Consumer) -> None:
        self.loop.call(lambda: self.get(stream_id).detach(consumer))

    # ---- reads (any thread) ----------------------------------------------------------------

    def get(self, stream_id: str) -> Stream:
        return self.streams.get(stream_id)

    def all(self) -> list[Stream]:
        return self.streams.all()

    # ---- health supervision (asyncio) ------------------------------------------------------

    async def supervise(self) -> None:
        """Every `health_check_interval`: remove streams unhealthy past the threshold if asked."""
        while True:
            await asyncio.sleep(self.config.app.health_check_interval)
            app = self.config.app  # read each time: a config reload may change it
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
