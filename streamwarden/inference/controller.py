"""Inference as a feature: which streams decode, where results go, what health says.

One controller per service. It owns the worker (`runner.InferenceRunner`) and the event log,
and claims the shared decoder (`pixels.shared`) of each stream with `enable_inference` (on
the GStreamer thread, like every consumer change). The worker starts on first need (the
`prepare` hook, on a worker thread): at start-up when a configured stream asks for inference
(so a bad model is a start-up error naming the file), otherwise when the API enables it (a
bad model is then an API error and nothing else changes). A `record_on` label asks the
recording feature for an event recording; the controller never holds the stream manager.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from streamwarden.config.model import Config
from streamwarden.db import Database
from streamwarden.feature import Feature
from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.factory import DetectorSpec
from streamwarden.inference.event_log import EventLog
from streamwarden.inference.runner import FrameResult, InferenceRunner
from streamwarden.pixels.decoder import PixelConsumer, slot_capacity
from streamwarden.pixels.shared import SharedPixels

if TYPE_CHECKING:
    from streamwarden.config.model import StreamConfig
    from streamwarden.gst.loop import GstLoop
    from streamwarden.ingest.registry import StreamRegistry
    from streamwarden.ingest.stream import Stream
    from streamwarden.notify import Notify
    from streamwarden.recording.control import RecordingControl

log = logging.getLogger("streamwarden.inference")


class InferenceController(Feature):
    def __init__(self, config: Config, db: Database, publish: Notify, pixels: SharedPixels,
                 recording: RecordingControl, streams: StreamRegistry, loop: GstLoop):
        self.section = config.inference
        self.pixels = pixels
        self._recording = recording
        self._streams = streams
        self._loop = loop
        section = self.section
        self.warnings: list[str] = []
        if section.backend == "nvidia" and section.config_path:
            if not _deepstream_installed():
                self.warnings.append(
                    f"backend 'nvidia' with config_path {section.config_path}: DeepStream "
                    "(nvinfer) is not installed; ONNX Runtime runs the model instead")
            else:
                self.warnings.append(
                    "DeepStream's nvinfer is installed, but this build drives models through "
                    "ONNX Runtime (CUDA/TensorRT providers); config_path is not used")
        for warning in self.warnings:
            log.warning("inference: %s", warning)
        self.runner = InferenceRunner(
            DetectorSpec.from_config(section),
            batch_size=section.batch_size,
            deadline=section.worker_deadline, memory_limit=section.worker_memory_limit,
            motion_gate=section.motion_gate, on_result=self._on_result)
        self.events = EventLog(
            db, model_name=lambda: self.runner.model.get("model") or "?",
            event_gap=section.event_gap, classes=section.kept_classes(),
            record_on=section.record_on, frame_lookup=self._frame, publish=publish,
            record=self._record)

    # ---- lifecycle (plain threads) ---------------------------------------------------------

    def ensure_started(self) -> None:
        """Load the model in the worker (blocking); raises `ModelError` for a bad model."""
        self.runner.ensure_started()

    def close(self) -> None:
        self.runner.close()

    # ---- feature hooks ---------------------------------------------------------------------

    def prepare(self, config: StreamConfig, previous: StreamConfig | None) -> None:
        """Worker thread: load the model before a stream starts to need it."""
        if config.enable_inference and (previous is None or not previous.enable_inference):
            self.ensure_started()

    def stream_added(self, stream: Stream) -> None:
        if stream.config.enable_inference:
            self.attach(stream)

    def stream_changed(self, stream: Stream, previous: StreamConfig) -> None:
        enabled = stream.config.enable_inference
        if enabled and not previous.enable_inference:
            self.attach(stream)
        elif previous.enable_inference and not enabled:
            self.detach(stream)

    def stream_removed(self, stream: Stream) -> None:
        self.forget(stream.id)

    def health(self, stream: Stream) -> dict[str, Any]:
        return self.stream_health(stream.id, stream.config.enable_inference)

    # ---- streams (GStreamer thread) --------------------------------------------------------

    def attach(self, stream: Stream) -> None:
        slot = self.runner.open_stream(stream.id, slot_capacity(self.pixels.width))
        consumer = self.pixels.acquire(stream, "inference", self.section.fps)
        consumer.feed(slot, self.runner.frame_written, self.section.fps)

    def detach(self, stream: Stream) -> None:
        consumer = stream.consumer(PixelConsumer)
        if consumer is not None:
            consumer.feed(None, None)
        self.pixels.release(stream, "inference")
        self.runner.close_stream(stream.id)
        # Open events stay open: turned back on within `event_gap`, the same event goes on.
        self.events.clear_latest(stream.id)

    def forget(self, stream_id: str) -> None:
        self.runner.close_stream(stream_id)
        self.events.forget(stream_id)

    # ---- results (monitor thread) ----------------------------------------------------------

    def _on_result(self, result: FrameResult) -> None:
        self.events.handle(result)

    def _record(self, stream_id: str) -> None:
        """A `record_on` label was seen: start or extend the stream's event recording."""
        section = self.section

        def start() -> None:
            stream = self._streams.find(stream_id)
            if stream is None:
                return  # removed meanwhile
            pre_roll = (section.pre_roll if section.pre_roll is not None
                        else stream.settings.buffer_duration)
            self._recording.record(stream, "event", pre_roll, None, section.post_roll)

        self._loop.submit(start)

    def _frame(self, stream_id: str, seq: int) -> np.ndarray | None:
        pixels = self._pixels(stream_id)
        found = pixels.frame(seq) if pixels is not None else None
        return found[1] if found is not None else None

    def _pixels(self, stream_id: str) -> PixelConsumer | None:
        stream = self._streams.find(stream_id)
        return stream.consumer(PixelConsumer) if stream is not None else None

    # ---- reads (any thread) ----------------------------------------------------------------

    def latest_frame(self, stream_id: str) -> tuple[np.ndarray, list[Detection]] | None:
        """The newest decoded frame and the newest detections, for live snapshots."""
        pixels = self._pixels(stream_id)
        found = pixels.frame() if pixels is not None else None
        if found is None:
            return None
        return found[1], self.events.latest(stream_id)

    def stream_health(self, stream_id: str, enabled: bool) -> dict[str, Any]:
        if not enabled:
            return {"inference_state": None, "inference": None}
        stats = self.runner.stream_stats(stream_id) or {}
        pixels = self._pixels(stream_id)
        if pixels is not None:
            decoder = pixels.stats()
            stats = {**stats, "decoded": decoder["frames_decoded"],
                     "keyframes_only": decoder["keyframes_only"]}
        return {"inference_state": self.runner.state,
                "inference": {**stats, "restarts": self.runner.restarts}}

    def status(self) -> dict[str, Any]:
        status = self.runner.status()
        warnings = [*self.warnings, *([status["warning"]] if status.get("warning") else [])]
        return {**status, "warnings": warnings, "fps": self.section.fps,
                "batch_size": self.section.batch_size, "motion_gate": self.section.motion_gate,
                "record_on": list(self.section.record_on), **self.events.stats()}


def _deepstream_installed() -> bool:
    """Asked only for the nvidia backend, so nothing else here loads GStreamer."""
    from streamwarden.gst.init import has_element

    return has_element("nvinfer")
