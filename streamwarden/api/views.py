"""A stream's health entry and statistics, as the API, `WS /ws` and `/metrics` show them.

Assembled here, on the reader's thread, from the stream's own numbers (supervisor state,
counters, rates, media) and each feature's contribution (`Feature.health`: recording,
live viewers, inference), so the stream itself owns its pipeline and nothing about
presentation, and no feature has to be known to the stream. Reads plain values only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from streamwarden.ingest.supervisor import StreamState

if TYPE_CHECKING:
    from streamwarden.feature import Feature
    from streamwarden.ingest.stream import Stream


def _frame_age(stream: Stream, now_ns: int) -> tuple[float | None, bool]:
    """Seconds since the connection's last frame, and whether it is streaming in time."""
    last = stream.counters.last_frame_ns
    age = (now_ns - last) / 1e9 if last else None
    healthy = stream.supervisor.state is StreamState.STREAMING and age is not None and (
        age <= stream.settings.timeout
    )
    return age, healthy


def detect_source_health(stream: Stream, now_ns: int) -> dict[str, Any] | None:
    """The sub-stream's connection (`schemas.DetectSourceHealth`), None without one."""
    detect = stream.detect
    if detect is None:
        return None
    sup = detect.supervisor
    age, healthy = _frame_age(detect, now_ns)
    return {
        "state": sup.state.value,
        "is_healthy": healthy,
        "uri": detect.display_uri.text,
        "fps": round(detect.rates.fps, 2),
        "width": detect.media.width,
        "height": detect.media.height,
        "reconnects": sup.retry_count,
        "last_frame_age_s": round(age, 3) if age is not None else None,
        "last_retry_reason": sup.last_retry_reason.value if sup.last_retry_reason else None,
        "last_error": sup.last_error,
    }


def stream_health(stream: Stream, features: Iterable[Feature],
                  now_ns: int | None = None) -> dict[str, Any]:
    """The stream's health entry (the fields of `schemas.HealthEntry`): the main
    connection's numbers, the sub-stream's (`detect_source`), each feature's fields."""
    sup = stream.supervisor
    now_ns = time.monotonic_ns() if now_ns is None else now_ns
    age, healthy = _frame_age(stream, now_ns)
    health: dict[str, Any] = {
        "id": stream.id,
        "state": sup.state.value,
        "is_healthy": healthy,
        "retry_count": sup.retry_count,
        "buffering": stream.buffering_percent,
        "last_frame_age_s": round(age, 3) if age is not None else None,
        "fps": round(stream.rates.fps, 2),
        "bitrate_kbps": round(stream.rates.bitrate_kbps, 1),
        "last_retry_reason": sup.last_retry_reason.value if sup.last_retry_reason else None,
        "last_error": sup.last_error,
        "detect_source": detect_source_health(stream, now_ns),
    }
    for feature in features:
        health.update(feature.health(stream))
    return health


def stream_statistics(stream: Stream) -> dict[str, Any]:
    """What the stream received and what its consumers did with it; with a sub-stream,
    the same for it under `detect_source` (its consumer is the decoder)."""
    statistics = _statistics(stream)
    if stream.detect is not None:
        statistics["detect_source"] = _statistics(stream.detect)
    return statistics


def _statistics(stream: Stream) -> dict[str, Any]:
    counters, media = stream.counters, stream.media
    return {
        "frames": counters.frames,
        "keyframes": counters.keyframes,
        "bytes": counters.bytes,
        "audio_frames": counters.audio_frames,
        "video_codec": media.video_codec,
        "width": media.width,
        "height": media.height,
        "framerate": media.framerate,
        "audio_codec": media.audio_codec,
        "damaged_frames": counters.damaged_frames,
        "lost_packets": counters.lost_packets,
        "discontinuities": counters.discontinuities,
        "consumers": [consumer.stats() for consumer in stream.consumers()],
    }
