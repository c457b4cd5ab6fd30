"""record.py's zoo cameras: a B-frame H.264 camera and an H.265 camera, and reading back
what each client recorded from them as a player sees it.

The cameras are the test zoo's RTSP camera (tests/zoo: GStreamer's RTSP server library
replaying a clip x264/x265 encoded once and cached), one process with N mounts, each mount an
independent camera stamping its own sequence numbers. The clip matches the demo camera's
(1280x720, 25 fps, 4 s loop, GOP 25, 800 kbit/s) so CPU figures compare across cameras.

Every recorded file is read back with ffprobe/ffmpeg (tests/zoo/recorded.py, the conformance
tests' reader): frames held, frames decoded, decode errors, decode-order and display-order
monotonicity, B-frames kept (PTS ≠ DTS); and each stream's files are decoded once more in
sequence (concat), where an open GOP's leading pictures decode.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import CLIP_SECONDS, FPS, GOP, HEIGHT, REPO, WIDTH, Child, Processes, await_ready
from measure import COMMON_LEFT, COMMON_RIGHT, RECORDED_COLUMNS, Column, fmt
from record_figures import (
    file_totals,
    findings_summary,
    log_findings,
    pct,
    reordered_share,
)

sys.path.insert(0, str(REPO))  # tests.zoo: the zoo lives with the tests

from tests.zoo.media import ensure_media
from tests.zoo.probe import file_packets
from tests.zoo.recorded import analyse, decoded_in_sequence
from tests.zoo.spec import CameraSpec, MediaSpec

BITRATE_KBPS = 800  # the demo camera's default
SEGMENT_GLOB = "**/*.mp4"


def _media(codec: str, bframes: int) -> MediaSpec:
    return MediaSpec(codec=codec, width=WIDTH, height=HEIGHT, fps=FPS, seconds=CLIP_SECONDS,
                     gop_seconds=GOP / FPS, bframes=bframes, bitrate_kbps=BITRATE_KBPS)


CAMERAS: dict[str, CameraSpec] = {
    "bframes": CameraSpec(media=_media("h264", 2)),
    "h265": CameraSpec(media=_media("h265", 2)),
}
DESCRIPTIONS = {
    "bframes": "H.264 High with 2 B-frames (x264 b-adapt=0)",
    "h265": "H.265 Main with 2 B-frames (x265, its default open GOP)",
}


def source_facts(kind: str) -> dict[str, Any]:
    """The camera's clip (encoded now if no earlier run cached it): its codec and the share of
    its frames sent with PTS ≠ DTS, which a recording that keeps B-frames matches."""
    spec = CAMERAS[kind]
    packets = file_packets(ensure_media(spec.media).video[0])
    return {"camera": kind, "description": DESCRIPTIONS[kind], "codec": spec.media.codec,
            "bframes": spec.media.bframes,
            "reordered_pct": reordered_share([p.pts for p in packets], [p.dts for p in packets])}


def start_zoo_camera(processes: Processes, port: int, count: int, kind: str,
                     timeout: float) -> Child:
    """One zoo RTSP camera process with mounts /cam1../camN (as the demo camera's URLs)."""
    args = [sys.executable, "-m", "tests.zoo.rtsp_camera", "--port", str(port),
            "--spec", CAMERAS[kind].to_json()]
    for i in range(1, count + 1):
        args += ["--path", f"/cam{i}"]
    camera = processes.start(f"zoo-{kind}-{count}", args, stdout=subprocess.PIPE)
    return await_ready(camera, timeout, f"zoo camera {kind} with {count} mounts")


def _stream_files(directory: Path) -> dict[str, Any]:
    paths = sorted(directory.glob(SEGMENT_GLOB)) if directory.is_dir() else []
    with ThreadPoolExecutor(max_workers=2) as pool:  # ffprobe/ffmpeg decode: 2 at a time
        reports = [dataclasses.asdict(r) for r in pool.map(analyse, paths)]
    return {"files": reports,
            "decoded_in_sequence": decoded_in_sequence(paths) if paths else 0}


def inspect_recordings(recordings: dict[str, Path], logs: list[Path], client: str
                       ) -> dict[str, Any]:
    """Every file of every stream read back, added up; the client's complaint lines counted."""
    streams = {sid: _stream_files(path) for sid, path in recordings.items()}
    files = [f for s in streams.values() for f in s["files"]]
    totals = file_totals(files)
    in_sequence = sum(s["decoded_in_sequence"] for s in streams.values())
    counts: Counter[str] = Counter()
    for log in logs:
        counts += log_findings(log.read_text(errors="replace"), client)
    return {**totals, "decoded_in_sequence": in_sequence,
            "decodable_in_sequence_pct": pct(in_sequence, totals["frames"]),
            **findings_summary(counts), "streams": streams}


# ---- output ---------------------------------------------------------------------------------


def _files(key: str, spec: str = "{}") -> Any:
    return lambda n, c, r: fmt(r.get("files", {}).get(key), spec)


COLUMNS: tuple[Column, ...] = (
    *COMMON_LEFT,
    ("PSS MiB", 7, lambda n, c, r: fmt(r.get("pss_mib") or None, "{:.0f}")),
    ("fps/str", 7, lambda n, c, r: fmt(r.get("fps_per_stream"), "{:.2f}")),
    *RECORDED_COLUMNS,
    ("decoded", 7, _files("decoded")),
    ("dec %", 5, _files("decodable_pct", "{:.1f}")),
    ("seq %", 5, _files("decodable_in_sequence_pct", "{:.1f}")),
    ("dec err", 7, _files("decode_errors")),
    ("dts↓", 4, _files("dts_backwards")),
    ("pts↓", 4, _files("pts_backwards")),
    ("pts odd", 7, _files("pts_irregular")),
    ("pts≠dts%", 8, _files("reordered_pct", "{:.1f}")),
    ("log", 4, _files("log_lines")),
    ("retries", 7, lambda n, c, r: fmt(r.get("retries"), "{}")),
    *COMMON_RIGHT,
)


def header(kind: str, facts: dict[str, Any], segment_s: float) -> str:
    return (f"camera {kind}: {DESCRIPTIONS[kind]}, {WIDTH}x{HEIGHT}@{FPS}, GOP {GOP}, "
            f"{BITRATE_KBPS} kbit/s (tests/zoo RTSP camera); {facts['reordered_pct']}% of its "
            f"frames are sent with PTS ≠ DTS; {segment_s:g}s MP4 segments; decoded..log: "
            f"every file read back with ffprobe/ffmpeg (seq %: each stream's files decoded "
            f"in sequence)")


def held(result: dict[str, Any]) -> str:
    """One client's files in words: frames kept, and of those how many a player decodes."""
    rec, files = result.get("recordings"), result.get("files")
    if not rec or not files:
        return "not checked"
    kept = ("every frame recorded" if rec["lossless"] else
            f"LOST {rec['missing']} frame(s), {rec['repeated']} repeated, "
            f"{rec['bad_files']} bad file(s)")
    if rec["first_sequence_max"]:
        kept += f" from camera frame {rec['first_sequence_max']} on"
    return (f"{kept}; {files['decoded']} of {files['frames']} decode "
            f"({fmt(files['decodable_pct'], '{}')}%, in sequence "
            f"{fmt(files['decodable_in_sequence_pct'], '{}')}%), {files['decode_errors']} "
            f"decode error line(s), PTS≠DTS {fmt(files['reordered_pct'], '{}')}%, "
            f"{files['log_lines']} complaint line(s) in its log")


def verdicts(runs: list[dict[str, Any]], clients: tuple[str, ...]) -> str:
    lines = []
    for run in runs:
        ours, theirs = (run["clients"].get(c, {}) for c in clients)
        cpu = run["ratios"]["cpu_per_stream"].get("streamwarden/ffmpeg")
        head = f"N={run['streams']:<3}"
        if cpu is not None:
            head += (f" streamwarden/ffmpeg cpu/stream {cpu:.2f}x "
                     f"({ours['cpu_pct_per_stream']:.2f}% vs {theirs['cpu_pct_per_stream']:.2f}%);")
        lines.append(f"{head}\n  streamwarden: {held(ours)}\n  ffmpeg: {held(theirs)}")
        for name in clients:
            kinds = run["clients"].get(name, {}).get("files", {}).get("log_kinds", {})
            for text, count in list(kinds.items())[:3]:
                lines.append(f"  {name} log x{count}: {text}")
    return "\n".join(lines)
