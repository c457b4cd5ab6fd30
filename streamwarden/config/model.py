"""The typed configuration: one pydantic model per TOML table, unknown keys rejected.

The design note's example must load exactly as written, so every key it uses exists here with
its meaning; everything else has a default an operator would pick. Per-stream settings that
may be overridden are `None` on the stream and resolved against `[stream_defaults]` by
`StreamConfig.settings()`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from streamwarden.config.durations import ByteSize, Duration, format_duration
from streamwarden.config.filemode import parse_dir_mode, parse_file_mode
from streamwarden.config.hooks import HooksSection, WebhookSection, unique_webhook_labels
from streamwarden.config.inference import InferenceSection
from streamwarden.config.zones import (
    MAX_MASKS,
    MAX_ZONES,
    ObjectSelector,
    PolygonPoints,
    ZoneConfig,
    duplicate_zone_problem,
    unknown_zone_problem,
)
from streamwarden.ids import STREAM_ID_PATTERN, validate_stream_id
from streamwarden.uris import validate_uri

StreamId = Annotated[str, AfterValidator(validate_stream_id),
                     Field(json_schema_extra={"pattern": STREAM_ID_PATTERN})]
StreamUri = Annotated[str, AfterValidator(validate_uri), Field(json_schema_extra={
    "pattern": r"^(rtsps?|rtspt|rtmps?|srt|https?|file)://\S+$"})]
Transport = Literal["tcp", "udp"]
FileMode = Annotated[int, BeforeValidator(parse_file_mode)]
DirMode = Annotated[int, BeforeValidator(parse_dir_mode)]


def _absolute_dir(value: str) -> str:
    if not value or not Path(value).is_absolute():
        raise ValueError(f"{value!r} is not an absolute directory path (such as \"/srv/clips\")")
    return value


AbsoluteDir = Annotated[str, AfterValidator(_absolute_dir)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def parse_listen(value: str) -> tuple[str, int]:
    """Split "HOST:PORT" (or "[v6]:PORT") into host and port, with a clear message if wrong."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f'expected "HOST:PORT" such as "127.0.0.1:8080", got {value!r}')
    return host.strip("[]"), int(port_text)


def _check_listen(value: str) -> str:
    parse_listen(value)
    return value


class AppSection(_Section):
    auto_remove_unhealthy: bool = False
    health_check_interval: Duration = 5.0
    removal_threshold: Duration = 300.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    database: str = "streamwarden.db"
    # the key that encrypts API-added streams in the database; default: <database>.key
    secret_key_file: str | None = Field(default=None, min_length=1)
    # reload the config file when its content changes (checked every second)
    watch_config: bool = False
    # how often the C heap's free pages are given back to the system (0: never); see heap.py
    memory_trim_interval: Duration = Field(default=60.0, ge=0)

    @property
    def key_path(self) -> Path:
        return Path(self.secret_key_file or f"{self.database}.key")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class _Listening(_Section):
    """A section with a `listen = "HOST:PORT"` key."""

    listen: Annotated[str, AfterValidator(_check_listen)]

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]


class ApiSection(_Listening):
    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:8080"
    token: str | None = Field(default=None, min_length=16)
    allow_unauthenticated: bool = False
    public_paths: list[str] = ["/health", "/health/live", "/health/ready", "/metrics"]
    url_token_ttl: Duration = 300.0
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    tls_cert: str | None = None
    tls_key: str | None = None
    # where API clients may point file:// sources (after symlinks and ".."); none: config only
    allowed_file_dirs: list[AbsoluteDir] = []

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiSection:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self

    def exposure_problem(self, users: bool = False) -> str | None:
        """Why this API must not start as configured (None if it may); `users`: a users file
        is configured, so every request is authenticated."""
        if self.host in LOOPBACK_HOSTS or self.token or users or self.allow_unauthenticated:
            return None
        return (f"refusing to listen on {self.listen} without a token: set [api] token (or "
                "STREAMWARDEN_API_TOKEN) or [users] file, or [api] allow_unauthenticated = true")


