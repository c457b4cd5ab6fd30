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


def stream_health(stream: Stream, features: Iterable[Feature],
                  now_ns: int | None = None) -> dict[str, Any]:
    """The stream's health entry (the fields of `schemas.HealthEntry`)."""
    sup = stream.supervisor
    last = stream.counters.last_frame_ns
    now_ns = time.monotonic_ns() if now_ns is None else now_ns
    age = (now_ns - last) / 1e9 if last else None
    healthy = sup.state is StreamState.STREAMING and age is not None and (
        age <= stream.settings.timeout
    )
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
    }
    for feature in features:
        health.update(feature.health(stream))
    return health


def stream_statistics(stream: Stream) -> dict[str, Any]:
    """What the stream received and what its consumers did with it."""
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
