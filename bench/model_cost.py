"""CPU per call of the built-in NanoDet-g, one thread: square vs frame-aspect input, fp32 vs INT8.

    .venv/bin/python bench/model_cost.py                  # 640x360 frame, 50 calls each
    .venv/bin/python bench/model_cost.py --frame 1280x720 --calls 100
    .venv/bin/python bench/model_cost.py --side-by-side     # [inference] threads: calls or threads

For a 16:9 frame (the astronaut on grey, as `bench/inference.py` serves her), each variant is
built as the worker builds it (`build_model`), then timed: `model` is the ONNX Runtime call
alone on the prepared tensor, `detect` the whole `detect()` (letterbox, colour conversion,
the call, decoding and NMS). CPU time is the process's (`time.process_time`), so another
developer's load on the machine inflates wall time, not these figures. `square` is the input
the converter wrote before (the frame letterboxed into 416x416); `wide` the frame's aspect
(416x256 for 16:9), which the built-in runs now.

`--side-by-side` answers how the worker should use two cores: the default detector's model
(widened input) on one session with two threads, one call at a time, against two
single-threaded calls at once from two Python threads (what `[inference] threads = 2` runs).
CPU ms per call and calls per second of wall time, for fp32 and INT8.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamwarden.inference.detectors.factory import DetectorSpec, build_model


def frame_of(width: int, height: int) -> np.ndarray:
    import cv2
    import skimage.data

    person = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    side = height * 5 // 6
    frame = np.full((height, width, 3), 114, np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    frame[top:top + side, left:left + side] = cv2.resize(person, (side, side))
    return frame


def cpu_ms(call, count: int) -> float:
    """Median CPU ms of `count` calls, after three to warm up."""
    for _ in range(3):
        call()
    samples = []
    for _ in range(count):
        start = time.process_time()
        call()
        samples.append((time.process_time() - start) * 1000)
    return statistics.median(samples)


def measure(precision: str, fit: str, frame: np.ndarray, count: int) -> dict[str, object]:
    detector = build_model(DetectorSpec(builtin="nanodet", precision=precision))
    detector.input_fit = fit
    tensor, _ = detector._prepare(frame, False)
    feed = {detector.input_meta.name: tensor[None]}
    model = cpu_ms(lambda: detector._session.run(None, feed), count)
    whole = cpu_ms(lambda: detector.detect([frame]), count)
    found = [d.label for d in detector.detect([frame])[0]]
    return {"variant": f"{fit} {precision}", "input": f"{tensor.shape[2]}x{tensor.shape[1]}",
            "model_ms": model, "detect_ms": whole, "found": found}


def session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def side_by_side(precision: str, frame: np.ndarray, count: int) -> str:
    """One call on two threads vs two one-thread calls at once: CPU per call, calls/s."""
    detector = build_model(DetectorSpec(builtin="nanodet", precision=precision))
    detector.widen = True
    tensor, _ = detector._prepare(frame, True)
    path = detector._session._model_path
    feed = {detector.input_meta.name: tensor[None]}
    lines = []
    for label, threads, callers in (("one call, two threads", 2, 1),
                                    ("two calls, one thread each", 1, 2)):
        run = session(path, threads)
        for _ in range(3):
            run.run(None, feed)

        def calls(run=run) -> None:
            for _ in range(count):
                run.run(None, feed)

        workers = [threading.Thread(target=calls) for _ in range(callers)]
        cpu, wall = time.process_time(), time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        done = count * callers
        lines.append(f"  {precision} {tensor.shape[2]}x{tensor.shape[1]} {label:<27} "
                     f"{cpu * 1000 / done:6.1f} CPU ms/call  {done / wall:5.1f} calls/s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame", default="640x360", help="WxH of the test frame")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per variant")
    parser.add_argument("--side-by-side", action="store_true",
                        help="two threads in one call vs two one-thread calls at once")
    args = parser.parse_args()
    width, height = (int(v) for v in args.frame.split("x"))
    frame = frame_of(width, height)
    if args.side_by_side:
        print(f"the model on two cores, {width}x{height} frame, {args.calls} calls per caller:")
        for precision in ("fp32", "int8"):
            print(side_by_side(precision, frame, args.calls))
        return 0
    rows = [measure(p, f, frame, args.calls) for p, f in
            (("fp32", "square"), ("fp32", "aspect"), ("int8", "square"), ("int8", "aspect"))]
    base = rows[0]["model_ms"]
    print(f"model cost, one thread, {width}x{height} frame, median of {args.calls} calls "
          "(CPU ms):")
    for r in rows:
        print(f"  {r['variant']:<13} input {r['input']:<8} model {r['model_ms']:6.1f} ms "
              f"({r['model_ms'] / base:4.2f}x)  detect() {r['detect_ms']:6.1f} ms  "
              f"found {r['found']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
