"""Inference benchmark: N 720p25 cameras, person detection at 5 fps each, on the CPU.

    .venv/bin/python bench/inference.py --streams 1,4,8 --duration 20 --warmup 8

For each N, one camera server with N mounts of a pre-encoded 1280x720 25 fps clip of a person
(scikit-image's astronaut photograph, padded to 16:9 so the detector sees her undistorted) is
started. Then, one after the other (never at the same time: on 2 cores they would take CPU
from each other):

- `streamwarden`: `python -m streamwarden run`, every stream `enable_inference = true` and
  `enable_recording = true`, `[inference] fps = 5`, the built-in detector. Measured: the
  service process and its inference worker process (pid from `GET /inference`), separately
  and together; model latency and frame counters from `GET /health`. After the window the
  service is stopped and every recorded file is read back (bench/verify.py): inference must
  not cost the recording a single frame.
- `naive`: the way it is usually written (bench/naive_peer.py): one Python process per
  camera, `cv2.VideoCapture(url)` on OpenCV's FFmpeg backend over RTSP/TCP,
  `cap.read()` of every frame (so every frame is decoded to BGR in full), and every 5th
  frame (5 fps) the same detector object streamwarden's worker builds, so the model and its
  pre/post-processing are identical. It records nothing.
- `naive+rec` (optional, `--clients streamwarden,naive,naive+rec`): what an operator runs
  today to detect *and* keep the footage: the naive loop plus an `ffmpeg -c copy` segment
  recorder per camera (bench/record.py's peer), so two camera connections each. Its
  recordings are read back like streamwarden's.

- `sw-sub` (optional): streamwarden with a detection sub-stream per camera: a second camera
  server with N mounts of the same person at 640x360 (`detect_uri`), the 720p main stream
  recorded. The sub-stream runs at 25 fps like the main one unless `--sub-fps` says
  otherwise (cameras let the sub-stream's rate be set; Frigate advises the detection rate).
  Target (issue #14): CPU per detected frame <= 0.5x `naive+rec`, no frame lost.
- `sw-still` (optional): streamwarden with the activity gate on (the default) on the same
  person clip, which is a still scene (a still photograph; only the clock overlay changes):
  keyframes alone are decoded. Compared per stream with `sw-rec-only` (ingest + record, no
  inference). Target: CPU per stream <= 1.5x ingest + record alone.
- `sw-rec-only` (optional): streamwarden recording every stream, no inference: the floor.

`streamwarden` and `sw-sub` run with `[inference] activity_gate = false`, so every client
that is compared per detected frame offers the model 5 frames a second of the still scene
(with the gate they would decode one a second and their figures would not compare).

`--capacity` searches, per client, the largest N at which every stream is detected at its
rate (>= 90 % of 5/s on the slowest stream) and every frame is recorded: N doubles until a
run fails, then bisects. Long: meant for a quiet machine.

The key figure is CPU per detected frame: the client's CPU (% of one core, all its
processes) divided by its model calls per second. Lower is cheaper.

Results: a table on stdout and JSON in bench/results/inference-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    FPS,
    GOP,
    HEIGHT,
    WIDTH,
    BenchError,
    Child,
    Processes,
    camera_urls,
    check_alive,
    code_line,
    comma_list,
    environment,
    free_port,
    interrupt_on_signals,
    merge,
    missing_tools,
    read_extra_config,
    run_in_workspace,
    save_results,
    start_camera,
    wait_until,
)
from inference_capacity import largest_count
from measure import (
    COMMON_RIGHT,
    Column,
    Streamwarden,
    call_rates,
    each_client,
    fmt,
    measure,
    table,
    thread_summary,
)
from naive_peer import DETECT_FPS, NaiveOpenCV, NaiveWithRecorder, naive_inference
from record import RecordingStreamwarden, stop_and_check

CLIENTS = ("streamwarden", "naive")
# Optional: sw-no-rec, streamwarden detecting without recording (enable_recording = false,
# buffer_duration = "0s"), to tell what the recording costs; naive+rec, the naive loop plus an
# ffmpeg -c copy recorder per camera, the peer that also keeps the footage.
EXTRA_CLIENTS = ("sw-no-rec", "naive+rec", "sw-sub", "sw-still", "sw-rec-only")
SUB_SIZE = (640, 360)  # the detection sub-stream of `sw-sub`


# ---- the picture ----------------------------------------------------------------------------


def person_picture(width: int = WIDTH, height: int = HEIGHT) -> Path:
    """scikit-image's astronaut padded (grey) to `width`x`height`, written once to the cache.

    The camera would stretch the square photograph to 16:9, and the detector scores the
    stretched person about 0.5, below the built-in threshold (0.7): no detections at all.
    Padded, she scores about 0.95, so both clients find a person on every call, as a real
    camera with someone in view would. A fixed path keeps the camera's encoded clip cached.
    """
    import cv2
    import skimage

    from streamwarden.demo.clip import default_cache_dir

    target = default_cache_dir().parent / "bench" / f"astronaut-{width}x{height}.png"
    if target.is_file():
        return target
    source = cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png"))
    if source is None:
        raise BenchError("scikit-image's astronaut.png is missing (run scripts/setup.sh)")
    side = min(width, height)
    square = cv2.resize(source, (side, side), interpolation=cv2.INTER_AREA)
    left = (width - side) // 2
    padded = cv2.copyMakeBorder(square, (height - side) // 2, (height - side + 1) // 2, left,
                                width - side - left, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.png")
    cv2.imwrite(str(partial), padded)
    partial.replace(target)
    return target


# ---- clients --------------------------------------------------------------------------------


class InferenceStreamwarden(RecordingStreamwarden):
    """The service: every stream recording and detecting; its worker counted as its own."""

    name = "streamwarden"
    worker_pid: int | None = None
    recording = True

    @classmethod
    def start(cls, processes: Processes, urls: list[str], camera_port: int,
              args: argparse.Namespace, recording: bool = True, tag: str = "",
              gate: bool = False, detect_urls: list[str] | None = None
              ) -> InferenceStreamwarden:
        root = processes.log_dir / f"streamwarden-{len(urls)}{'' if recording else '-norec'}{tag}"
        config = merge({
            "app": {"database": str(root / "streamwarden.db")},
            "recording": {"base_path": str(root / "recordings"), "format": "mp4",
                          "segment_duration": f"{args.segment_duration:g}s"},
            "inference": {"fps": DETECT_FPS, "activity_gate": gate},
            # Not recording also means no pre-event ring: otherwise a recorder consumer still
            # takes every frame through Python to hold the last 10 s, as when recording.
            **({} if recording else {"stream_defaults": {"buffer_duration": "0s"}}),
        }, args.extra)
        root.mkdir()
        overrides = {f"cam{i}": {"detect_uri": url}
                     for i, url in enumerate(detect_urls or [], 1)}
        client = cls.launch(processes, urls, camera_port, config,
                            {"enable_recording": recording, "enable_inference": True},
                            overrides)
        client.recording = recording
        base = Path(config["recording"]["base_path"])
        client.recordings = {f"cam{i}": base / f"cam{i}" for i in range(1, len(urls) + 1)}
        return client

    @property
    def pids(self) -> list[int]:
        """The service, then its worker: both are what inference costs."""
        return [c.pid for c in self.children] + ([self.worker_pid] if self.worker_pid else [])

    def ready(self) -> bool:
        """Every stream records, the worker runs, and the model has seen every stream."""
        if not (super().ready() if self.recording else Streamwarden.ready(self)):
            return False
        status = self.get("/inference")
        if status.get("state") != "running" or not status.get("worker_pid"):
            return False
        self.worker_pid = int(status["worker_pid"])
        health = self.get("/health")
        return all((h.get("inference") or {}).get("model_calls", 0) > 0 for h in health)

    def inference_counters(self) -> dict[str, dict[str, Any]]:
        """Each stream's `inference` block of /health (counters since start, last latencies)."""
        return {h["id"]: h.get("inference") or {} for h in self.get("/health")}

    def final(self) -> dict[str, Any]:
        status = self.get("/inference")
        return {**super().final(), "worker_restarts": status.get("restarts"),
                "worker_pid_end": status.get("worker_pid")}


