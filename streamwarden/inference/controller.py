"""Inference as a feature: which streams decode, where results go, what health says.

One controller per service. It owns the worker (`runner.InferenceRunner`) and the event log,
and claims the shared decoder (`pixels.shared`) of each stream with `enable_inference` (on
the GStreamer thread, like every consumer change). The worker starts on first need (the
`prepare` hook, on a worker thread): at start-up when a configured stream asks for inference
(so a bad model is a start-up error naming the file), otherwise when the API enables it (a
bad model is then an API error and nothing else changes). A `record_on` match asks the
recording feature for an event recording; the controller never holds the stream manager.
A stream's zones, masks and record_on reach the event log and the worker's motion gate when
it is added and whenever they change (in place: the camera is not restarted).

A stream with a `detect_uri` is decoded from its sub-stream (the decoder hangs on
`stream.pixel_source`); results are mapped into the main stream's coordinates here, as they
arrive, before anything stores or publishes them (media/geometry.py), and pictures are put
in the main stream's geometry (pixels/place.py), so every box anyone sees fits the main
stream. The activity gate (`[inference] activity_gate`) is set on the decoder on attach.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from streamwarden.config.model import Config
from streamwarden.db import Database
from streamwarden.feature import Feature
from streamwarden.inference import tracker
from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.factory import DetectorSpec
from streamwarden.inference.event_log import EventLog
from streamwarden.inference.runner import FrameResult, InferenceRunner
from streamwarden.inference.zones import Scene
from streamwarden.media.geometry import Region, region, to_main
from streamwarden.pixels.decoder import PixelConsumer, slot_capacity
from streamwarden.pixels.place import place
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
            motion_gate=section.motion_gated, on_result=self._on_result)
        self.events = EventLog(
            db, model_name=lambda: self.runner.model.get("model") or "?",
            event_gap=section.event_gap, classes=section.kept_classes(),
            record_on=section.record_on, frame_lookup=self._frame, publish=publish,
            record=self._record, fps=section.fps, stationary_after=section.stationary_after,
            stationary_timeout=section.stationary_timeout,
            event_score=section.effective_event_score())

    # ---- lifecycle (plain threads) ---------------------------------------------------------

    def ensure_started(self) -> None:
        """Load the model in the worker (blocking); raises `ModelError` for a bad model."""
        self.runner.ensure_started()
        tracker.warm_up()

    def close(self) -> None:
        self.runner.close()

    # ---- feature hooks ---------------------------------------------------------------------

    def prepare(self, config: StreamConfig, previous: StreamConfig | None) -> None:
        """Worker thread: load the model before a stream starts to need it."""
        if config.enable_inference and (previous is None or not previous.enable_inference):
            self.ensure_started()

    def stream_added(self, stream: Stream) -> None:
        self.configure(stream.id, stream.config)
        if stream.config.enable_inference:
            self.attach(stream)

    def stream_changed(self, stream: Stream, previous: StreamConfig) -> None:
        config = stream.config
        if (config.zones, config.masks, config.record_on) != (
                previous.zones, previous.masks, previous.record_on):
            self.configure(stream.id, config)
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

    def configure(self, stream_id: str, config: StreamConfig) -> None:
        """Zones, masks and record_on to the event log; masks to the worker's motion gate."""
        scene = Scene([(zone.name, zone.points) for zone in config.zones], config.masks)
        self.events.configure(stream_id, scene, config.record_on)
        self.runner.set_mask(stream_id, _mask(config))

    def attach(self, stream: Stream) -> None:
        slot = self.runner.open_stream(stream.id, slot_capacity(self.pixels.width),
                                       _mask(stream.config))
        consumer = self.pixels.acquire(stream, "inference", self.section.fps)
        consumer.feed(slot, self.runner.frame_written, self.section.fps)
        consumer.set_activity(self.section.activity_settings(),
                              functools.partial(self._unchanged, stream.id))

    def _unchanged(self, stream_id: str) -> None:
        """The decoder left an idle keyframe undecoded (the same still picture): for the
        tracked objects that is a frame the motion gate skipped, so none of them ends. On the
        camera's thread: noted only, applied by the event log's next `expire`."""
        self.events.unchanged(stream_id, time.time())

    def detach(self, stream: Stream) -> None:
        consumer = self.pixels.consumer(stream)
        if consumer is not None:
            consumer.feed(None, None)
            consumer.set_activity(None)
        self.pixels.release(stream, "inference")
        self.runner.close_stream(stream.id)
        # Open events stay open: turned back on within `event_gap`, the same event goes on;
        # otherwise `EventLog.expire` ends them `event_gap` after the stream's last result.
        self.events.clear_latest(stream.id)

    def forget(self, stream_id: str) -> None:
        self.runner.close_stream(stream_id)
        self.events.forget(stream_id)

    # ---- results (monitor thread) ----------------------------------------------------------

    def _on_result(self, result: FrameResult) -> None:
        if self._placement_unknown(result.stream_id):
            return  # a sub-stream's boxes cannot be placed before the main stream's size is
            # known (its first caps, at start-up): dropped rather than reported in the wrong
            # place (an event's box, its zones)
        where = self._region(result.stream_id)
        if not where.whole and result.detections:
            result = dataclasses.replace(result, detections=[
                Detection(d.label, d.confidence, to_main(d.box, where))
                for d in result.detections])
        self.events.handle(result)

    def _placement_unknown(self, stream_id: str) -> bool:
        """A cropped sub-stream of which either stream has not said its size yet."""
        stream = self._streams.find(stream_id)
        if stream is None or stream.detect is None or stream.config.detect_fit == "stretch":
            return False
        sizes = (stream.media.width, stream.media.height, stream.detect.media.width,
                 stream.detect.media.height)
        return None in sizes

    def _region(self, stream_id: str) -> Region:
        """Where the decoded picture lies in the main stream's (the whole, normalised)."""
        stream = self._streams.find(stream_id)
        detect = stream.detect if stream is not None else None
        if stream is None or detect is None:
            return Region()
        sub = (detect.media.width, detect.media.height)
        main = (stream.media.width, stream.media.height)
        if None in sub or None in main:
            return Region()
        return region(sub, main, stream.config.detect_fit)  # type: ignore[arg-type]

    def placed(self, stream: Stream, frame: np.ndarray) -> np.ndarray:
        """A decoded picture in the main stream's geometry (what boxes are drawn on)."""
        if stream.detect is None:
            return frame
        main = stream.media.width, stream.media.height
        if None in main:
            return frame
        return place(frame, main, self._region(stream.id))  # type: ignore[arg-type]

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
        stream = self._streams.find(stream_id)
        if found is None or stream is None:
            return None
        return self.placed(stream, found[1])

    def _pixels(self, stream_id: str) -> PixelConsumer | None:
        stream = self._streams.find(stream_id)
        return self.pixels.consumer(stream) if stream is not None else None

    # ---- reads (any thread) ----------------------------------------------------------------

    def latest_frame(self, stream_id: str) -> tuple[np.ndarray, list[Detection]] | None:
        """The newest decoded frame and the newest detections, for live snapshots."""
        pixels = self._pixels(stream_id)
        found = pixels.frame() if pixels is not None else None
        stream = self._streams.find(stream_id)
        if found is None or stream is None:
            return None
        return self.placed(stream, found[1]), self.events.latest(stream_id)

    def stream_health(self, stream_id: str, enabled: bool) -> dict[str, Any]:
        if not enabled:
            return {"inference_state": None, "inference": None}
        stats = self.runner.stream_stats(stream_id) or {}
        pixels = self._pixels(stream_id)
        if pixels is not None:
            decoder = pixels.stats()
            stats = {**stats, "decoded": decoder["frames_decoded"],
                     "keyframes_only": decoder["keyframes_only"],
                     "activity": decoder["activity"], "frames_gated": decoder["frames_gated"]}
        return {"inference_state": self.runner.state,
                "inference": {**stats, "restarts": self.runner.restarts}}

    def status(self) -> dict[str, Any]:
        status = self.runner.status()
        warnings = [*self.warnings, *([status["warning"]] if status.get("warning") else [])]
        return {**status, "warnings": warnings, "fps": self.section.fps,
                "batch_size": self.section.batch_size, "motion_gate": self.section.motion_gated,
                "activity_gate": self.section.activity_gate,
                "record_on": list(self.section.record_on), **self.events.stats()}


def _mask(config: StreamConfig) -> list[list[tuple[float, float]]]:
    return [list(points) for points in config.masks]


def _deepstream_installed() -> bool:
    """Asked only for the nvidia backend, so nothing else here loads GStreamer."""
    from streamwarden.gst.init import has_element

    return has_element("nvinfer")
