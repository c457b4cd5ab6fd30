"""`GET /metrics`: Prometheus text format, computed from live snapshots at scrape time.

Nothing is counted twice: the collector reads the same counters the API shows (stream
counters, recorder stats), so a scrape costs one pass over the streams and nothing when no
one scrapes. Process CPU and memory come from prometheus_client's process collector.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streamwarden.api.views import stream_health, stream_statistics
from streamwarden.hooks.runner import FAILURE_REASONS
from streamwarden.hooks.triggers import HOOK_NAMES
from streamwarden.recording.timeline import LOSSES

if TYPE_CHECKING:
    from streamwarden.heap import Heap
    from streamwarden.hooks.runner import HookRunner
    from streamwarden.hooks.webhooks import Webhooks
    from streamwarden.service import Service

STATES = ("starting", "streaming", "retrying", "failed")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


Metric = CounterMetricFamily | GaugeMetricFamily


def _counter(name: str, doc: str, labels: tuple[str, ...] = ("stream",)) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ("stream",)) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _stream_families() -> dict[str, Metric]:
    """The per-stream families, in the order a scrape lists them."""
    return {
        "frames": _counter("streamwarden_stream_frames", "Video frames received"),
        "keyframes": _counter("streamwarden_stream_keyframes", "Video keyframes received"),
        "bytes": _counter("streamwarden_stream_bytes", "Encoded bytes received"),
        "retries": _counter("streamwarden_stream_retries", "Source restarts"),
        "damaged": _counter("streamwarden_stream_damaged_frames",
                            "Video frames that follow lost data (decode with errors)"),
        "lost_packets": _counter("streamwarden_stream_lost_packets",
                                 "RTP packets that never arrived"),
        "jumps": _counter("streamwarden_stream_discontinuities",
                          "Jumps of the camera's clock (timestamps), carried across"),
        "fps": _gauge("streamwarden_stream_fps", "Frames per second"),
        "bitrate": _gauge("streamwarden_stream_bitrate_kbps", "Bitrate in kbit/s"),
        "age": _gauge("streamwarden_stream_last_frame_age_seconds",
                      "Seconds since the last frame"),
        "healthy": _gauge("streamwarden_stream_healthy", "1 if healthy"),
        "state": _gauge("streamwarden_stream_state", "1 for the current state",
                        labels=("stream", "state")),
        "recording": _gauge("streamwarden_recording_active", "1 while recording"),
        "rec_bytes": _counter("streamwarden_recording_bytes", "Bytes in closed segments"),
        "segments": _counter("streamwarden_recording_segments", "Segments opened"),
        "dropped": _counter("streamwarden_recording_dropped_frames",
                            "Frames a recording session could not take"),
        "lost": _counter("streamwarden_recording_lost_seconds",
                         "Seconds a stream was to be recorded but was not, by reason "
                         "(camera_offline, discontinuity, disk_full, write_error, "
                         "service_not_running)", labels=("stream", "reason")),
        "viewers": _gauge("streamwarden_live_viewers", "Browsers watching the live view"),
        "detect_healthy": _gauge("streamwarden_detect_source_healthy",
                                 "1 if the detection sub-stream (detect_uri) is healthy"),
        "detect_retries": _counter("streamwarden_detect_source_retries",
                                   "Detection sub-stream restarts"),
        "detect_fps": _gauge("streamwarden_detect_source_fps", "Sub-stream frames per second"),
        "activity": _gauge("streamwarden_inference_activity",
                           "1 while the activity gate sees movement, 0 while idle"),
        "decoded": _counter("streamwarden_inference_decoded_frames",
                            "Frames the stream's decoder decoded"),
        "gated": _counter("streamwarden_inference_gated_frames",
                          "Delta frames the activity gate kept from the decoder"),
    }


def _add_stream(families: dict[str, Metric], sid: str, health: dict, stats: dict,
                lost: dict[str, float]) -> None:
    """One stream's samples, from the same health and statistics dicts the API shows, and
    the seconds lost that the timeline counts (`lost`: camera_offline, ...)."""
    families["frames"].add_metric([sid], stats["frames"])
    families["keyframes"].add_metric([sid], stats["keyframes"])
    families["bytes"].add_metric([sid], stats["bytes"])
    families["retries"].add_metric([sid], health["retry_count"])
    families["damaged"].add_metric([sid], stats["damaged_frames"])
    families["lost_packets"].add_metric([sid], stats["lost_packets"])
    families["jumps"].add_metric([sid], stats["discontinuities"])
    families["fps"].add_metric([sid], health["fps"])
    families["bitrate"].add_metric([sid], health["bitrate_kbps"])
    if health["last_frame_age_s"] is not None:
        families["age"].add_metric([sid], health["last_frame_age_s"])
    families["healthy"].add_metric([sid], 1 if health["is_healthy"] else 0)
    for name in STATES:
        families["state"].add_metric([sid, name], 1 if health["state"] == name else 0)
    families["recording"].add_metric([sid], 1 if health["recording"] else 0)
    families["viewers"].add_metric([sid], health["live_viewers"])
    recorder = next((c for c in stats["consumers"] if c["kind"] == "recorder"), None)
    if recorder is not None:
        _add_recorder(families, sid, recorder, lost)
    _add_detection(families, sid, health, stats)


def _add_detection(families: dict[str, Metric], sid: str, health: dict, stats: dict) -> None:
    """The sub-stream's connection and the decoder's activity gate, where they exist."""
    detect = health.get("detect_source")
    if detect is not None:
        families["detect_healthy"].add_metric([sid], 1 if detect["is_healthy"] else 0)
        families["detect_retries"].add_metric([sid], detect["reconnects"])
        families["detect_fps"].add_metric([sid], detect["fps"])
    consumers = [*stats["consumers"], *(stats.get("detect_source") or {}).get("consumers", [])]
    pixels = next((c for c in consumers if c["kind"] == "pixels"), None)
    if pixels is None:
        return
    families["decoded"].add_metric([sid], pixels["frames_decoded"])
    if pixels.get("activity") is not None:
        families["activity"].add_metric([sid], 1 if pixels["activity"] == "active" else 0)
        families["gated"].add_metric([sid], pixels["frames_gated"])


def _add_recorder(families: dict[str, Metric], sid: str, recorder: dict,
                  lost: dict[str, float]) -> None:
    families["rec_bytes"].add_metric([sid], recorder["bytes_written"])
    families["segments"].add_metric([sid], recorder["segments"])
    families["dropped"].add_metric([sid], recorder.get("dropped_frames", 0))
    # Each reason from one counter only: the recorder's outages, the timeline's others.
    lost_by_reason = {reason: 0.0 for reason in LOSSES}
    lost_by_reason.update(lost)
    lost_by_reason.update(recorder.get("lost_seconds", {}))
    for reason, seconds in lost_by_reason.items():
        families["lost"].add_metric([sid, reason], seconds)


def _free_bytes(path: Path) -> int:
    """Free space of the volume the recordings go to (its nearest existing directory: the
    recordings directory itself may not exist yet)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _heap_families(heap: Heap) -> list[Metric]:
    """malloc's bytes in use and held free, and what the periodic trims gave back (heap.py):
    a climbing RSS with flat `in_use` is free memory kept by malloc, not a leak."""
    trimmed = CounterMetricFamily("streamwarden_memory_trimmed_bytes",
                                  "RSS given back to the system by the periodic malloc_trim")
    trimmed.add_metric([], heap.released)
    usage = heap.usage()
    if usage is None:
        return [trimmed]
    held = GaugeMetricFamily("streamwarden_malloc_bytes",
                             "C heap bytes by state: in use, or freed and kept by malloc",
                             labels=["state"])
    held.add_metric(["in_use"], usage.in_use)
    held.add_metric(["free"], usage.free)
    return [trimmed, held]


