"""Pre-encoded clips for synthetic cameras.

A synthetic camera must not encode live: on a 2-core box a live x264 encoder per camera would
cost more than the service under test. So a short clip is encoded once (cached on disk by its
parameters) and its access units are loaded into memory, from where a camera replays them in a
loop at real-time pace.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from streamwarden.gst.init import Gst

VIDEO_CODECS = ("h264", "h265")


@dataclass(frozen=True)
class ClipSpec:
    """What to encode: picture size, rate, length, codec, and whether to add an AAC track."""

    width: int = 640
    height: int = 360
    fps: int = 25
    seconds: int = 4
    codec: str = "h264"
    gop: int = 25
    audio: bool = False
    pattern: str = "ball"
    bitrate_kbps: int = 800
    image: str | None = None  # a still picture (PNG/JPEG) instead of the test pattern
    # an elementary stream (Annex B, `codec`, width x height at fps) already encoded, served
    # as it is: a scene made elsewhere (bench/detect_quality.py), with no encoding here
    encoded: str | None = None

    def key(self) -> str:
        text = repr(self)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class AccessUnit:
    """One encoded frame (video) or one audio frame, as the camera will send it."""

    data: bytes
    keyframe: bool
    duration_ns: int


@dataclass(frozen=True)
class LoadedClip:
    spec: ClipSpec
    video: tuple[AccessUnit, ...]
    audio: tuple[AccessUnit, ...]

    @property
    def video_caps(self) -> str:
        name = "video/x-h264" if self.spec.codec == "h264" else "video/x-h265"
        return (
            f"{name},stream-format=byte-stream,alignment=au,"
            f"width={self.spec.width},height={self.spec.height},framerate={self.spec.fps}/1"
        )


def default_cache_dir() -> Path:
    base = os.environ.get("STREAMWARDEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "streamwarden"
    )
    return Path(base) / "clips"


_encode_lock = threading.Lock()


def _encoder_description(spec: ClipSpec) -> str:
    if spec.codec == "h264":
        return (
            "x264enc speed-preset=ultrafast tune=zerolatency aud=false bframes=0 "
            f"key-int-max={spec.gop} bitrate={spec.bitrate_kbps} ! h264parse ! "
            "video/x-h264,stream-format=byte-stream,alignment=au"
        )
    if spec.codec == "h265":
        return (
            f"x265enc speed-preset=ultrafast tune=zerolatency key-int-max={spec.gop} "
            f"bitrate={spec.bitrate_kbps} ! h265parse ! "
            "video/x-h265,stream-format=byte-stream,alignment=au"
        )
    raise ValueError(f"unsupported codec {spec.codec!r}; use one of {VIDEO_CODECS}")


def _run_to_eos(description: str) -> None:
    pipeline = Gst.parse_launch(description)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    msg = bus.timed_pop_filtered(
        120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    pipeline.set_state(Gst.State.NULL)
    if msg is None:
        raise RuntimeError(f"encoding timed out: {description}")
    if msg.type == Gst.MessageType.ERROR:
        err, debug = msg.parse_error()
        raise RuntimeError(f"encoding failed: {err.message} ({debug})")


def ensure_clip(spec: ClipSpec, cache_dir: Path | None = None) -> tuple[Path, Path | None]:
    """Encode the clip once and return (video file, audio file or None) from the cache."""
    if spec.encoded:
        return Path(spec.encoded), None
    cache = cache_dir or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    video_path = cache / f"{spec.key()}.{spec.codec}"
    audio_path = cache / f"{spec.key()}.aac" if spec.audio else None
    with _encode_lock:
        if not video_path.exists():
            frames = spec.fps * spec.seconds
            tmp = video_path.with_suffix(".tmp")
            if spec.image:
                # A still photograph (e.g. a person, for detection tests), frozen into a clip.
                source = (f'filesrc location="{spec.image}" ! decodebin ! videoconvert ! '
                          f"videoscale ! imagefreeze num-buffers={frames} ! ")
            else:
                source = f"videotestsrc pattern={spec.pattern} num-buffers={frames} ! "
            _run_to_eos(
                f"{source}"
                f"video/x-raw,format=I420,width={spec.width},height={spec.height},"
                f"framerate={spec.fps}/1 ! timeoverlay ! {_encoder_description(spec)} ! "
                f"filesink location={tmp}"
            )
            tmp.rename(video_path)
        if audio_path is not None and not audio_path.exists():
            tmp = audio_path.with_suffix(".tmp")
            # 1024 samples per AAC frame at 48 kHz; cover the video's length.
            buffers = spec.seconds * 48000 // 1024 + 1
            _run_to_eos(
                f"audiotestsrc wave=sine samplesperbuffer=1024 num-buffers={buffers} ! "
                "audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! "
                f"audio/mpeg,stream-format=adts ! filesink location={tmp}"
            )
            tmp.rename(audio_path)
    return video_path, audio_path


def _read_units(description: str) -> tuple[AccessUnit, ...]:
    pipeline = Gst.parse_launch(description + " ! appsink name=out sync=false")
    sink = pipeline.get_by_name("out")
    pipeline.set_state(Gst.State.PLAYING)
    units: list[AccessUnit] = []
    while True:
        sample = sink.emit("try-pull-sample", 30 * Gst.SECOND)
        if sample is None:
            break
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            continue
        data = bytes(info.data)
        buf.unmap(info)
        units.append(
            AccessUnit(
                data=data,
                keyframe=not buf.has_flags(Gst.BufferFlags.DELTA_UNIT),
                duration_ns=buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0,
            )
        )
    pipeline.set_state(Gst.State.NULL)
    return tuple(units)


def load_clip(spec: ClipSpec, cache_dir: Path | None = None) -> LoadedClip:
    """Encode (once) and load the clip's access units into memory."""
    video_path, audio_path = ensure_clip(spec, cache_dir)
    parser = "h264parse" if spec.codec == "h264" else "h265parse"
    caps = "video/x-h264" if spec.codec == "h264" else "video/x-h265"
    frame_ns = Gst.SECOND // spec.fps
    video = _read_units(
        f"filesrc location={video_path} ! {parser} ! "
        f"{caps},stream-format=byte-stream,alignment=au"
    )
    video = tuple(AccessUnit(u.data, u.keyframe, frame_ns) for u in video)
    if not video or not video[0].keyframe:
        raise RuntimeError(f"clip {video_path} does not start with a keyframe")
    audio: tuple[AccessUnit, ...] = ()
    if audio_path is not None:
        audio = _read_units(f"filesrc location={audio_path} ! aacparse")
        audio = tuple(
            AccessUnit(u.data, True, u.duration_ns or Gst.SECOND * 1024 // 48000) for u in audio
        )
    return LoadedClip(spec=spec, video=video, audio=audio)