# ---- inference figures over the window ------------------------------------------------------


def service_inference(before: tuple[float, dict[str, dict[str, Any]]],
                      after: tuple[float, dict[str, dict[str, Any]]], count: int
                      ) -> dict[str, Any]:
    """Rates from /health's counters at both edges; latencies are the service's last 200."""
    (t0, h0), (t1, h1) = before, after
    seconds = t1 - t0

    def delta(key: str) -> int:
        return sum(h1[s].get(key, 0) - h0.get(s, {}).get(key, 0) for s in h1)

    calls = delta("model_calls")
    per_stream_calls = {s: round((h1[s].get("model_calls", 0) - h0.get(s, {}).get(
        "model_calls", 0)) / seconds, 2) for s in h1}
    p50 = [h["latency_ms_p50"] for h in h1.values() if h.get("latency_ms_p50") is not None]
    p95 = [h["latency_ms_p95"] for h in h1.values() if h.get("latency_ms_p95") is not None]
    ages = [h["result_age_ms_p95"] for h in h1.values() if h.get("result_age_ms_p95")]
    return {
        **call_rates(calls, per_stream_calls, seconds, count),
        "frames_submitted": delta("frames_submitted"),
        "frames_seen": delta("frames_seen"),
        "frames_dropped": delta("frames_dropped"),
        "decoded_fps_per_stream": round(delta("decoded") / seconds / count, 2),
        "detections_per_call": round(delta("detections") / calls, 2) if calls else None,
        # Per stream over its last 200 calls (the service keeps no more); the table shows
        # the median of the streams' medians and the worst stream's p95.
        "latency_ms_p50": round(statistics.median(p50), 1) if p50 else None,
        "latency_ms_p95": max(p95) if p95 else None,
        "result_age_ms_p95": max(ages) if ages else None,
        "health_end": h1,
    }