class StreamCollector(Collector):
    def __init__(self, service: Service):
        self.service = service

    def collect(self) -> Iterator[Metric]:
        yield from self._streams()
        yield from self._service()
        yield from self._inference()
        yield from self._clients()
        yield from _hook_families(self.service.hooks)
        yield from _webhook_families(self.service.webhooks)

    def _streams(self) -> Iterator[Metric]:
        families = _stream_families()
        features = self.service.manager.features
        lost = self.service.timeline.lost_seconds
        for stream in self.service.manager.all():
            _add_stream(families, stream.id, stream_health(stream, features),
                        stream_statistics(stream), lost(stream.id))
        yield from families.values()

    def _service(self) -> Iterator[Metric]:
        disk = GaugeMetricFamily("streamwarden_recording_disk_free_bytes",
                                 "Free bytes on the recording volume")
        disk.add_metric([], _free_bytes(self.service.recording.path))
        count = GaugeMetricFamily("streamwarden_streams", "Streams configured")
        count.add_metric([], len(self.service.manager.all()))
        stuck = CounterMetricFamily("streamwarden_stuck_disposals",
                                    "Detached elements whose shutdown blocked past 5 s")
        stuck.add_metric([], self.service.reaper.stuck)
        yield from (disk, count, stuck, *_heap_families(self.service.heap))

    def _clients(self) -> Iterator[Metric]:
        """The WebSocket clients dropped, and the MQTT bridge's counters when there is one."""
        ws_dropped = CounterMetricFamily("streamwarden_ws_clients_dropped",
                                         "WebSocket clients dropped for not keeping up")
        ws_dropped.add_metric([], self.service.notifier.clients_dropped)
        yield ws_dropped
        bridge = self.service.mqtt
        if bridge is None:
            return
        published = CounterMetricFamily("streamwarden_mqtt_published",
                                        "MQTT messages handed to the client")
        published.add_metric([], bridge.published)
        dropped = CounterMetricFamily("streamwarden_mqtt_dropped",
                                      "MQTT messages dropped (buffer full)")
        dropped.add_metric([], bridge.dropped)
        connected = GaugeMetricFamily("streamwarden_mqtt_connected", "1 if connected")
        connected.add_metric([], 1 if bridge.connected else 0)
        yield from (published, dropped, connected)

    def _inference(self) -> Iterator[Metric]:
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
        for stream in self.service.manager.all():
            stats = inference.runner.stream_stats(stream.id)
            if stats is None:
                continue
            sid = [stream.id]
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


