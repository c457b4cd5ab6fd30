"""`GET /metrics`: Prometheus text format, computed from live snapshots at scrape time.

Nothing is counted twice: the collector reads the same counters the API shows (producer
counters, recorder stats), so a scrape costs one pass over the streams and nothing when no
one scrapes. Process CPU and memory come from prometheus_client's process collector.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streamwarden.api.views import stream_health, stream_statistics

if TYPE_CHECKING:
    from streamwarden.service import Service

STATES = ("starting", "streaming", "retrying", "failed")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StreamCollector(Collector):
    def __init__(self, service: Service):
        self.service = service

    def collect(self) -> Iterator:
        labels = ["stream"]
        frames = CounterMetricFamily("streamwarden_stream_frames", "Video frames received",
                                     labels=labels)
        keyframes = CounterMetricFamily("streamwarden_stream_keyframes",
                                        "Video keyframes received", labels=labels)
        received = CounterMetricFamily("streamwarden_stream_bytes",
                                       "Encoded bytes received", labels=labels)
        retries = CounterMetricFamily("streamwarden_stream_retries",
                                      "Source restarts", labels=labels)
        fps = GaugeMetricFamily("streamwarden_stream_fps", "Frames per second", labels=labels)
        bitrate = GaugeMetricFamily("streamwarden_stream_bitrate_kbps", "Bitrate in kbit/s",
                                    labels=labels)
        age = GaugeMetricFamily("streamwarden_stream_last_frame_age_seconds",
                                "Seconds since the last frame", labels=labels)
        healthy = GaugeMetricFamily("streamwarden_stream_healthy", "1 if healthy",
                                    labels=labels)
        state = GaugeMetricFamily("streamwarden_stream_state", "1 for the current state",
                                  labels=["stream", "state"])
        recording = GaugeMetricFamily("streamwarden_recording_active", "1 while recording",
                                      labels=labels)
        rec_bytes = CounterMetricFamily("streamwarden_recording_bytes",
                                        "Bytes in closed segments", labels=labels)
        segments = CounterMetricFamily("streamwarden_recording_segments",
                                       "Segments opened", labels=labels)
        dropped = CounterMetricFamily("streamwarden_recording_dropped_frames",
                                      "Frames a recording session could not take",
                                      labels=labels)
        lost = CounterMetricFamily("streamwarden_recording_lost_seconds",
                                   "Seconds a stream was to be recorded but was not, by reason "
                                   "(disk_full, write_error)", labels=["stream", "reason"])
        viewers = GaugeMetricFamily("streamwarden_live_viewers",
                                    "Browsers watching the live view", labels=labels)
        for producer in self.service.manager.all():
            sid = producer.id
            health = stream_health(producer, self.service.manager.features)
            stats = stream_statistics(producer)
            frames.add_metric([sid], stats["frames"])
            keyframes.add_metric([sid], stats["keyframes"])
            received.add_metric([sid], stats["bytes"])
            retries.add_metric([sid], health["retry_count"])
            fps.add_metric([sid], health["fps"])
            bitrate.add_metric([sid], health["bitrate_kbps"])
            if health["last_frame_age_s"] is not None:
                age.add_metric([sid], health["last_frame_age_s"])
            healthy.add_metric([sid], 1 if health["is_healthy"] else 0)
            for name in STATES:
                state.add_metric([sid, name], 1 if health["state"] == name else 0)
            recording.add_metric([sid], 1 if health["recording"] else 0)
            viewers.add_metric([sid], health["live_viewers"])
            recorder = next((c for c in stats["consumers"] if c["kind"] == "recorder"), None)
            if recorder is not None:
                rec_bytes.add_metric([sid], recorder["bytes_written"])
                segments.add_metric([sid], recorder["segments"])
                dropped.add_metric([sid], recorder.get("dropped_frames", 0))
                lost_by_reason = {"disk_full": 0.0, "write_error": 0.0,
                                  **recorder.get("lost_seconds", {})}
                for reason, seconds in lost_by_reason.items():
                    lost.add_metric([sid, reason], seconds)
        yield from (frames, keyframes, received, retries, fps, bitrate, age, healthy, state,
                    recording, rec_bytes, segments, dropped, lost, viewers)
        path = self.service.recording.path
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        disk = GaugeMetricFamily("streamwarden_recording_disk_free_bytes",
                                 "Free bytes on the recording volume")
        disk.add_metric([], shutil.disk_usage(probe).free)
        yield disk
        count = GaugeMetricFamily("streamwarden_streams", "Streams configured")
        count.add_metric([], len(self.service.manager.all()))
        yield count
        stuck = CounterMetricFamily("streamwarden_stuck_disposals",
                                    "Detached elements whose shutdown blocked past 5 s")
        stuck.add_metric([], self.service.reaper.stuck)
        yield stuck
        yield from self._inference()
        hub = self.service.notifier
        ws_dropped = CounterMetricFamily("streamwarden_ws_clients_dropped",
                                         "WebSocket clients dropped for not keeping up")
        ws_dropped.add_metric([], hub.clients_dropped)
        yield ws_dropped
        bridge = self.service.mqtt
        if bridge is not None:
            published = CounterMetricFamily("streamwarden_mqtt_published",
                                            "MQTT messages handed to the client")
            published.add_metric([], bridge.published)
            dropped = CounterMetricFamily("streamwarden_mqtt_dropped",
                                          "MQTT messages dropped (buffer full)")
            dropped.add_metric([], bridge.dropped)
            connected = GaugeMetricFamily("streamwarden_mqtt_connected", "1 if connected")
            connected.add_metric([], 1 if bridge.connected else 0)
            yield from (published, dropped, connected)


    def _inference(self) -> Iterator:
        labels = ["stream"]
        calls = CounterMetricFamily("streamwarden_inference_model_calls",
                                    "Model calls for the stream's frames", labels=labels)
        seen = CounterMetricFamily("streamwarden_inference_frames_seen",
                                   "Frames the worker looked at (model or motion gate)",
                                   labels=labels)
        dropped = CounterMetricFamily("streamwarden_inference_frames_dropped",
                                      "Decoded frames replaced by newer ones before the worker "
                                      "took them", labels=labels)
        found = CounterMetricFamily("streamwarden_inference_detections", "Detections",
                                    labels=labels)
        latency = GaugeMetricFamily("streamwarden_inference_latency_p95_seconds",
                                    "Model call latency, 95th percentile", labels=labels)
        inference = self.service.inference
        for producer in self.service.manager.all():
            stats = inference.runner.stream_stats(producer.id)
            if stats is None:
                continue
            sid = [producer.id]
            calls.add_metric(sid, stats["model_calls"])
            seen.add_metric(sid, stats["frames_seen"])
            dropped.add_metric(sid, stats["frames_dropped"])
            found.add_metric(sid, stats["detections"])
            if stats["latency_ms_p95"] is not None:
                latency.add_metric(sid, stats["latency_ms_p95"] / 1000)
        restarts = CounterMetricFamily("streamwarden_inference_worker_restarts",
                                       "Inference worker restarts (crash, deadline, memory)")
        restarts.add_metric([], inference.runner.restarts)
        running = GaugeMetricFamily("streamwarden_inference_worker_running",
                                    "1 while the inference worker is running")
        running.add_metric([], 1 if inference.runner.state == "running" else 0)
        yield from (calls, seen, dropped, found, latency, restarts, running)


def make_registry(service: Service) -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(StreamCollector(service))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