def key_figures(result: dict[str, Any], count: int) -> dict[str, Any]:
    """CPU per detected frame (per model call per second), and the service/worker split."""
    out: dict[str, Any] = {}
    calls = result.get("calls_per_s")
    out["cpu_pct_per_call_per_s"] = round(result["cpu_pct"] / calls, 3) if calls else None
    by_pid = result.get("cpu_pct_by_pid", {})
    rss = result.get("rss_mib_by_pid", {})
    pids = list(by_pid)
    if result.get("client") in ("streamwarden", "sw-no-rec", "sw-sub", "sw-still") \
            and len(pids) == 2:
        out.update(service_cpu_pct=by_pid[pids[0]], worker_cpu_pct=by_pid[pids[1]],
                   service_rss_mib=rss.get(pids[0]), worker_rss_mib=rss.get(pids[1]))
    return out


# ---- the run --------------------------------------------------------------------------------


def sub_camera(processes: Processes, count: int, args: argparse.Namespace
               ) -> tuple[Child, list[str]]:
    """The second camera server of `sw-sub`: the same person at 640x360, N mounts, at
    `--sub-fps` (a keyframe a second, like the main stream)."""
    port = free_port()
    camera = start_camera(processes, port, count, args.camera_timeout,
                          image=person_picture(*SUB_SIZE), name=f"subcam-{count}",
                          size=SUB_SIZE, fps=args.sub_fps, gop=args.sub_fps)
    return camera, camera_urls(port, count)


def start_client(name: str, processes: Processes, camera_port: int, urls: list[str],
                 args: argparse.Namespace, detect_urls: list[str] | None
                 ) -> InferenceStreamwarden | RecordingStreamwarden | NaiveOpenCV:
    if name in ("streamwarden", "sw-no-rec"):
        return InferenceStreamwarden.start(processes, urls, camera_port, args,
                                           recording=name == "streamwarden")
    if name in ("sw-sub", "sw-still"):
        return InferenceStreamwarden.start(processes, urls, camera_port, args, tag=f"-{name}",
                                           gate=name == "sw-still", detect_urls=detect_urls)
    if name == "sw-rec-only":
        return RecordingStreamwarden.start(processes, urls, camera_port, args, tag="-rec-only")
    if name == "naive+rec":
        return NaiveWithRecorder.start(processes, urls, camera_port, args)
    return NaiveOpenCV.start(processes, urls, camera_port, args)


