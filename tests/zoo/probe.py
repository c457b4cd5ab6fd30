"""Independent clients: what ffprobe and ffmpeg see when they read a camera's URL.

The zoo's self-tests and the baseline measurement check cameras with FFmpeg, which shares no
code with GStreamer's RTSP server or with streamwarden.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Packet:
    stream: int
    pts: float | None
    dts: float | None
    keyframe: bool


@dataclass
class Probe:
    streams: list[dict]
    packets: list[Packet]
    log: str  # ffprobe's stderr (at the chosen log level)

    def codecs(self) -> set[str]:
        return {s["codec_name"] for s in self.streams}

    def video(self) -> dict:
        return next(s for s in self.streams if s["codec_type"] == "video")

    def video_index(self) -> int:
        return int(self.video()["index"])

    def video_packets(self) -> list[Packet]:
        return [p for p in self.packets if p.stream == self.video_index()]


def _input_args(url: str, transport: str | None) -> list[str]:
    return (["-rtsp_transport", transport] if transport else []) + ["-i", url]


def _time(value: str | None) -> float | None:
    return None if value in (None, "N/A") else float(value)


def probe(url: str, seconds: float = 2.0, transport: str | None = "tcp",
          level: str = "error", timeout: float = 20) -> Probe:
    """Streams and packets of the first `seconds` of the URL (by stream time)."""
    args = ["ffprobe", "-v", level, "-analyzeduration", "1000000", "-read_intervals",
            f"%+{seconds}", "-show_streams", "-show_packets", "-of", "json"]
    if transport:
        args += ["-rtsp_transport", transport]
    result = subprocess.run([*args, url], capture_output=True, text=True, timeout=timeout)
    data = json.loads(result.stdout or "{}")
    packets = [Packet(int(p["stream_index"]), _time(p.get("pts_time")),
                      _time(p.get("dts_time")), "K" in p.get("flags", ""))
               for p in data.get("packets", [])]
    return Probe(data.get("streams", []), packets, result.stderr)


def capture(url: str, out: Path, seconds: float, transport: str | None = "tcp",
            level: str = "warning") -> str:
    """`ffmpeg -c copy` of the URL into `out` (format from its suffix) for `seconds` of wall
    time; returns ffmpeg's log. Wall time, not stream time: timestamp faults don't shorten it.
    Every packet is flushed as written: ffmpeg stopped by SIGINT drops its unwritten buffer."""
    args = ["ffmpeg", "-nostdin", "-v", level, "-y", *_input_args(url, transport),
            "-map", "0", "-c", "copy", "-flush_packets", "1", str(out)]
    try:
        result = subprocess.run(["timeout", "-s", "INT", str(seconds), *args],
                                capture_output=True, text=True, timeout=seconds + 15)
    except subprocess.TimeoutExpired as error:
        return str(error.stderr or "")
    return result.stderr


def file_packets(path: Path, stream: str = "v") -> list[Packet]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
         "packet=stream_index,pts_time,dts_time,flags", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    return [Packet(int(p["stream_index"]), _time(p.get("pts_time")), _time(p.get("dts_time")),
                   "K" in p.get("flags", ""))
            for p in json.loads(result.stdout or "{}").get("packets", [])]


def capture_all(jobs: list[tuple[str, Path, float, str | None]]) -> list[str]:
    """Several `capture` calls at once (url, out, seconds, transport): wall time, not CPU,
    is what they cost."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: capture(*job), jobs))
