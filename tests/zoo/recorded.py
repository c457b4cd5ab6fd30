"""What a recorded file holds, as independent players see it: frames kept (stamps), frames a
decoder and a player get out of it, timestamp order, reordering kept, audio.

Used to measure a recorder against the zoo: the stamps say which frames the camera sent are
in the file; ffprobe/ffmpeg say what of that a player can use.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamwarden.demo.stamp import read_stamps


@dataclass(frozen=True)
class FileReport:
    path: str
    duration: float
    stamps: int  # frames in the file (stamped access units)
    first: int | None  # first / last sequence number
    last: int | None
    missing: int  # numbers absent between first and last
    disordered: int  # stamps smaller than the one before (in file order)
    decoded: int  # frames the decoder put out (ffprobe -show_frames)
    played: int  # frames ffmpeg passes on to its output (default frame-rate handling)
    decode_errors: int  # lines ffmpeg logged at error level while decoding
    reordered: int  # video packets with pts != dts (B-frames kept as such)
    dts_backwards: int  # video packets whose DTS is not above the one before
    pts_jitter_ms: float  # worst frame interval's distance from the typical one
    sizes: tuple[str, ...]
    audio: str  # audio codec in the file, or "-"
    audio_packets: int
    error_sample: tuple[str, ...] = ()  # the first distinct error lines
    pts_backwards: int = 0  # decoded frames (output order) whose PTS is not above the one before
    pts_irregular: int = 0  # display intervals (sorted PTS) more than 1 ms off the typical one
    steps: tuple[float, ...] = ()  # the display intervals themselves (s), in display order


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _probe(path: Path) -> dict:
    result = _run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-show_entries",
                   "packet=stream_index,pts_time,dts_time:frame=media_type,width,height,pts_time",
                   "-of", "json", str(path)])
    info = json.loads(result.stdout or "{}")
    mixed = info.pop("packets_and_frames", [])  # both asked for: one list, in file order
    info["packets"] = [e for e in mixed if e.get("type") == "packet"]
    info["frames"] = [e for e in mixed if e.get("type") == "frame"]
    return info


def _played(path: Path) -> tuple[int, list[str]]:
    """(frames ffmpeg outputs when playing the file to a null sink, its error lines)."""
    result = _run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
                   "-f", "null", "-", "-progress", "pipe:1"])
    frames = re.findall(r"^frame=(\d+)$", result.stdout, re.MULTILINE)
    return (int(frames[-1]) if frames else 0), result.stderr.strip().splitlines()


def stamps_in(path: Path, codec: str) -> list[int]:
    """Sequence numbers of the file's video frames. Read from the elementary stream ffmpeg
    extracts (in MPEG-TS a stamp can straddle two 188-byte packets) or, where ffmpeg can't
    extract it (no parameter sets anywhere), from the raw bytes: whichever finds more."""
    raw = "hevc" if codec == "hevc" else "h264"
    result = subprocess.run(["ffmpeg", "-nostdin", "-v", "quiet", "-i", str(path), "-map",
                             "0:v:0", "-c", "copy", "-f", raw, "-"],
                            capture_output=True, timeout=120)
    extracted = [s.sequence for s in read_stamps(result.stdout)]
    scanned = [s.sequence for s in read_stamps(path.read_bytes())]
    return extracted if len(extracted) >= len(scanned) else scanned


def _off_typical(pts: list[float | None]) -> list[float]:
    """Each display interval's distance from the typical (median) one, in seconds."""
    ordered = sorted(p for p in pts if p is not None)
    steps = sorted(b - a for a, b in itertools.pairwise(ordered))
    if not steps:
        return []
    typical = steps[len(steps) // 2]
    return [abs(s - typical) for s in steps]


def display_steps(pts: list[float | None]) -> tuple[float, ...]:
    """The file's display intervals (s): its PTS sorted, each minus the one before."""
    ordered = sorted(p for p in pts if p is not None)
    return tuple(b - a for a, b in itertools.pairwise(ordered))


def pts_jitter_ms(pts: list[float | None]) -> float:
    """Largest distance of a frame interval from the typical one (ms): 0 for a camera's
    exact timestamps, more where a receiver re-stamped frames by arrival."""
    return round(1000 * max(_off_typical(pts), default=0.0), 1)


def pts_irregular(pts: list[float | None], tolerance: float = 0.001) -> int:
    """How many display intervals are more than `tolerance` s off the typical one: frames
    whose presentation times a recorder made up (e.g. squeezed together at a file's start)."""
    return sum(off > tolerance for off in _off_typical(pts))


def backwards(values: list[float | None]) -> int:
    """Steps that do not go up (None skipped): a decode order or display order broken."""
    valid = [v for v in values if v is not None]
    return sum(b <= a for a, b in itertools.pairwise(valid))


def decoded_in_sequence(paths: list[Path]) -> int:
    """Frames ffmpeg decodes from the files played one after the other (concat demuxer): a
    file that starts at an open GOP's keyframe decodes its leading pictures only this way."""
    listing = paths[0].parent / "concat.txt"
    listing.write_text("".join(f"file '{path}'\n" for path in paths))
    result = subprocess.run(["ffprobe", "-v", "error", "-f", "concat", "-safe", "0",
                             "-select_streams", "v:0", "-count_frames", "-show_entries",
                             "stream=nb_read_frames", "-of", "csv=p=0", str(listing)],
                            capture_output=True, text=True, timeout=60)
    return int(result.stdout.strip().strip(","))


def _times(packets: list[dict], key: str) -> list[float | None]:
    return [None if p.get(key) in (None, "N/A") else float(p[key]) for p in packets]


def analyse(path: Path) -> FileReport:
    info = _probe(path)
    streams = info.get("streams", [])
    video = [s for s in streams if s["codec_type"] == "video"]
    audio = [s for s in streams if s["codec_type"] == "audio"]
    vindex = video[0]["index"] if video else -1
    packets = [p for p in info.get("packets", []) if p["stream_index"] == vindex]
    pts, dts = _times(packets, "pts_time"), _times(packets, "dts_time")
    frames = [f for f in info.get("frames", []) if f.get("media_type") == "video"]
    seqs = stamps_in(path, video[0]["codec_name"]) if video else []
    played, errors = _played(path)
    return FileReport(
        path=path.name,
        duration=float(info.get("format", {}).get("duration", 0) or 0),
        stamps=len(seqs), first=min(seqs, default=None), last=max(seqs, default=None),
        missing=(max(seqs) - min(seqs) + 1 - len(set(seqs))) if seqs else 0,
        disordered=sum(b < a for a, b in itertools.pairwise(seqs)),
        decoded=len(frames),
        played=played, decode_errors=len(errors),
        error_sample=tuple(dict.fromkeys(re.sub(r" @ 0x[0-9a-f]+", "", e) for e in errors))[:3],
        reordered=sum(p != d for p, d in zip(pts, dts, strict=True)
                      if p is not None and d is not None),
        dts_backwards=backwards(dts),
        pts_jitter_ms=pts_jitter_ms(pts),
        pts_irregular=pts_irregular(pts),
        steps=display_steps(pts),
        pts_backwards=backwards(_times(frames, "pts_time")),
        sizes=tuple(sorted({f"{f['width']}x{f['height']}" for f in frames})),
        audio=audio[0]["codec_name"] if audio else "-",
        audio_packets=sum(1 for p in info.get("packets", []) if audio
                          and p["stream_index"] == audio[0]["index"]),
    )