def bench_client(name: str, processes: Processes, camera: Child, camera_port: int,
                 urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Start one client on all N streams, warm up, measure, then (streamwarden) check files."""
    sub, detect_urls = sub_camera(processes, len(urls), args) if name == "sw-sub" else (None, None)
    try:
        return _bench_started(name, processes, camera, urls, args,
                              start_client(name, processes, camera_port, urls, args,
                                           detect_urls))
    finally:
        if sub is not None:
            processes.stop([sub])


def _bench_started(name: str, processes: Processes, camera: Child, urls: list[str],
                   args: argparse.Namespace,
                   client: InferenceStreamwarden | RecordingStreamwarden | NaiveOpenCV
                   ) -> dict[str, Any]:
    count = len(urls)
    try:
        wait_until(client.ready, args.ready_timeout, f"{name}: {count} streams detecting")
        time.sleep(args.warmup)
        if isinstance(client, InferenceStreamwarden):
            before = (time.monotonic(), client.inference_counters())
            figures = measure(client, camera, args.duration)
            after = (time.monotonic(), client.inference_counters())
            figures.update(service_inference(before, after, count))
        elif isinstance(client, NaiveOpenCV):
            t0 = time.monotonic()
            figures = measure(client, camera, args.duration)
            t1 = time.monotonic()
            check_alive(client.children)
            figures.update(naive_inference(client.read_calls(), t0, t1, count))
        else:  # recording alone: the floor of the still scene
            figures = measure(client, camera, args.duration)
    except (BenchError, OSError, ValueError, KeyError) as exc:  # or an API/proc read failed
        processes.stop(client.children)  # the run goes on; Ctrl-C is main's to clean up
        if isinstance(exc, BenchError):
            raise
        raise BenchError(f"{name}: {exc!r}") from exc
    figures["client"] = name
    figures.update(key_figures(figures, count))
    if (isinstance(client, InferenceStreamwarden) and client.recording) or \
            type(client) is RecordingStreamwarden:
        figures["recordings"] = stop_and_check(client, processes)
    elif isinstance(client, NaiveWithRecorder):
        figures["recordings"] = client.stop_and_check(processes)
    else:
        figures["exit_codes"] = sorted(set(processes.stop(client.children).values()))
    return figures


def bench_count(count: int, processes: Processes, picture: Path, args: argparse.Namespace
                ) -> dict[str, Any]:
    """One camera server with `count` mounts of the person clip, then each client in turn."""
    results = each_client(count, processes, args, bench_client, image=picture)
    theirs = results.get("naive", {}).get("cpu_pct_per_call_per_s")
    ratios = {}
    for name in ("streamwarden", *EXTRA_CLIENTS):
        ours = results.get(name, {}).get("cpu_pct_per_call_per_s")
        ratios[f"{name}/naive"] = round(ours / theirs, 3) if ours and theirs else None
    both = results.get("naive+rec", {}).get("cpu_pct_per_call_per_s")
    for name in ("streamwarden", "sw-sub"):
        ours = results.get(name, {}).get("cpu_pct_per_call_per_s")
        ratios[f"{name}/naive+rec"] = round(ours / both, 3) if ours and both else None
    still = results.get("sw-still", {}).get("cpu_pct_per_stream")
    floor = results.get("sw-rec-only", {}).get("cpu_pct_per_stream")
    ratios["sw-still/sw-rec-only"] = round(still / floor, 3) if still and floor else None
    return {"streams": count, "clients": results, "sub_fps": args.sub_fps,
            "ratios": {"cpu_per_call": ratios["streamwarden/naive"], **ratios}}


# ---- output ---------------------------------------------------------------------------------


def _get(key: str, spec: str = "{}") -> Any:
    return lambda n, c, r: fmt(r.get(key), spec)


def _rec_lost(n: int, c: str, r: dict[str, Any]) -> str:
    """Frames missing or repeated in the files; `!` if a file is bad or a stream empty."""
    rec = r.get("recordings")
    if not rec:
        return "-"
    broken = "!" if rec["bad_files"] or rec["streams_empty"] else ""
    return f"{rec['missing'] + rec['repeated']}{broken}"


COLUMNS: tuple[Column, ...] = (
    ("N", 3, lambda n, c, r: str(n)),
    ("client", 12, lambda n, c, r: c),
    ("cpu%", 6, _get("cpu_pct", "{:.1f}")),
    ("svc%", 5, _get("service_cpu_pct", "{:.1f}")),
    ("wkr%", 5, _get("worker_cpu_pct", "{:.1f}")),
    ("cpu%/str", 8, _get("cpu_pct_per_stream", "{:.2f}")),
    ("det/s/str", 9, _get("det_fps_per_stream", "{:.2f}")),
    ("min", 4, _get("det_fps_min", "{:.1f}")),
    ("cpu%/det/s", 10, _get("cpu_pct_per_call_per_s", "{:.2f}")),
    ("lat p50", 7, _get("latency_ms_p50", "{:.1f}")),
    ("p95 ms", 6, _get("latency_ms_p95", "{:.1f}")),
    ("dropped", 7, _get("frames_dropped")),
    ("dec/s/str", 9, _get("decoded_fps_per_stream", "{:.1f}")),
    ("person/call", 11, _get("detections_per_call", "{:.2f}")),
    ("RSS MiB", 7, _get("rss_mib", "{:.0f}")),
    ("svc/wkr", 7, lambda n, c, r: (f"{r['service_rss_mib']:.0f}/{r['worker_rss_mib']:.0f}"
                                    if r.get("worker_rss_mib") is not None else "-")),
    ("PSS MiB", 7, lambda n, c, r: fmt(r.get("pss_mib") or None, "{:.0f}")),
    ("rec frames", 10, lambda n, c, r: fmt(r.get("recordings", {}).get("frames"), "{}")),
    ("rec lost", 8, _rec_lost),
    *COMMON_RIGHT,
)


def _recording(result: dict[str, Any]) -> str:
    rec = result.get("recordings")
    if not rec:
        return "not checked"
    if rec["lossless"]:
        head = rec["first_sequence_max"]
        return (f"every frame recorded ({rec['frames']} frames in {rec['files']} files"
                + (f"; the first {head} frames of the session before the recorder started)"
                   if head else ")"))
    return (f"LOST {rec['missing']} frame(s), {rec['repeated']} repeated, "
            f"{rec['bad_files']} bad file(s), {rec['streams_empty']} empty stream(s)")


def verdicts(runs: list[dict[str, Any]]) -> str:
    """Per N: who is cheaper per detected frame, by how much; the recording check."""
    lines = []
    for run in runs:
        ours, theirs = (run["clients"].get(c, {}) for c in CLIENTS)
        ratio = run["ratios"]["cpu_per_call"]
        head = f"N={run['streams']:<2}"
        if ratio is not None:
            verdict = (f"streamwarden {1 / ratio:.1f}x cheaper" if ratio < 1
                       else f"streamwarden {ratio:.1f}x DEARER")
            head += (f" CPU per detected frame/s: streamwarden "
                     f"{ours['cpu_pct_per_call_per_s']:.2f}% vs naive "
                     f"{theirs['cpu_pct_per_call_per_s']:.2f}% of a core = {ratio:.2f}x "
                     f"({verdict}); det/s per stream {ours['det_fps_per_stream']:.2f} vs "
                     f"{theirs['det_fps_per_stream']:.2f};")
        lines.append(f"{head} streamwarden recording: {_recording(ours)}")
        norec = run["ratios"].get("sw-no-rec/naive")
        if norec is not None:
            lines.append(f"      without recording (sw-no-rec): "
                         f"{run['clients']['sw-no-rec']['cpu_pct_per_call_per_s']:.2f}% per "
                         f"detected frame/s = {norec:.2f}x naive")
        both = run["clients"].get("naive+rec", {})
        vs_both = run["ratios"].get("streamwarden/naive+rec")
        if vs_both is not None:
            lines.append(f"      against naive + ffmpeg -c copy recording (naive+rec): "
                         f"{both['cpu_pct_per_call_per_s']:.2f}% per detected frame/s, "
                         f"streamwarden = {vs_both:.2f}x; its recording: {_recording(both)}")
        lines.extend(_mode_verdicts(run))
    return "\n".join(lines)


def _mode_verdicts(run: dict[str, Any]) -> list[str]:
    """The sub-stream and still-scene targets of issue #14."""
    lines = []
    clients, ratios = run["clients"], run["ratios"]
    sub = ratios.get("sw-sub/naive+rec")
    if sub is not None:
        lines.append(f"      sub-stream (sw-sub, 640x360@{run.get('sub_fps', 25)} detect_uri, "
                     "720p recorded): "
                     f"{clients['sw-sub']['cpu_pct_per_call_per_s']:.2f}% per detected "
                     f"frame/s = {sub:.2f}x naive+rec (target <= 0.5): "
                     f"{'met' if sub <= 0.5 else 'NOT met'}; recording: "
                     f"{_recording(clients['sw-sub'])}")
    still = ratios.get("sw-still/sw-rec-only")
    if still is not None:
        lines.append(f"      still scene with the activity gate (sw-still): "
                     f"{clients['sw-still']['cpu_pct_per_stream']:.2f}% per stream vs ingest + "
                     f"record alone {clients['sw-rec-only']['cpu_pct_per_stream']:.2f}% = "
                     f"{still:.2f}x (target <= 1.5): {'met' if still <= 1.5 else 'NOT met'}; "
                     f"decoded {clients['sw-still'].get('decoded_fps_per_stream')}/s per stream "
                     f"(service {fmt(clients['sw-still'].get('service_cpu_pct'), '{:.2f}')}%, "
                     f"worker {fmt(clients['sw-still'].get('worker_cpu_pct'), '{:.2f}')}%)")
    return lines


# ---- capacity -------------------------------------------------------------------------------


def capacity(name: str, processes: Processes, picture: Path, args: argparse.Namespace
             ) -> dict[str, Any]:
    """The largest N (up to --capacity-max) at which `name` keeps up (inference_capacity.py)."""
    single = argparse.Namespace(**{**vars(args), "clients": [name]})

    def run(count: int) -> dict[str, Any]:
        result = each_client(count, processes, single, bench_client, image=picture)
        return result.get(name, {"error": "missing"})

    return largest_count(name, run, DETECT_FPS, args.capacity_max)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any]) -> None:
    print(f"\ninference: {WIDTH}x{HEIGHT}@{FPS} H.264 (a person, GOP {GOP}) over RTSP/TCP, "
          f"detection at {DETECT_FPS} fps per stream with the default detector (NanoDet-g on "
          f"ONNX Runtime, [inference] threads, tiles \"auto\"), {args.duration:g}s window after "
          f"{args.warmup:g}s "
          f"warm-up, {os.cpu_count()} cores; every % is of one core")
    print("streamwarden: one service (svc%) + one worker process (wkr%), every stream also "
          f"recording ({args.segment_duration:g}s MP4 segments), files checked after a clean "
          "stop; naive: one process per camera, cv2.VideoCapture (FFmpeg) decoding every "
          "frame, the same detector on every 5th; it records nothing")
    print("cpu%/det/s: cpu% / model calls per s (all streams), the key figure; lat: model call "
          "wall time (streamwarden: /health, last 200 calls per stream); dropped: decoded "
          "frames the worker never saw (a newer one replaced it); dec/s/str: frames decoded "
          "(streamwarden) or read (naive) per stream per s; other% = rest of the host (noise)")
    print(code_line(env) + "\n")
    print(table(runs, COLUMNS))
    print()
    print(verdicts(runs))
    summary = thread_summary(runs)
    if summary:
        print(summary.replace("streamwarden threads", "streamwarden threads (service + worker)"))


