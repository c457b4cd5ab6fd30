"""The peer of bench/inference.py: how detection on camera streams is usually written.

One Python process per camera: `cv2.VideoCapture(url)` on OpenCV's FFmpeg backend over
RTSP/TCP, `cap.read()` of every frame (every frame decoded to BGR in full), and every
(FPS/DETECT_FPS)th frame the same detector object streamwarden's worker builds. Optionally
with `ffmpeg -c copy` recording each camera beside it (`naive+rec`), as an operator keeps
footage today.

    .venv/bin/python bench/naive_peer.py URL CALLS   # one camera (the benchmark starts these)
    .venv/bin/python bench/naive_peer.py URL CALLS --detections FILE --spec JSON

`--spec` is the worker's DetectorSpec as JSON (default: what `[inference]` with nothing set
builds, as the service does); `--detections` logs every call's boxes, for detect_quality.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import FPS, Processes
from measure import Client, call_rates, start_per_camera
from record import FfmpegRecorder, stop_and_check

DETECT_FPS = 5  # the rate; the naive client calls the model on every (FPS/5)th frame


def _detector(spec_json: str | None):
    """The detector the service's worker builds: from `spec_json`, else `[inference]` defaults."""
    from streamwarden.config.model import InferenceSection
    from streamwarden.inference.detectors.factory import DetectorSpec, build_detector

    spec = (DetectorSpec(**json.loads(spec_json)) if spec_json
            else DetectorSpec.from_config(InferenceSection()))
    # one process per camera, each on one thread: the peer as it was always measured
    return build_detector(dataclasses.replace(spec, threads=1))


def run_naive(url: str, calls_path: Path, detections_path: Path | None = None,
              spec_json: str | None = None) -> int:
    """Read every frame of `url` with OpenCV, call the detector on every (FPS/5)th one.

    This is the loop found in most tutorials and home-grown NVR scripts. Each model call
    appends one line to `calls_path`: monotonic time (the same clock as the benchmark's,
    system-wide), frames read so far, model latency in s, objects found. One short line five
    times a second costs nothing next to decoding 25 frames. With `detections_path`, each call
    also appends a JSON line: wall time the frame was read and the call done, frames read,
    and the detections (label, score, box 0-1).
    """
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    import cv2

    detector = _detector(spec_json)
    boxes = open(detections_path, "a", buffering=1) if detections_path else None  # noqa: SIM115
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        print(f"naive: cannot open {url}", file=sys.stderr)
        return 1
    every = max(1, round(FPS / DETECT_FPS))
    frames = 0
    with open(calls_path, "a", buffering=1) as calls:  # line-buffered: the parent reads it live
        while True:
            ok, frame = capture.read()
            if not ok:
                print(f"naive: read from {url} failed after {frames} frames", file=sys.stderr)
                return 1
            frames += 1
            if frames % every:
                continue
            read_at = time.time()
            started = time.perf_counter()
            found = detector.detect([frame])[0]
            latency = time.perf_counter() - started
            calls.write(f"{time.monotonic():.6f} {frames} {latency:.6f} {len(found)}\n")
            if boxes is not None:
                boxes.write(json.dumps({"read": read_at, "done": time.time(), "frames": frames,
                                        "detections": [d.to_wire() for d in found]}) + "\n")


# ---- clients --------------------------------------------------------------------------------


