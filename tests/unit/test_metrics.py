"""`/metrics`' collector from hand-made stream numbers: every family, label and value, in order.

No GStreamer, no service: the collector only reads each stream's health and statistics
dicts (assembled by `api/views.py`, tested on its own in test_views.py) and a few counters,
so plain objects stand in for the service's parts and hand the dicts over as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamwarden.api import metrics
from streamwarden.api.metrics import StreamCollector
from streamwarden.heap import HeapUsage


@dataclass
class FakeStream:
    id: str
    health_: dict
    stats_: dict

    def health(self) -> dict:
        return self.health_

    def statistics(self) -> dict:
        return self.stats_


@dataclass
class FakeManager:
    streams: list[FakeStream]
    features: list = field(default_factory=list)

    def all(self) -> list[FakeStream]:
        return list(self.streams)


@dataclass
class FakeRunner:
    per_stream: dict[str, dict]
    restarts: int = 3
    state: str = "running"

    def stream_stats(self, stream_id: str) -> dict | None:
        return self.per_stream.get(stream_id)


@dataclass
class FakeInference:
    runner: FakeRunner


@dataclass
class FakeCounter:
    stuck: int = 0
    clients_dropped: int = 0


@dataclass
class FakeMqtt:
    published: int = 12
    dropped: int = 2
    connected: bool = True


@dataclass
class FakeHooks:
    """What HookRunner.stats() returns."""

    def stats(self) -> dict:
        return {"runs": {"segment_complete": 9, "stream_ready": 2},
                "failures": {("segment_complete", "timeout"): 1,
                             ("segment_complete", "exit"): 2},
                "dropped": {"segment_complete": 4}, "running": 3, "waiting": 5}


@dataclass
class FakeWebhooks:
    """What Webhooks.stats() returns."""

    def stats(self) -> list[dict]:
        return [{"webhook": "ops", "delivered": 10, "failed_attempts": 6, "given_up": 1,
                 "dropped": 2, "queued": 7},
                {"webhook": "example.com", "delivered": 0, "failed_attempts": 0, "given_up": 0,
                 "dropped": 0, "queued": 0}]


@dataclass
class FakeRecording:
    path: Path


@dataclass
class FakeTimeline:
    """The seconds the timeline counts (recording/timeline_keeper.py), by stream."""

    per_stream: dict[str, dict[str, float]]

    def lost_seconds(self, stream_id: str) -> dict[str, float]:
        return dict(self.per_stream.get(stream_id, {}))


@dataclass
class FakeHeap:
    """heap.Heap's numbers: what the trims gave back, malloc's bytes by state."""

    released: int = 3 * 2**20

    def usage(self) -> HeapUsage:
        return HeapUsage(in_use=200 * 2**20, free=40 * 2**20)


@dataclass
class FakeService:
    manager: FakeManager
    inference: FakeInference
    recording: FakeRecording
    timeline: FakeTimeline
    reaper: FakeCounter = field(default_factory=lambda: FakeCounter(stuck=1))
    notifier: FakeCounter = field(default_factory=lambda: FakeCounter(clients_dropped=4))
    heap: FakeHeap = field(default_factory=FakeHeap)
    mqtt: FakeMqtt | None = None
    hooks: FakeHooks | None = None
    webhooks: FakeWebhooks | None = None


def _health(**overrides) -> dict:
    return {"retry_count": 2, "fps": 25.0, "bitrate_kbps": 1800.5, "last_frame_age_s": 0.04,
            "is_healthy": True, "state": "streaming", "recording": True, "live_viewers": 1,
            **overrides}


def _stats(consumers: list[dict]) -> dict:
    return {"frames": 1000, "keyframes": 20, "bytes": 500000, "damaged_frames": 6,
            "lost_packets": 9, "discontinuities": 1, "consumers": consumers}


RECORDER = {"kind": "recorder", "bytes_written": 400000, "segments": 3, "dropped_frames": 5,
            "lost_seconds": {"write_error": 1.5}}


DETECT = {"state": "retrying", "is_healthy": False, "uri": "rtsp://sub", "fps": 0.0,
          "width": None, "height": None, "reconnects": 4, "last_frame_age_s": None,
          "last_retry_reason": "timeout", "last_error": None}
PIXELS = {"kind": "pixels", "frames_decoded": 60, "activity": "idle", "frames_gated": 440}


def _service(tmp_path: Path, mqtt: FakeMqtt | None) -> FakeService:
    cam_stats = {**_stats([{"kind": "frame_counter"}, RECORDER]),
                 "detect_source": _stats([PIXELS])}  # the decoder hangs on the sub-stream
    cam = FakeStream("cam", _health(detect_source=DETECT), cam_stats)
    dead = FakeStream("dead", _health(retry_count=7, fps=0.0, bitrate_kbps=0.0,
                                      last_frame_age_s=None, is_healthy=False, state="failed",
                                      recording=False, live_viewers=0), _stats([]))
    runner = FakeRunner({"cam": {"model_calls": 90, "frames_seen": 100, "frames_dropped": 10,
                                 "detections": 4, "latency_ms_p95": 25.0}})
    # the recording directory does not exist yet: the free space of its parent is reported
    manager = FakeManager([cam, dead])
    # "dead" has no recorder: what the timeline says of it is not exported
    timeline = FakeTimeline({"cam": {"camera_offline": 4.25, "service_not_running": 30.0},
                             "dead": {"camera_offline": 60.0}})
    return FakeService(manager, FakeInference(runner),
                       FakeRecording(tmp_path / "not-yet" / "recordings"), timeline, mqtt=mqtt)


@pytest.fixture(autouse=True)
def _dicts_as_they_are(monkeypatch):
    """The fakes carry their health and statistics dicts ready-made."""
    monkeypatch.setattr(metrics, "stream_health", lambda stream, _features: stream.health())
    monkeypatch.setattr(metrics, "stream_statistics", lambda stream: stream.statistics())


def _scrape(service: FakeService) -> tuple[list[str], dict[tuple, float]]:
    registry = CollectorRegistry()
    registry.register(StreamCollector(service))
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in families for s in family.samples if not s.name.endswith("_created")}
    return [f.name for f in families], samples


FAMILIES = [
    "streamwarden_stream_frames", "streamwarden_stream_keyframes", "streamwarden_stream_bytes",
    "streamwarden_stream_retries", "streamwarden_stream_damaged_frames",
    "streamwarden_stream_lost_packets", "streamwarden_stream_discontinuities",
    "streamwarden_stream_fps", "streamwarden_stream_bitrate_kbps",
    "streamwarden_stream_last_frame_age_seconds", "streamwarden_stream_healthy",
    "streamwarden_stream_state", "streamwarden_recording_active", "streamwarden_recording_bytes",
    "streamwarden_recording_segments", "streamwarden_recording_dropped_frames",
    "streamwarden_recording_lost_seconds", "streamwarden_live_viewers",
    "streamwarden_detect_source_healthy", "streamwarden_detect_source_retries",
    "streamwarden_detect_source_fps", "streamwarden_inference_activity",
    "streamwarden_inference_decoded_frames", "streamwarden_inference_gated_frames",
    "streamwarden_recording_disk_free_bytes", "streamwarden_streams",
    "streamwarden_stuck_disposals", "streamwarden_memory_trimmed_bytes",
    "streamwarden_malloc_bytes", "streamwarden_inference_model_calls",
    "streamwarden_inference_frames_seen", "streamwarden_inference_frames_dropped",
    "streamwarden_inference_detections", "streamwarden_inference_latency_p95_seconds",
    "streamwarden_inference_worker_restarts", "streamwarden_inference_worker_running",
    "streamwarden_ws_clients_dropped",
]
MQTT_FAMILIES = ["streamwarden_mqtt_published", "streamwarden_mqtt_dropped",
                 "streamwarden_mqtt_connected"]


def _expected() -> dict[tuple, float]:
    cam, dead = (("stream", "cam"),), (("stream", "dead"),)
    expected = {
        ("streamwarden_stream_frames_total", cam): 1000,
        ("streamwarden_stream_frames_total", dead): 1000,
        ("streamwarden_stream_keyframes_total", cam): 20,
        ("streamwarden_stream_keyframes_total", dead): 20,
        ("streamwarden_stream_bytes_total", cam): 500000,
        ("streamwarden_stream_bytes_total", dead): 500000,
        ("streamwarden_stream_retries_total", cam): 2,
        ("streamwarden_stream_retries_total", dead): 7,
        ("streamwarden_stream_damaged_frames_total", cam): 6,
        ("streamwarden_stream_damaged_frames_total", dead): 6,
        ("streamwarden_stream_lost_packets_total", cam): 9,
        ("streamwarden_stream_lost_packets_total", dead): 9,
        ("streamwarden_stream_discontinuities_total", cam): 1,
        ("streamwarden_stream_discontinuities_total", dead): 1,
        ("streamwarden_stream_fps", cam): 25.0, ("streamwarden_stream_fps", dead): 0.0,
        ("streamwarden_stream_bitrate_kbps", cam): 1800.5,
        ("streamwarden_stream_bitrate_kbps", dead): 0.0,
        ("streamwarden_stream_last_frame_age_seconds", cam): 0.04,  # none for "dead"
        ("streamwarden_stream_healthy", cam): 1, ("streamwarden_stream_healthy", dead): 0,
        ("streamwarden_recording_active", cam): 1, ("streamwarden_recording_active", dead): 0,
        ("streamwarden_live_viewers", cam): 1, ("streamwarden_live_viewers", dead): 0,
        # the recorder's numbers: only for the stream that has one
        ("streamwarden_recording_bytes_total", cam): 400000,
        ("streamwarden_recording_segments_total", cam): 3,
        ("streamwarden_recording_dropped_frames_total", cam): 5,
        ("streamwarden_recording_lost_seconds_total",
         (("reason", "disk_full"), ("stream", "cam"))): 0.0,
        ("streamwarden_recording_lost_seconds_total",
         (("reason", "write_error"), ("stream", "cam"))): 1.5,
        # the timeline's reasons, from the timeline; every reason exported from the start
        ("streamwarden_recording_lost_seconds_total",
         (("reason", "camera_offline"), ("stream", "cam"))): 4.25,
        ("streamwarden_recording_lost_seconds_total",
         (("reason", "discontinuity"), ("stream", "cam"))): 0.0,
        ("streamwarden_recording_lost_seconds_total",
         (("reason", "service_not_running"), ("stream", "cam"))): 30.0,
        # the sub-stream and the activity gate: only for the stream that has them
        ("streamwarden_detect_source_healthy", cam): 0,
        ("streamwarden_detect_source_retries_total", cam): 4,
        ("streamwarden_detect_source_fps", cam): 0.0,
        ("streamwarden_inference_activity", cam): 0,
        ("streamwarden_inference_decoded_frames_total", cam): 60,
        ("streamwarden_inference_gated_frames_total", cam): 440,
        ("streamwarden_streams", ()): 2,
        ("streamwarden_stuck_disposals_total", ()): 1,
        ("streamwarden_memory_trimmed_bytes_total", ()): 3 * 2**20,
        ("streamwarden_malloc_bytes", (("state", "in_use"),)): 200 * 2**20,
        ("streamwarden_malloc_bytes", (("state", "free"),)): 40 * 2**20,
        ("streamwarden_inference_model_calls_total", cam): 90,
        ("streamwarden_inference_frames_seen_total", cam): 100,
        ("streamwarden_inference_frames_dropped_total", cam): 10,
        ("streamwarden_inference_detections_total", cam): 4,
        ("streamwarden_inference_latency_p95_seconds", cam): 0.025,
        ("streamwarden_inference_worker_restarts_total", ()): 3,
        ("streamwarden_inference_worker_running", ()): 1,
        ("streamwarden_ws_clients_dropped_total", ()): 4,
    }
    for sid, current in (("cam", "streaming"), ("dead", "failed")):
        for state in ("starting", "streaming", "retrying", "failed"):
            key = ("streamwarden_stream_state", (("state", state), ("stream", sid)))
            expected[key] = 1 if state == current else 0
    return expected


def test_every_family_and_value_from_hand_made_streams(tmp_path):
    names, samples = _scrape(_service(tmp_path, mqtt=None))
    assert names == FAMILIES
    free = samples.pop(("streamwarden_recording_disk_free_bytes", ()))
    assert free > 0  # of tmp_path's volume: the nearest directory that exists
    assert samples == _expected()


def test_mqtt_counters_only_with_a_bridge(tmp_path):
    names, samples = _scrape(_service(tmp_path, mqtt=FakeMqtt()))
    assert names == FAMILIES + MQTT_FAMILIES
    assert samples[("streamwarden_mqtt_published_total", ())] == 12
    assert samples[("streamwarden_mqtt_dropped_total", ())] == 2
    assert samples[("streamwarden_mqtt_connected", ())] == 1


HOOK_FAMILIES = ["streamwarden_hook_runs", "streamwarden_hook_failures",
                 "streamwarden_hook_dropped", "streamwarden_hooks_running",
                 "streamwarden_hooks_waiting"]
WEBHOOK_FAMILIES = ["streamwarden_webhook_delivered", "streamwarden_webhook_failed_attempts",
                    "streamwarden_webhook_given_up", "streamwarden_webhook_dropped",
                    "streamwarden_webhook_queued"]


def test_hook_and_webhook_counters_only_when_configured(tmp_path):
    service = _service(tmp_path, mqtt=None)
    service.hooks, service.webhooks = FakeHooks(), FakeWebhooks()
    names, samples = _scrape(service)
    assert names == FAMILIES + HOOK_FAMILIES + WEBHOOK_FAMILIES
    runs = {dict(k[1])["hook"]: v for k, v in samples.items()
            if k[0] == "streamwarden_hook_runs_total"}
    assert len(runs) == 9, "every hook is listed, run or not"
    assert runs["segment_complete"] == 9 and runs["stream_ready"] == 2 and runs["disk_full"] == 0

    def failures(hook: str, reason: str) -> float:
        return samples[("streamwarden_hook_failures_total",
                        (("hook", hook), ("reason", reason)))]

    assert failures("segment_complete", "timeout") == 1
    assert failures("segment_complete", "exit") == 2
    assert failures("segment_complete", "not_found") == 0 and failures("event_end", "error") == 0
    assert samples[("streamwarden_hook_dropped_total", (("hook", "segment_complete"),))] == 4
    assert samples[("streamwarden_hooks_running", ())] == 3
    assert samples[("streamwarden_hooks_waiting", ())] == 5
    ops = (("webhook", "ops"),)
    assert samples[("streamwarden_webhook_delivered_total", ops)] == 10
    assert samples[("streamwarden_webhook_failed_attempts_total", ops)] == 6
    assert samples[("streamwarden_webhook_given_up_total", ops)] == 1
    assert samples[("streamwarden_webhook_dropped_total", ops)] == 2
    assert samples[("streamwarden_webhook_queued", ops)] == 7
    assert samples[("streamwarden_webhook_queued", (("webhook", "example.com"),))] == 0