# ---- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="1,4,8",
                        help="comma-separated stream counts (default 1,4,8)")
    parser.add_argument("--duration", type=float, default=20.0, help="measuring window, s")
    parser.add_argument("--warmup", type=float, default=8.0, help="after all detect, s")
    parser.add_argument("--segment-duration", type=float, default=10.0,
                        help="streamwarden's recording segments, s (default 10)")
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help=f"which clients, in order (default {','.join(CLIENTS)}; also "
                             "sw-no-rec: streamwarden detecting, not recording; naive+rec: "
                             "the naive loop plus ffmpeg -c copy recording each camera)")
    parser.add_argument("--ready-timeout", type=float, default=60.0,
                        help="for every stream of a client to detect, s")
    parser.add_argument("--camera-timeout", type=float, default=120.0,
                        help="for the camera server (the first run encodes its clip), s")
    parser.add_argument("--extra-config", type=Path, metavar="TOML",
                        help="TOML merged over streamwarden's generated config (its keys win), "
                             "e.g. [inference] frame_width = 320")
    parser.add_argument("--precision", choices=("int8", "fp32"),
                        help="[inference] precision of streamwarden's built-in model (default: "
                             "the service's default)")
    parser.add_argument("--naive-precision", choices=("int8", "fp32"),
                        help="the naive peers' model precision (default: as --precision)")
    parser.add_argument("--sub-fps", type=int, default=FPS,
                        help="the sw-sub detection sub-stream's frame rate (default: the main "
                             "stream's; Frigate's advice is the detection rate, 5)")
    parser.add_argument("--capacity", action="store_true",
                        help="per client, search the largest N that keeps up (see above)")
    parser.add_argument("--capacity-max", type=int, default=32,
                        help="the largest N --capacity tries (default 32)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temp dir with configs, logs, call logs and recordings")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in comma_list(args.streams)]
    args.clients = comma_list(args.clients)
    unknown = set(args.clients) - set(CLIENTS) - set(EXTRA_CLIENTS)
    if unknown or not args.counts or min(args.counts) < 1 or args.segment_duration <= 0:
        parser.error(f"bad --streams, --segment-duration or --clients {sorted(unknown) or ''}")
    args.extra_text, args.extra = read_extra_config(parser.error, args.extra_config)
    if args.precision:
        args.extra = merge({"inference": {"precision": args.precision}}, args.extra)
    args.naive_spec = naive_spec(args.naive_precision or args.precision)
    return args


