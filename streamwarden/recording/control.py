"""Recording as a feature: which streams have a recorder, and starting or stopping recordings.

A stream gets its `Recorder` when it is added with `enable_recording` or a pre-event buffer
(`buffer_duration` > 0; the ring must fill before anyone asks for pre-roll), or on the first
request otherwise; the recorder then stays attached for the stream's life. Requests come
from the API (`start` / `stop`, asyncio thread), from `enable_recording` toggles, and from
inference (`record`, on the GStreamer thread, for `record_on` labels): all of them end on the
GStreamer thread, where the recorder is attached and driven.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamwarden.feature import Feature
from streamwarden.recording.recorder import Recorder, RecorderSettings, SegmentListener

if TYPE_CHECKING:
    from streamwarden.config.model import RecordingSection, StreamConfig
    from streamwarden.gst.loop import GstLoop
    from streamwarden.gst.reaper import Reaper
    from streamwarden.ingest.registry import StreamRegistry
    from streamwarden.ingest.stream import Stream
    from streamwarden.notify import Notify


class RecordingControl(Feature):
    def __init__(self, section: RecordingSection, streams: StreamRegistry, loop: GstLoop,
                 reaper: Reaper, segments: SegmentListener | None, notify: Notify):
        self.section = section
        self.path = Path(section.base_path).resolve()  # where every segment is written
        self._streams = streams
        self._loop = loop
        self._reaper = reaper
        self._segments = segments
        self._notify = notify

    # ---- feature hooks (GStreamer thread; health: any thread) ------------------------------

    def stream_added(self, stream: Stream) -> None:
        if stream.config.enable_recording or stream.settings.buffer_duration > 0:
            recorder = self.recorder(stream)
            if stream.config.enable_recording:
                recorder.start("continuous")

    def stream_changed(self, stream: Stream, previous: StreamConfig) -> None:
        if stream.config.enable_recording and not previous.enable_recording:
            self.recorder(stream).start("continuous")
        elif previous.enable_recording and not stream.config.enable_recording:
            recorder = stream.consumer(Recorder)
            if recorder is not None:
                recorder.stop()

    def health(self, stream: Stream) -> dict[str, Any]:
        recorder = stream.consumer(Recorder)
        stats = recorder.stats() if recorder is not None else {}
        return {"recording": bool(stats.get("recording")),
                "recording_error": stats.get("recording_error"),
                "recording_warning": recorder.recording_warning if recorder else None}

    # ---- GStreamer thread ------------------------------------------------------------------

    def recorder(self, stream: Stream) -> Recorder:
        """The stream's recorder, attached on first need."""
        recorder = stream.consumer(Recorder)
        if recorder is not None:
            return recorder
        rec = self.section
        recorder = Recorder(
            stream.id,
            RecorderSettings(self.path, rec.format, rec.segment_duration,
                             rec.fragment_duration, stream.settings.buffer_duration,
                             rec.min_free, rec.file_mode, rec.dir_mode),
            self._reaper, self._segments, on_event=self._notify,
        )
        stream.attach(recorder)
        return recorder

    def record(self, stream: Stream, reason: str, pre_roll: float | None = None,
               duration: float | None = None, post_roll: float | None = None) -> Recorder:
        """Start or extend a recording of `stream` (see `Recorder.start`)."""
        recorder = self.recorder(stream)
        recorder.start(reason, pre_roll, duration, post_roll)
        return recorder

    # ---- asyncio thread (the API) ----------------------------------------------------------

    async def start(self, stream_id: str, reason: str = "manual",
                    pre_roll: float | None = None, duration: float | None = None,
                    post_roll: float | None = None) -> Recorder:
        """Start or extend a recording; `StreamNotFoundError` for an unknown stream."""
        return await self._loop.run(
            lambda: self.record(self._streams.get(stream_id), reason, pre_roll, duration,
                                post_roll))

    async def stop(self, stream_id: str) -> Recorder | None:
        """Stop recording at once (None: the stream never had a recorder)."""
        def stop() -> Recorder | None:
            recorder = self._streams.get(stream_id).consumer(Recorder)
            if recorder is not None:
                recorder.stop()
            return recorder

        return await self._loop.run(stop)
