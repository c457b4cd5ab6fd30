"""What a zoo camera is: its media (encoded once) and its behaviour (faults, protocol).

Specs are frozen dataclasses so they can key the media cache and travel to a camera process
as JSON on its command line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

VIDEO_CODECS = ("h264", "h265")
AUDIO_CODECS = ("none", "aac", "pcma", "pcmu", "opus")
PARAMETER_SETS = ("both", "sdp", "inband")  # where SPS/PPS(/VPS) travel over RTSP
TRANSPORTS = ("any", "tcp", "udp")  # what the RTSP camera accepts
SCENES = ("testsrc2", "appear")  # moving test pattern; a still scene a box walks into
MEDIA_FORMAT = 3  # bump to re-encode every cached clip after a change in how media is made


@dataclass(frozen=True)
class MediaSpec:
    """A clip: `seconds` of test pattern (twice that with `second_size`), looped by cameras.

    `bframes` 0/2/... with `pyramid` for hierarchical B-frames; `gop_seconds` from 1 (typical)
    to 10 ("smart codec"); `vfr` drops every fifth frame so frame intervals vary;
    `second_size` appends a second part at another resolution (a mid-stream change).
    `scene = "appear"`: a still, textured scene (no clock, nothing moving) into which a white
    box (a "person", 1/8 of the width, 1/3 of the height) walks at `appear_at` seconds and
    crosses until the loop ends; each loop starts still again.
    """

    codec: str = "h264"
    width: int = 320
    height: int = 240
    fps: int = 25
    seconds: int = 4
    gop_seconds: float = 1.0
    bframes: int = 0
    pyramid: bool = False
    vfr: bool = False
    second_size: tuple[int, int] | None = None
    audio: str = "none"
    bitrate_kbps: int = 300
    scene: str = "testsrc2"
    appear_at: float = 0.0

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise ValueError(f"scene {self.scene!r}: use one of {SCENES}")
        if self.scene == "appear" and not 0 < self.appear_at < self.seconds:
            raise ValueError("appear_at must lie within the clip")
        if self.codec not in VIDEO_CODECS:
            raise ValueError(f"codec {self.codec!r}: use one of {VIDEO_CODECS}")
        if self.audio not in AUDIO_CODECS:
            raise ValueError(f"audio {self.audio!r}: use one of {AUDIO_CODECS}")
        if self.pyramid and self.bframes < 2:
            raise ValueError("a B-pyramid needs at least 2 B-frames")
        if self.gop_seconds * self.fps < 1:
            raise ValueError("gop_seconds * fps must be at least one frame")

    @property
    def gop_frames(self) -> int:
        return max(1, round(self.gop_seconds * self.fps))

    @property
    def loop_seconds(self) -> int:
        """Length of one loop: two parts when the resolution changes mid-stream."""
        return self.seconds * (2 if self.second_size else 1)

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        if self.scene == "testsrc2":  # keys of clips made before scenes existed stay valid
            del fields["scene"], fields["appear_at"]
        text = json.dumps([MEDIA_FORMAT, fields], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Stall:
    """Send nothing from `at` seconds (after the media starts) for `seconds`."""

    at: float
    seconds: float


@dataclass(frozen=True)
class RtspBehaviour:
    """How the RTSP camera misbehaves (all off by default: a well-behaved camera).

    `loss`: fraction of RTP packets dropped after the payloader (meant for UDP readers; a TCP
    reader sees the same holes). `jump_at`/`jump_seconds`: from then on every timestamp is
    shifted by that much. `rtp_wrap_after`: the 32-bit RTP clock wraps that many seconds in.
    `drift`: 0.01 means timestamps advance 1 % faster than wall time.
    """

    transport: str = "any"
    loss: float = 0.0
    stalls: tuple[Stall, ...] = ()
    jump_at: float | None = None
    jump_seconds: float = 0.0
    rtp_wrap_after: float | None = None
    drift: float = 0.0
    single_client: bool = False
    parameter_sets: str = "both"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport {self.transport!r}: use one of {TRANSPORTS}")
        if self.parameter_sets not in PARAMETER_SETS:
            raise ValueError(f"parameter_sets {self.parameter_sets!r}: one of {PARAMETER_SETS}")
        if not 0 <= self.loss < 1:
            raise ValueError("loss is a fraction in [0, 1)")
        if not -0.5 < self.drift < 0.5:
            raise ValueError("drift is a fraction, e.g. 0.01 for 1 % fast")


@dataclass(frozen=True)
class CameraSpec:
    """A whole zoo camera: `kind` rtsp (GStreamer), http-ts or rtmp (ffmpeg)."""

    media: MediaSpec = field(default_factory=MediaSpec)
    kind: str = "rtsp"
    rtsp: RtspBehaviour = field(default_factory=RtspBehaviour)

    def __post_init__(self) -> None:
        if self.kind not in ("rtsp", "http-ts", "rtmp"):
            raise ValueError(f"kind {self.kind!r}: rtsp, http-ts or rtmp")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CameraSpec:
        data: dict[str, Any] = json.loads(text)
        media = dict(data["media"])
        if media.get("second_size"):
            media["second_size"] = tuple(media["second_size"])
        rtsp = dict(data["rtsp"])
        rtsp["stalls"] = tuple(Stall(**s) for s in rtsp.get("stalls", ()))
        return cls(media=MediaSpec(**media), kind=data["kind"], rtsp=RtspBehaviour(**rtsp))