class NaiveOpenCV(Client):
    """Peer: one `bench/naive_peer.py URL CALLS` process per camera."""

    name = "naive"
    calls: dict[str, Path]

    @classmethod
    def start(cls, processes: Processes, urls: list[str], camera_port: int,
              args: argparse.Namespace, label: str = "naive") -> NaiveOpenCV:
        root = processes.log_dir / f"{label}-{len(urls)}"
        root.mkdir()
        calls = {f"cam{i}": root / f"cam{i}.calls" for i in range(1, len(urls) + 1)}
        spec = getattr(args, "naive_spec", None)  # DetectorSpec JSON; None: the defaults
        children = start_per_camera(processes, label, urls, lambda i, url: [
            sys.executable, str(Path(__file__).resolve()), url, str(calls[f"cam{i}"]),
            *(["--spec", spec] if spec else []),
        ])
        client = cls(children, camera_port, len(urls))
        client.calls = calls
        return client

    def ready(self) -> bool:
        """Video flows on every connection and every process has called the model once."""
        if not super().ready():
            return False
        return all(path.is_file() and path.stat().st_size > 0 for path in self.calls.values())

    def read_calls(self) -> dict[str, list[tuple[float, int, float, int]]]:
        """Every model call so far per camera: (monotonic s, frames read, latency s, found)."""
        out = {}
        for sid, path in self.calls.items():
            rows = []
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 4:  # a line being written is skipped
                    rows.append((float(parts[0]), int(parts[1]), float(parts[2]),
                                 int(parts[3])))
            out[sid] = rows
        return out


class NaiveWithRecorder(NaiveOpenCV):
    """Peer: the naive loop per camera plus `ffmpeg -c copy` recording it, both counted."""

    name = "naive+rec"
    naive: NaiveOpenCV
    recorder: FfmpegRecorder

    @classmethod
    def start(cls, processes: Processes, urls: list[str], camera_port: int,
              args: argparse.Namespace, label: str = "naive+rec") -> NaiveWithRecorder:
        naive = NaiveOpenCV.start(processes, urls, camera_port, args, label="naive-rec")
        recorder = FfmpegRecorder.start(processes, urls, camera_port, args)
        client = cls(naive.children + recorder.children, camera_port, len(urls))
        client.calls, client.naive, client.recorder = naive.calls, naive, recorder
        return client

    def ready(self) -> bool:
        """Both halves hold their connections and video flows; every loop called the model."""
        return self.naive.ready() and self.recorder.ready()

    def stop_and_check(self, processes: Processes) -> dict[str, Any]:
        """Stop the loops, then the recorders (SIGINT: they finish their segment), read back."""
        processes.stop(self.naive.children)
        return stop_and_check(self.recorder, processes)


# ---- figures from the call logs -------------------------------------------------------------


def _p(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else None


def naive_inference(calls: dict[str, list[tuple[float, int, float, int]]], t0: float,
                    t1: float, count: int) -> dict[str, Any]:
    """Rates and latencies from the model calls each process logged between t0 and t1."""
    seconds = t1 - t0
    window = {sid: [c for c in rows if t0 <= c[0] <= t1] for sid, rows in calls.items()}
    latencies = [c[2] * 1000 for rows in window.values() for c in rows]
    total = sum(len(rows) for rows in window.values())
    read_fps = []
    for rows in window.values():
        if len(rows) >= 2 and rows[-1][0] > rows[0][0]:
            read_fps.append((rows[-1][1] - rows[0][1]) / (rows[-1][0] - rows[0][0]))
        else:
            read_fps.append(0.0)
    per_stream = {sid: round(len(rows) / seconds, 2) for sid, rows in window.items()}
    return {
        **call_rates(total, per_stream, seconds, count),
        "frames_dropped": None,  # it reads every frame; a slow reader falls behind instead
        "decoded_fps_per_stream": round(sum(read_fps) / len(read_fps), 2) if read_fps else None,
        "decoded_fps_min": round(min(read_fps), 2) if read_fps else None,
        "detections_per_call": round(sum(c[3] for rows in window.values() for c in rows)
                                     / total, 2) if total else None,
        "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p95": round(_p(latencies, 0.95), 1) if latencies else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one naive OpenCV detection loop")
    parser.add_argument("url")
    parser.add_argument("calls", type=Path)
    parser.add_argument("--detections", type=Path)
    parser.add_argument("--spec", help="DetectorSpec as JSON (default: [inference] defaults)")
    args = parser.parse_args()
    sys.exit(run_naive(args.url, args.calls, args.detections, args.spec))
