"""Response shapes of the control API (requests reuse the config's `StreamConfig`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamwarden.config.durations import Duration
from streamwarden.config.model import SourceSettings, StreamUri
from streamwarden.config.zones import (
    MAX_MASKS,
    MAX_ZONES,
    ObjectSelector,
    PolygonPoints,
    ZoneConfig,
    duplicate_zone_problem,
)


class ErrorBody(BaseModel):
    """Every error: a stable machine code and a sentence for the operator."""

    error: str
    detail: str


# How routes document their answers in the schema (status → model or content, description).
Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
STREAM_ERRORS: Responses = {
    404: {"model": ErrorBody, "description": "No such stream (or, for a snapshot, no picture)"},
    422: {"model": ErrorBody, "description": "Malformed request, id or URI"},
}


class Liveness(BaseModel):
    """`GET /health/live`: the process answers (its event loop runs)."""

    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    """`GET /health/ready` when ready; otherwise a 503 `ErrorBody` (`not_ready`)."""

    status: Literal["ready"] = "ready"
    detail: str


class StreamCreated(BaseModel):
    id: str


class DetectSourceHealth(BaseModel):
    """The detection sub-stream's own connection (`detect_uri`), supervised on its own."""

    state: Literal["starting", "streaming", "retrying", "failed", "stopped"]
    is_healthy: bool
    uri: str  # credentials redacted
    fps: float
    width: int | None
    height: int | None
    reconnects: int  # attempts restarted (timeouts, errors, end of stream)
    last_frame_age_s: float | None
    last_retry_reason: Literal["timeout", "error", "eos"] | None
    last_error: str | None


class HealthEntry(BaseModel):
    id: str
    state: Literal["starting", "streaming", "retrying", "failed", "stopped"]
    is_healthy: bool
    retry_count: int
    buffering: int
    last_frame_age_s: float | None
    fps: float
    bitrate_kbps: float
    last_retry_reason: Literal["timeout", "error", "eos"] | None
    last_error: str | None
    recording: bool
    recording_error: Literal["disk_full", "write_error"] | None
    recording_warning: str | None = None  # what the files leave out of what the camera sends
    inference_state: Literal["stopped", "starting", "running", "restarting", "failed"] | None = None
    inference: dict[str, Any] | None = None
    live_viewers: int = 0  # browsers watching the live view (WS /streams/{id}/live.mp4)
    detect_source: DetectSourceHealth | None = None  # with a detect_uri


class ZoneEntry(BaseModel):
    zone: str
    entered: datetime  # the first time the object's box (bottom centre) stood in the zone


class PathPoint(BaseModel):
    time: datetime
    x: float  # the box's centre, 0-1 of the frame
    y: float


class EventView(BaseModel):
    """One tracked object (events from before tracking: one run of a label's detections)."""

    id: int
    stream_id: str
    label: str
    start: datetime  # first seen
    end: datetime  # last seen (so far, while active)
    confidence: float  # of the best sighting: the picture's
    box: list[float]
    detections: int
    model: str
    pts: int | None
    snapshot_url: str | None
    object_id: str | None = None  # null for events recorded before objects were tracked
    zones: list[ZoneEntry] = []
    path: list[PathPoint] = []
    stationary: bool = False
    active: bool = False  # still tracked: the event may still change
    # the event's footage: from its pre-roll before `start` to its post-roll after `end`
    # (what [recording] event_retention keeps and the dashboard plays)
    footage_start: datetime | None = None
    footage_end: datetime | None = None


class StreamZones(BaseModel):
    """A stream's zones (named polygons events report) and masks (polygons ignored by motion
    and detection); points are [x, y] fractions of the frame, origin top left."""

    model_config = ConfigDict(extra="forbid")

    zones: list[ZoneConfig] = Field(default=[], max_length=MAX_ZONES)
    masks: list[PolygonPoints] = Field(default=[], max_length=MAX_MASKS)

    @model_validator(mode="after")
    def _unique(self) -> StreamZones:
        if problem := duplicate_zone_problem(self.zones):
            raise ValueError(problem)
        return self


class InferenceStatus(BaseModel):
    state: str
    backend: str
    model: str | None
    runtime: str | None
    warning: str | None
    warnings: list[str]
    restarts: int
    last_restart_reason: str | None
    error: str | None
    worker_pid: int | None
    fps: float
    batch_size: int
    motion_gate: bool
    record_on: list[str]
    events_opened: int
    objects_tracked: int = 0  # tracked objects with an active event, all streams


