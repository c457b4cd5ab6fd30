"""Encoding a zoo clip once with ffmpeg (libx264/libx265, AAC, G.711, Opus), cached on disk.

No test encodes live: the first use of a spec runs ffmpeg (a few seconds of a small picture),
later uses, in any process or session, find the files in the cache. The cache lives outside
the repository (`$STREAMWARDEN_CACHE` or `$XDG_CACHE_HOME/streamwarden`, then `zoo/<key>/`)
and a file lock keeps two camera processes from encoding the same spec at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.zoo.spec import MediaSpec

_AUDIO_ARGS = {
    "aac": ["-c:a", "aac", "-ar", "16000", "-ac", "1", "-b:a", "32k"],
    "pcma": ["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"],
    "pcmu": ["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"],
    "opus": ["-c:a", "libopus", "-ar", "48000", "-ac", "1", "-b:a", "24k",
             "-frame_duration", "20"],
}


@dataclass(frozen=True)
class MediaFiles:
    """The encoded parts (one MP4 per resolution, in play order) and the audio (MKA) if any."""

    video: tuple[Path, ...]
    audio: Path | None


def cache_root() -> Path:
    base = os.environ.get("STREAMWARDEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "streamwarden")
    return Path(base) / "zoo"


def _video_codec_args(spec: MediaSpec) -> list[str]:
    """Encoder options: fixed GOP (no scene cuts), B-frames always used (no adaptive choice)."""
    gop = spec.gop_frames
    common = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={spec.bframes}:b-adapt=0"
    rate = ["-b:v", f"{spec.bitrate_kbps}k", "-pix_fmt", "yuv420p"]
    if spec.codec == "h264":
        pyramid = "normal" if spec.pyramid else "none"
        return ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
                "-x264-params", f"{common}:b-pyramid={pyramid}", *rate]
    pyramid = 1 if spec.pyramid else 0
    return ["-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1",
            "-x265-params", f"{common}:b-pyramid={pyramid}:log-level=error", *rate]


def _scene(spec: MediaSpec, width: int, height: int) -> str:
    """The lavfi source: the test pattern, or a still scene a box walks into."""
    if spec.scene == "testsrc2":
        return f"testsrc2=size={width}x{height}:rate={spec.fps}:duration={spec.seconds}"
    common = f"rate={spec.fps}:duration={spec.seconds}"
    box_w, box_h = width // 8, height // 3
    at, span = spec.appear_at, spec.seconds - spec.appear_at
    walk = f"(t-{at})/{span}*{width - box_w}"  # from the left edge to the right one
    return (f"color=c=0x404040:size={width}x{height}:{common},"
            f"drawgrid=w={width // 8}:h={height // 6}:t=2:c=0x707070[bg];"
            f"color=c=0xe0e0e0:size={box_w}x{box_h}:{common},noise=alls=30:allf=t[box];"
            f"[bg][box]overlay=x='{walk}':y={height // 3}:eval=frame:"
            f"enable='gte(t,{at})'")


def _encode_video(spec: MediaSpec, size: tuple[int, int], out: Path) -> None:
    width, height = size
    source = _scene(spec, width, height)
    filters = ["-vf", r"select='not(eq(mod(n\,5)\,3))'", "-fps_mode", "vfr"] if spec.vfr else []
    _ffmpeg(["-f", "lavfi", "-i", source, *filters, *_video_codec_args(spec),
             "-threads", "1", "-f", "mp4", str(out)])


def _encode_audio(spec: MediaSpec, out: Path) -> None:
    source = f"sine=frequency=440:sample_rate=48000:duration={spec.loop_seconds}"
    _ffmpeg(["-f", "lavfi", "-i", source, *_AUDIO_ARGS[spec.audio], "-f", "matroska", str(out)])


def _ffmpeg(args: list[str]) -> None:
    result = subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args],
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({' '.join(args)}): {result.stderr.strip()}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_media(spec: MediaSpec, root: Path | None = None) -> MediaFiles:
    """The clip's files, encoded now only if no earlier run left them in the cache."""
    folder = (root or cache_root()) / spec.key()
    sizes = [(spec.width, spec.height)] + ([spec.second_size] if spec.second_size else [])
    files = MediaFiles(
        video=tuple(folder / f"video-{i}.mp4" for i in range(len(sizes))),
        audio=folder / "audio.mka" if spec.audio != "none" else None,
    )
    done = folder / "complete"
    with _locked(folder.with_suffix(".lock")):
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            for size, path in zip(sizes, files.video, strict=True):
                _encode_video(spec, size, path)
            if files.audio is not None:
                _encode_audio(spec, files.audio)
            (folder / "spec.txt").write_text(repr(spec) + "\n")
            done.touch()
    return files