def naive_spec(precision: str | None) -> str | None:
    """The naive peers' DetectorSpec as JSON: `[inference]` defaults at `precision`."""
    if precision is None:
        return None
    from streamwarden.config.model import InferenceSection
    from streamwarden.inference.detectors.factory import DetectorSpec

    return json.dumps(DetectorSpec.from_config(InferenceSection(precision=precision)).to_dict())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in missing_tools(("ss",)):
        print(f"inference bench: {tool} not found (run scripts/setup.sh)", file=sys.stderr)
        return 1
    interrupt_on_signals()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = environment()  # before the run: the code state the service is started from

    def measure_all(processes: Processes) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        picture = person_picture()
        if args.capacity:
            return [capacity(name, processes, picture, args) for name in args.clients]
        for count in args.counts:
            runs.append(bench_count(count, processes, picture, args))
        return runs

    outcome = run_in_workspace("inference bench", args.keep_logs, measure_all)
    if isinstance(outcome, int):
        return outcome
    runs = outcome
    if args.capacity:
        for found in runs:
            print(f"capacity {found['client']}: {found['capacity']} streams at {DETECT_FPS} fps "
                  f"detection, every frame recorded (tried {found['tried']})")
        save_results("inference-capacity", started, {"detect_fps": DETECT_FPS}, env, runs)
        return 0
    parameters = {"width": WIDTH, "height": HEIGHT, "fps": FPS, "gop": GOP,
                  "detect_fps": DETECT_FPS, "duration_s": args.duration,
                  "warmup_s": args.warmup, "segment_duration_s": args.segment_duration,
                  "extra_config": args.extra_text}
    report(runs, args, env)
    save_results("inference", started, parameters, env, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