class RecordingSection(_Section):
    base_path: str = "recordings"
    segment_duration: Duration = 600.0
    format: Literal["mp4", "mkv", "ts"] = "mp4"
    fragment_duration: Duration = 1.0
    janitor_interval: Duration = 60.0
    retention: Duration | None = None  # continuous footage
    # footage overlapping a detection event (with its pre/post-roll), and the event rows;
    # None: such footage follows `retention` and event rows are kept (recording/retention_rule)
    event_retention: Duration | None = None
    max_size: ByteSize | None = None
    min_free: ByteSize | None = None
    file_mode: FileMode = 0o600  # segments; "0640" lets the directories' group read them
    dir_mode: DirMode = 0o700  # every directory the recorder creates

    @model_validator(mode="after")
    def _tiers(self) -> RecordingSection:
        """Event footage is what mattered: it is kept at least as long as the rest."""
        if self.event_retention is None:
            return self
        if self.retention is None:
            raise ValueError("event_retention needs retention: without it continuous footage "
                             "is kept forever, longer than event footage")
        if self.event_retention < self.retention:
            raise ValueError(f"event_retention ({format_duration(self.event_retention)}) is "
                             "shorter than retention "
                             f"({format_duration(self.retention)}): footage of events is "
                             "kept at least as long as continuous footage")
        return self


_SOURCE_LIMITS = {"timeout": 3600.0, "restart_timeout": 3600.0, "retry_timeout": 30 * 86400.0,
                  "failed_retry_interval": 86400.0, "buffer_duration": 300.0, "latency": 10.0}


class SourceSettings(_Section):
    """How a stream's source is supervised: the fallbacksrc knobs, plus transport."""

    timeout: Duration = 5.0
    retry_timeout: Duration = 60.0
    restart_timeout: Duration = 3.0
    buffer_duration: Duration = 10.0
    transport: Transport = "tcp"
    latency: Duration = 0.2
    failed_retry_interval: Duration = 30.0

    @model_validator(mode="after")
    def _in_range(self) -> SourceSettings:
        for name in ("timeout", "restart_timeout", "retry_timeout", "failed_retry_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0")
        for name, limit in _SOURCE_LIMITS.items():
            if getattr(self, name) > limit:
                raise ValueError(f"{name} can be at most {format_duration(limit)}")
        return self


DetectFit = Literal["stretch", "crop"]


class StreamConfig(_Section):
    id: StreamId
    uri: StreamUri
    # The camera's low-resolution sub-stream: detection, MJPEG and snapshots decode it, the
    # rest uses `uri`. A second connection, supervised like the first (ingest/stream.py).
    detect_uri: StreamUri | None = None
    # How the sub-stream's picture lies in the main one when their aspect ratios differ:
    # squashed whole ("stretch", most cameras) or its centre cut out ("crop"); media/geometry.py
    detect_fit: DetectFit = "stretch"
    enable_inference: bool = False
    enable_recording: bool = False
    restream: bool = True
    timeout: Duration | None = None
    retry_timeout: Duration | None = None
    restart_timeout: Duration | None = None
    buffer_duration: Duration | None = None
    transport: Transport | None = None
    latency: Duration | None = None
    failed_retry_interval: Duration | None = None
    # named polygons events report, and areas ignored by motion and detection (config/zones.py)
    zones: list[ZoneConfig] = Field(default=[], max_length=MAX_ZONES)
    masks: list[PolygonPoints] = Field(default=[], max_length=MAX_MASKS)
    record_on: list[ObjectSelector] | None = None  # None: [inference] record_on

    @model_validator(mode="after")
    def _zones_known(self) -> StreamConfig:
        problem = duplicate_zone_problem(self.zones) or unknown_zone_problem(
            "record_on", self.record_on or [], (z.name for z in self.zones), "on this stream")
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _distinct_detect_uri(self) -> StreamConfig:
        if self.detect_uri is not None and self.detect_uri == self.uri:
            raise ValueError("detect_uri is the same as uri: leave it out to detect on the "
                             "main stream")
        return self

    def settings(self, defaults: SourceSettings) -> SourceSettings:
        """The effective source settings: this stream's overrides on top of the defaults."""
        overrides = {
            name: getattr(self, name)
            for name in SourceSettings.model_fields
            if getattr(self, name, None) is not None
        }
        return SourceSettings.model_validate({**defaults.model_dump(), **overrides})