class StreamStatistics(BaseModel):
    frames: int
    keyframes: int
    bytes: int
    audio_frames: int
    video_codec: str | None
    width: int | None
    height: int | None
    framerate: float | None
    audio_codec: str | None
    damaged_frames: int = 0  # video frames after lost data (they decode with errors)
    lost_packets: int = 0  # RTP packets that never arrived (RTSP)
    discontinuities: int = 0  # jumps of the camera's clock, carried across
    consumers: list[dict[str, Any]]
    detect_source: StreamStatistics | None = None  # the sub-stream's, with a detect_uri


class StreamPatch(BaseModel):
    """Fields of a stream that can change while it runs; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    uri: StreamUri | None = None
    # null removes the sub-stream (detection goes back to the main stream); in place
    detect_uri: StreamUri | None = None
    detect_fit: Literal["stretch", "crop"] | None = None
    enable_recording: bool | None = None
    enable_inference: bool | None = None
    timeout: Duration | None = None
    retry_timeout: Duration | None = None
    restart_timeout: Duration | None = None
    buffer_duration: Duration | None = None
    transport: Literal["tcp", "udp"] | None = None
    latency: Duration | None = None
    failed_retry_interval: Duration | None = None
    # labels or label@zone that start event recordings; null: [inference] record_on
    record_on: list[ObjectSelector] | None = None


class StreamView(BaseModel):
    id: str
    source: Literal["config", "api"]
    uri: str  # credentials redacted
    detect_uri: str | None = None  # credentials redacted
    detect_fit: Literal["stretch", "crop"] = "stretch"
    enable_inference: bool
    enable_recording: bool
    recording: bool
    record_on: list[str] | None = None  # null: [inference] record_on
    settings: SourceSettings
    health: HealthEntry
    statistics: StreamStatistics
    owner: str | None = None  # the node running the stream; null outside a cluster


class RecordRequestBody(BaseModel):
    """Optional body of `POST /streams/{id}/record`."""

    model_config = ConfigDict(extra="forbid")

    pre_roll: Duration | None = None
    post_roll: Duration | None = None
    duration: Duration | None = None
    reason: Literal["manual", "event"] = "manual"


class RecordingState(BaseModel):
    id: str
    recording: bool
    reason: str | None
    recording_error: str | None


class Recording(BaseModel):
    id: int
    stream_id: str
    start: datetime
    end: datetime | None
    duration: float | None
    bytes: int | None
    reason: str
    # interrupted: only in a cluster, a segment whose node died or lost the camera while
    # writing it (ended at that node's last heartbeat)
    status: Literal["recording", "complete", "repaired", "corrupt", "interrupted"]
    url: str
    node: str | None = None  # the node holding the file; null outside a cluster


GapReason = Literal["deleted", "service_not_running", "recording_off", "disk_full",
                   "write_error", "camera_offline", "discontinuity", "unknown"]


class TimelineSegment(BaseModel):
    """A segment of a span, with its own bounds (to play a moment: seek to t - start)."""

    id: int
    start: datetime
    end: datetime | None  # None: still being written
    status: Literal["recording", "complete", "repaired", "corrupt", "interrupted"]
    url: str


class TimelineSpan(BaseModel):
    """Covered by footage, from contiguous segments."""

    start: datetime
    end: datetime
    segments: list[TimelineSegment]


class TimelineGap(BaseModel):
    """Not covered, and why."""

    start: datetime
    end: datetime
    seconds: float
    reason: GapReason


class RecordingTimeline(BaseModel):
    """Spans and gaps tiling [start, end) exactly, each in time order."""

    stream_id: str
    start: datetime
    end: datetime
    spans: list[TimelineSpan]
    gaps: list[TimelineGap]


class UrlTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    ttl: Duration | None = None


class UrlToken(BaseModel):
    token: str
    url: str
    expires_in: float


class AuthStatus(BaseModel):
    token_required: bool  # credentials needed: an API token or a user's login
    login: bool = False  # the service has users who log in with a name and password


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class WhoAmI(BaseModel):
    """The caller: name (`token` for the API token, `anonymous` for an open API), role, the
    streams it is limited to (null: every stream), and what its role allows."""

    name: str
    role: Literal["admin", "operator", "viewer"]
    streams: list[str] | None
    actions: list[str]


class LoginSession(BaseModel):
    """A login: `token` goes in `Authorization: Bearer`, until it expires or logout."""

    token: str
    expires_in: float
    user: WhoAmI
