"""The `nvidia` inference path without GStreamer: model calls and the worker process, CPU vs GPU.

A GPU machine may have no GStreamer (the one this project is lent has CUDA, ONNX Runtime's GPU
build and Python, nothing else), so this benchmark drives the parts of the inference path that
need none: the detector the worker builds (`build_detector`, the same spec as
`[inference] backend`), and the worker process itself (`InferenceRunner`: the child process,
shared-memory frame slots, batching) fed with BGR frames as the service's decoders write them.

For each backend it prints the execution providers ONNX Runtime chose, the model time per
frame (batch 1 and the worker's batch), the worker's sustained frames/s over `--streams`
streams at `--fps` each (or as fast as it takes them with `--fps 0`), the result latency, and
whether the GPU's boxes match the CPU's (the same model must find the same objects).

    python bench/gpu_detect.py --backends cpu,nvidia --streams 8 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamwarden.inference.detectors.factory import DetectorSpec, build_detector
from streamwarden.inference.runner import FrameResult, InferenceRunner


def scene(width: int, height: int, index: int) -> np.ndarray:
    """A BGR frame with people in it (scikit-image's astronaut, twice, at two sizes) on a
    plain background, moved a little per index so frames differ."""
    frame = np.full((height, width, 3), 90, np.uint8)
    try:
        from skimage import data

        person = data.astronaut()[:, :, ::-1]  # RGB → BGR
    except ImportError:  # no picture: noise still exercises the model
        return np.random.default_rng(index).integers(0, 255, (height, width, 3), np.uint8)
    import cv2

    for scale, x in ((0.6, 40), (0.3, width // 2)):
        h = int(height * scale)
        small = cv2.resize(person, (h, h))
        shift = (index * 7) % max(1, width // 4)
        x0 = min(width - h, x + shift)
        frame[height - h:, x0:x0 + h] = small
    return frame


def model_timing(spec: DetectorSpec, frames: list[np.ndarray], batch: int) -> dict:
    detector = build_detector(spec)
    detector.detect(frames[:1])  # warm up (CUDA: kernels, memory arena)
    detector.detect(frames[:batch])
    single = []
    for frame in frames:
        start = time.perf_counter()
        detector.detect([frame])
        single.append(time.perf_counter() - start)
    batched = []
    for i in range(0, len(frames) - batch + 1, batch):
        start = time.perf_counter()
        detector.detect(frames[i:i + batch])
        batched.append((time.perf_counter() - start) / batch)
    boxes = detector.detect(frames[:4])
    return {"runtime": getattr(detector, "runtime", type(detector).__name__),
            "warning": getattr(detector, "warning", None),
            "ms_per_frame_batch1_p50": round(statistics.median(single) * 1000, 2),
            "ms_per_frame_batch1_p95": round(sorted(single)[int(0.95 * (len(single) - 1))]
                                             * 1000, 2),
            f"ms_per_frame_batch{batch}_p50": round(statistics.median(batched) * 1000, 2)
            if batched else None,
            "boxes": [[(d.label, round(d.confidence, 3), [round(v, 1) for v in d.box])
                       for d in frame_boxes] for frame_boxes in boxes]}


def worker_throughput(spec: DetectorSpec, frames: list[np.ndarray], streams: int, fps: float,
                      seconds: float, batch: int) -> dict:
    results: list[FrameResult] = []
    lock = threading.Lock()

    def on_result(result: FrameResult) -> None:
        with lock:
            results.append(result)

    runner = InferenceRunner(spec, batch_size=batch, deadline=30.0, memory_limit=8 << 30,
                             motion_gate=False, on_result=on_result)
    runner.ensure_started()
    height, width = frames[0].shape[:2]
    slots = [runner.open_stream(f"s{i}", width * height * 3 * 2) for i in range(streams)]
    time.sleep(1.0)
    started = time.monotonic()
    written = 0
    next_at = started
    while time.monotonic() - started < seconds:
        for i, slot in enumerate(slots):
            frame = frames[(written + i) % len(frames)]
            slot.write(frame.tobytes(), width, height, width * 3, written, time.time())
            runner.frame_written(f"s{i}")
        written += 1
        if fps > 0:
            next_at += 1.0 / fps
            time.sleep(max(0.0, next_at - time.monotonic()))
        else:
            time.sleep(0.001)
    elapsed = time.monotonic() - started
    time.sleep(1.0)
    status = runner.status()
    runner.close()
    with lock:
        called = [r for r in results if r.called]
    latencies = sorted(r.latency for r in called)
    return {"model": status.get("model"), "frames_written": written * streams,
            "frames_detected": len(called),
            "detected_fps": round(len(called) / elapsed, 1),
            "latency_ms_p50": round(statistics.median(latencies) * 1000, 1) if latencies
            else None,
            "latency_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1)
            if latencies else None}


def boxes_agree(a: list, b: list, tolerance: float = 4.0) -> bool:
    """Same labels per frame, boxes within `tolerance` pixels, scores within 0.02."""
    for frame_a, frame_b in zip(a, b, strict=True):
        if len(frame_a) != len(frame_b):
            return False
        for (la, sa, ba), (lb, sb, bb) in zip(sorted(frame_a), sorted(frame_b), strict=True):
            if la != lb or abs(sa - sb) > 0.02 or max(abs(x - y) for x, y in
                                                      zip(ba, bb, strict=True)) > tolerance:
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="cpu,nvidia")
    parser.add_argument("--model", default="nanodet", help="built-in name or an ONNX file")
    parser.add_argument("--size", default="640x360", help="frame size handed to the model "
                        "(the service's [inference] frame_width scales to 640 wide)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--fps", type=float, default=0.0, help="per stream; 0: flat out")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    frames = [scene(width, height, i) for i in range(args.frames)]
    figures: dict = {}
    for backend in args.backends.split(","):
        spec = DetectorSpec(backend=backend, tiles=1)
        if args.model.endswith(".onnx"):
            spec.model_path = args.model
        else:
            from streamwarden.inference.models import BUILTIN_MODELS

            spec.builtin, spec.builtin_model = args.model, str(BUILTIN_MODELS[args.model])
        row = model_timing(spec, frames, args.batch)
        row["worker"] = worker_throughput(spec, frames, args.streams, args.fps, args.seconds,
                                          args.batch)
        figures[backend] = row
        print(json.dumps({backend: {k: v for k, v in row.items() if k != "boxes"}}), flush=True)
    if "cpu" in figures and len(figures) > 1:
        for backend, row in figures.items():
            if backend != "cpu":
                same = boxes_agree(figures["cpu"]["boxes"], row["boxes"])
                print(f"{backend} boxes match cpu: {same}", flush=True)
                row["boxes_match_cpu"] = same
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