class RestreamSection(_Listening):
    enabled: bool = True
    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:8554"
    user: str | None = None
    password: str | None = None
    allow_unauthenticated: bool = False
    # what readers see while the camera is down: nothing (they wait) or a "stream offline" slate
    fallback: Literal["none", "slate"] = "none"

    @model_validator(mode="after")
    def _credentials_pair(self) -> RestreamSection:
        if bool(self.user) != bool(self.password):
            raise ValueError("user and password go together: set both or neither")
        return self

    def exposure_problem(self, users: bool = False) -> str | None:
        if (not self.enabled or self.host in LOOPBACK_HOSTS or self.user or users
                or self.allow_unauthenticated):
            return None
        return (f"refusing to re-serve cameras on {self.listen} without credentials: set "
                "[restream] user and password or [users] file, or [restream] "
                "allow_unauthenticated = true")


class Argon2Params(_Section):
    """argon2id's cost: iterations, memory (KiB), lanes."""

    time_cost: int = Field(default=3, ge=1, le=100)
    memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    parallelism: int = Field(default=4, ge=1, le=64)

    def weaker_than(self, other: Argon2Params) -> bool:
        return (self.time_cost < other.time_cost or self.memory_kib < other.memory_kib
                or self.parallelism < other.parallelism)


class UsersSection(_Section):
    """Users with passwords and roles, besides `[api] token` (which acts as an admin)."""

    file: str | None = Field(default=None, min_length=1)  # see streamwarden/users/userfile.py
    session_ttl: Duration = 12 * 3600.0
    # new hashes (`streamwarden user add|passwd`): argon2-cffi's defaults, RFC 9106 low-memory
    hash: Argon2Params = Argon2Params()
    # the weakest hash the users file may hold: OWASP's argon2id minimum
    min_hash: Argon2Params = Argon2Params(time_cost=2, memory_kib=19456, parallelism=1)
    login_free_attempts: int = Field(default=3, ge=1, le=1000)
    login_backoff_max: Duration = 300.0
    # how long an RTSP reader's verified credentials are remembered (no argon2 per request)
    restream_credentials_ttl: Duration = 600.0

    @model_validator(mode="after")
    def _sensible(self) -> UsersSection:
        if not 60 <= self.session_ttl <= 30 * 86400:
            raise ValueError("session_ttl must be between 1m and 30d")
        if not 1 <= self.login_backoff_max <= 86400:
            raise ValueError("login_backoff_max must be between 1s and 1d")
        if self.restream_credentials_ttl > 86400:
            raise ValueError("restream_credentials_ttl can be at most 1d")
        if self.hash.weaker_than(self.min_hash):
            raise ValueError("hash is weaker than min_hash: new passwords would be refused at "
                             "start-up; raise hash or lower min_hash")
        return self