def _hook_families(hooks: HookRunner | None) -> Iterator[Metric]:
    """Hook runs, failures by reason and drops, per hook (only when a command is set)."""
    if hooks is None:
        return
    stats = hooks.stats()
    runs = _counter("streamwarden_hook_runs", "Hook commands started", ("hook",))
    failures = _counter("streamwarden_hook_failures", "Hook runs that failed, by reason "
                        "(exit, timeout, not_found, error)", ("hook", "reason"))
    dropped = _counter("streamwarden_hook_dropped", "Hook runs dropped: too many waiting",
                       ("hook",))
    for hook in HOOK_NAMES:
        runs.add_metric([hook], stats["runs"].get(hook, 0))
        dropped.add_metric([hook], stats["dropped"].get(hook, 0))
        for reason in FAILURE_REASONS:
            failures.add_metric([hook, reason], stats["failures"].get((hook, reason), 0))
    running = _gauge("streamwarden_hooks_running", "Hook commands running", ())
    running.add_metric([], stats["running"])
    waiting = _gauge("streamwarden_hooks_waiting", "Hook runs waiting for a free slot", ())
    waiting.add_metric([], stats["waiting"])
    yield from (runs, failures, dropped, running, waiting)


def _webhook_families(webhooks: Webhooks | None) -> Iterator[Metric]:
    """Per webhook: deliveries, failed attempts, given up, dropped, queued."""
    if webhooks is None:
        return
    label = ("webhook",)
    families: dict[str, Metric] = {
        "delivered": _counter("streamwarden_webhook_delivered", "Webhook deliveries the "
                              "receiver accepted (2xx)", label),
        "failed_attempts": _counter("streamwarden_webhook_failed_attempts", "Webhook requests "
                                    "that failed (no answer, or not 2xx)", label),
        "given_up": _counter("streamwarden_webhook_given_up", "Webhook deliveries abandoned: "
                             "refused (4xx) or out of attempts", label),
        "dropped": _counter("streamwarden_webhook_dropped", "Webhook deliveries dropped: the "
                            "queue was full", label),
        "queued": _gauge("streamwarden_webhook_queued", "Webhook deliveries waiting", label),
    }
    for stats in webhooks.stats():
        for key, family in families.items():
            family.add_metric([stats["webhook"]], stats[key])
    yield from families.values()


def make_registry(service: Service) -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(StreamCollector(service))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
