"""Reading recorded files the way an independent player would: ffprobe, the discoverer, stamps."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamwarden.demo.stamp import Stamp, read_stamps
from streamwarden.recording.probe import playable_duration

GOP = 25  # the synthetic cameras' keyframe interval (frames)


@dataclass
class FileInfo:
    path: Path
    duration: float
    start_time: float
    sizes: set[tuple[int, int]]
    codecs: set[str]
    stamps: list[Stamp]

    @property
    def sequences(self) -> list[int]:
        return [s.sequence for s in self.stamps]


def ffprobe(path: Path) -> FileInfo:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"ffprobe rejects {path}: {result.stderr}"
    info = json.loads(result.stdout)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    return FileInfo(
        path=path,
        duration=float(info["format"].get("duration", 0)),
        start_time=float(info["format"].get("start_time", 0)),
        sizes={(s["width"], s["height"]) for s in video},
        codecs={s["codec_name"] for s in info["streams"]},
        stamps=read_stamps(path.read_bytes()),
    )


def decodes_cleanly(path: Path) -> bool:
    result = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                            capture_output=True, text=True, timeout=120)
    return result.returncode == 0 and "error" not in result.stderr.lower()


def discoverer_duration(path: Path) -> float | None:
    """What GStreamer's discoverer (gst-discoverer-1.0's library) makes of the file."""
    return playable_duration(path)


def recorded_files(base: Path, stream_id: str) -> list[Path]:
    return sorted((base / stream_id).glob("*/*.*"))
