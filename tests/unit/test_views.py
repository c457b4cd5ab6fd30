"""A stream's health entry and statistics (api/views.py) from hand-made numbers: the stream's
own numbers, merged with each feature's contribution. No GStreamer, no service."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from streamwarden.api.views import stream_health, stream_statistics
from streamwarden.config.model import SourceSettings
from streamwarden.feature import Feature
from streamwarden.ingest.supervisor import RetryReason, SourceSupervisor

SETTINGS = SourceSettings(timeout=5, restart_timeout=3, retry_timeout=60)
S = 1_000_000_000  # ns


@dataclass
class _Consumer:
    numbers: dict[str, Any]

    def stats(self) -> dict[str, Any]:
        return self.numbers


@dataclass
class _Stream:
    """The numbers a Stream carries, and nothing else."""

    id: str = "cam"
    settings: SourceSettings = field(default_factory=lambda: SETTINGS)
    supervisor: SourceSupervisor = field(default_factory=lambda: SourceSupervisor(SETTINGS, 0))
    counters: Any = field(default_factory=lambda: SimpleNamespace(
        last_frame_ns=0, frames=0, keyframes=0, bytes=0, audio_frames=0, damaged_frames=0,
        lost_packets=0, discontinuities=0))
    rates: Any = field(default_factory=lambda: SimpleNamespace(fps=0.0, bitrate_kbps=0.0))
    media: Any = field(default_factory=lambda: SimpleNamespace(
        video_codec=None, width=None, height=None, framerate=None, audio_codec=None))
    buffering_percent: int = 100
    attached: list[_Consumer] = field(default_factory=list)
    detect: Any = None  # the sub-stream (detect_uri): a _Stream of its own
    display_uri: Any = field(default_factory=lambda: SimpleNamespace(text="rtsp://cam/main"))

    def consumers(self) -> list[_Consumer]:
        return self.attached


class _Viewers(Feature):
    def health(self, stream: Any) -> dict[str, Any]:
        return {"live_viewers": 3}


class _Recording(Feature):
    def health(self, stream: Any) -> dict[str, Any]:
        return {"recording": True, "recording_error": None}


class _Silent(Feature):
    """A feature that contributes nothing (the protocol's default)."""


def test_a_streaming_camera_with_a_recent_frame_is_healthy_and_features_add_their_fields():
    stream = _Stream()
    stream.supervisor.on_data(1.0)
    stream.counters.last_frame_ns = 10 * S
    stream.rates.fps, stream.rates.bitrate_kbps = 25.004, 2048.04
    health = stream_health(stream, [_Recording(), _Silent(), _Viewers()], now_ns=12 * S)
    assert health == {
        "id": "cam", "state": "streaming", "is_healthy": True, "retry_count": 0,
        "buffering": 100, "last_frame_age_s": 2.0, "fps": 25.0, "bitrate_kbps": 2048.0,
        "last_retry_reason": None, "last_error": None, "detect_source": None,
        "recording": True, "recording_error": None, "live_viewers": 3,
    }


def test_a_frame_older_than_the_timeout_is_unhealthy_even_while_streaming():
    stream = _Stream()
    stream.supervisor.on_data(1.0)
    stream.counters.last_frame_ns = 10 * S
    assert stream_health(stream, [], now_ns=15 * S)["is_healthy"]  # exactly `timeout`
    late = stream_health(stream, [], now_ns=15 * S + 1_000_000)
    assert not late["is_healthy"] and late["last_frame_age_s"] == 5.001


def test_no_frame_yet_and_a_retry_are_reported_as_such():
    stream = _Stream()
    stream.supervisor.on_problem(2.0, RetryReason.ERROR, "connection refused")
    health = stream_health(stream, [_Silent()], now_ns=3 * S)
    assert health["last_frame_age_s"] is None and not health["is_healthy"]
    assert health["last_retry_reason"] == "error" and health["last_error"] == "connection refused"
    assert health["retry_count"] == 1 and "live_viewers" not in health


def test_statistics_are_the_stream_counters_and_each_consumer_s_own_numbers():
    stream = _Stream(attached=[_Consumer({"kind": "recorder", "segments": 2}),
                               _Consumer({"kind": "live", "viewers": 1})])
    stream.counters.frames, stream.counters.keyframes, stream.counters.bytes = 250, 5, 10**6
    stream.media.video_codec, stream.media.width, stream.media.height = "h264", 1280, 720
    stats = stream_statistics(stream)
    assert stats["frames"] == 250 and stats["keyframes"] == 5 and stats["bytes"] == 10**6
    assert (stats["video_codec"], stats["width"], stats["height"]) == ("h264", 1280, 720)
    assert stats["consumers"] == [{"kind": "recorder", "segments": 2},
                                  {"kind": "live", "viewers": 1}]


def test_a_sub_stream_failing_alone_is_reported_beside_a_healthy_main_stream():
    sub = _Stream(display_uri=SimpleNamespace(text="rtsp://admin:***@cam/sub"))
    sub.supervisor.on_data(1.0)
    sub.supervisor.on_problem(2.0, RetryReason.TIMEOUT, "no data for 5s")
    sub.media.width, sub.media.height, sub.rates.fps = 640, 360, 0.0
    stream = _Stream(detect=sub)
    stream.supervisor.on_data(1.0)
    stream.counters.last_frame_ns = 10 * S
    health = stream_health(stream, [], now_ns=11 * S)
    assert health["is_healthy"] and health["state"] == "streaming"
    assert health["detect_source"] == {
        "state": "retrying", "is_healthy": False, "uri": "rtsp://admin:***@cam/sub",
        "fps": 0.0, "width": 640, "height": 360, "reconnects": 1, "last_frame_age_s": None,
        "last_retry_reason": "timeout", "last_error": "no data for 5s"}


def test_statistics_of_a_sub_stream_carry_its_decoder():
    sub = _Stream(attached=[_Consumer({"kind": "pixels", "activity": "idle"})])
    sub.counters.frames = 100
    stream = _Stream(detect=sub, attached=[_Consumer({"kind": "recorder"})])
    stats = stream_statistics(stream)
    assert stats["consumers"] == [{"kind": "recorder"}]
    assert stats["detect_source"]["frames"] == 100
    assert stats["detect_source"]["consumers"] == [{"kind": "pixels", "activity": "idle"}]
    assert "detect_source" not in stream_statistics(sub)