class MqttSection(_Section):
    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    topic_prefix: str = Field(default="streamwarden", pattern=r"^[A-Za-z0-9_\-/]{1,64}$")
    client_id: str = "streamwarden"
    buffer: int = Field(default=1000, ge=1, le=1_000_000)
    # which detections and events are published (same syntax as record_on); None: all
    objects: list[ObjectSelector] | None = None
    # Home Assistant MQTT discovery (hass/discovery.py): per camera a camera entity, binary
    # sensors (online, one per label detected), switches for recording and detection
    home_assistant: bool = False
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_\-/]{1,64}$")
    # a "<label> detected" sensor per label; None: the labels [inference] record_on names
    # (its `label@zone` entries by their label), or else "person"
    detection_labels: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = None
    snapshot_interval: Duration = 10.0  # how often each camera entity's picture is published

    @model_validator(mode="after")
    def _snapshot_interval(self) -> MqttSection:
        if not 1 <= self.snapshot_interval <= 3600:
            raise ValueError("snapshot_interval must be between 1s and 1h")
        return self

    def labels(self, record_on: list[str]) -> list[str]:
        """The labels that get a "detected" binary sensor in Home Assistant."""
        if self.detection_labels is not None:
            return self.detection_labels
        named = (text.partition("@")[0].strip() for text in record_on)
        labels = list(dict.fromkeys(label for label in named if label != "*"))
        return labels or ["person"]


def _postgres_url(value: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("expected a PostgreSQL URL such as "
                         "\"postgresql://streamwarden:secret@db.example:5432/streamwarden\"")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or value.endswith("://"):
        raise ValueError(f"expected an http(s) URL such as \"http://10.0.0.5:8080\", got "
                         f"{value!r}")
    return value.rstrip("/")


def _default_node_id() -> str:
    import socket

    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64]
    return name or "node"


class ClusterSection(_Section):
    """Several nodes sharing one camera list on PostgreSQL (see streamwarden/cluster/).

    Every node of a cluster uses the same `database` and the same secret key file (the camera
    list's secrets are encrypted with it); `node_id` and `advertise_url` differ per node."""

    database: Annotated[str, AfterValidator(_postgres_url)]
    node_id: Annotated[str, Field(default_factory=_default_node_id,
                                  pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    # how other nodes and clients reach this node's API; default: http://<[api] listen>
    advertise_url: Annotated[str, AfterValidator(_http_url)] | None = None
    lease: Duration = 8.0
    # cameras this node may own at once; none: no limit
    capacity: int | None = Field(default=None, ge=1)
    # planned moves (a node joined, capacities changed) this node starts per minute
    moves_per_minute: int = Field(default=6, ge=1)
    # how long SIGTERM waits for its cameras to be taken over before releasing the rest
    drain_timeout: Duration = 15.0

    @model_validator(mode="after")
    def _lease_range(self) -> ClusterSection:
        if not 1.0 <= self.lease <= 300.0:
            raise ValueError("lease must be between 1s and 5m")
        return self


class Config(_Section):
    app: AppSection = AppSection()
    api: ApiSection = ApiSection()
    recording: RecordingSection = RecordingSection()
    inference: InferenceSection = InferenceSection()
    stream_defaults: SourceSettings = SourceSettings()
    streams: list[StreamConfig] = []
    restream: RestreamSection = RestreamSection()
    mqtt: MqttSection | None = None
    hooks: HooksSection = HooksSection()
    webhooks: list[WebhookSection] = []
    users: UsersSection = UsersSection()
    cluster: ClusterSection | None = None

    @model_validator(mode="after")
    def _webhook_labels(self) -> Config:
        unique_webhook_labels(self.webhooks)
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> Config:
        seen: set[str] = set()
        for stream in self.streams:
            if stream.id in seen:
                raise ValueError(f"duplicate stream id {stream.id!r}")
            seen.add(stream.id)
        return self

    @model_validator(mode="after")
    def _selector_zones(self) -> Config:
        """A zone named in [inference] record_on or [mqtt] objects exists on some stream."""
        known = {zone.name for stream in self.streams for zone in stream.zones}
        problem = unknown_zone_problem("[inference] record_on", self.inference.record_on,
                                       known, "on any stream")
        if problem is None and self.mqtt is not None:
            problem = unknown_zone_problem("[mqtt] objects", self.mqtt.objects or [], known,
                                           "on any stream")
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _stream_settings(self) -> Config:
        """Each stream's overrides, merged with the defaults, must make sense together."""
        for index, stream in enumerate(self.streams):
            try:
                stream.settings(self.stream_defaults)
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"streams[{index}] ({stream.id}): {reason}") from None
        return self
