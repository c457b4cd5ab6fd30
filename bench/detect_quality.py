"""Detection quality on a labelled scene: recall and precision per object size, events per
object, latency from first appearance; the service and the naive peer in the same run.

    .venv/bin/python bench/detect_quality.py                  # [inference] defaults, ~3 min
    .venv/bin/python bench/detect_quality.py --tiles off --confidence 0.4 --no-naive
    .venv/bin/python bench/detect_quality.py --sweep 0.3,0.35,0.4,0.45,0.5 --confidence 0.3

The scene (bench/quality_scene.py: people 60-260 px tall and cars from opencv-doc's sample data
on an empty street, 1280x720 at 25 fps, ground truth per frame; rendered and encoded once,
cached) is served by the synthetic RTSP camera (`streamwarden.demo.camera --clip`, which logs
when it sent each frame). One `python -m streamwarden run` detects on it with the `[inference]`
given here (everything else default; the stream's jitter buffer `latency` is the default
0.2 s); the bench follows `/ws` for `detection` messages (each box with its tracked object's
id) and `event` messages (when each event was announced) and reads `/events` at the end. The
naive peer (bench/naive_peer.py: OpenCV's FFmpeg reader, every 5th frame of 25 into the same
detector spec) reads the same camera and logs every call's boxes.

The window is `--loops` passes through the scene plus one pass (so every object is shown whole
inside it at least `--loops` times), after a warm-up; objects shown partly inside are left out.
The arithmetic is bench/quality_figures.py (unit-tested): events are tied to objects through
their boxes, and tracker id switches are counted per object. What was collected goes into the
JSON too (`raw`), so `--replay FILE` computes the figures again without running anything.
The service pushes only frames with detections, so its recall counts each object's chances
as its time on screen times the model's measured calls per second; the naive peer logs every
call, so its chances are exact.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import quality_scene
from bench.harness import (
    Child,
    Processes,
    WsFollower,
    check_alive,
    cpu_ticks,
    environment,
    free_port,
    pct_of_core,
    run_in_workspace,
    save_results,
    toml_text,
    wait_until,
)
from bench.quality_figures import (
    Result,
    SentFrames,
    ServiceEvent,
    Truth,
    Window,
    client_figures,
    event_figures,
    id_switches,
    place,
    refit,
)
from streamwarden.inference.detectors.factory import DetectorSpec, effective_confidence

STREAM, MOUNT = "scene", "/scene"
# the stream's default `latency`, the first guess of the service's delay; rtpjitterbuffer holds
# frames only while it waits for a missing packet, so `refit` then moves the results to fit
JITTER_LATENCY_S = 0.2
FRAME_NS = 1_000_000_000 // quality_scene.FPS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=1, help="passes through the scene")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before the window")
    parser.add_argument("--tiles", default=None, help='[inference] tiles ("auto", "off", N)')
    parser.add_argument("--confidence", type=float, help="[inference] confidence")
    parser.add_argument("--precision", choices=("int8", "fp32"),
                        help="[inference] precision of the built-in model")
    parser.add_argument("--event-score", type=float,
                        help="[inference] event_score (0: every tracked object is an event)")
    parser.add_argument("--frame-width", type=int, help="[inference] frame_width")
    parser.add_argument("--fps", type=float, default=5.0, help="[inference] fps")
    parser.add_argument("--activity-gate", choices=("on", "off"),
                        help="[inference] activity_gate (default: the service's)")
    parser.add_argument("--sweep", default="", help="also score at these confidences, e.g. "
                                                   "0.35,0.4,0.5 (at or above --confidence)")
    parser.add_argument("--no-naive", action="store_true", help="the service alone")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--replay", type=Path, metavar="JSON",
                        help="the figures again from a saved run's `raw` (runs nothing)")
    return parser.parse_args()


def inference_section(args: argparse.Namespace) -> dict[str, Any]:
    section: dict[str, Any] = {"fps": args.fps}
    if args.tiles is not None:
        section["tiles"] = int(args.tiles) if args.tiles.isdigit() else args.tiles
    if args.confidence is not None:
        section["confidence"] = args.confidence
    if args.precision is not None:
        section["precision"] = args.precision
    if args.frame_width is not None:
        section["frame_width"] = args.frame_width
    if getattr(args, "event_score", None) is not None:  # absent from older saved runs
        section["event_score"] = args.event_score
    if args.activity_gate is not None:
        section["activity_gate"] = args.activity_gate == "on"
    return section


# ---- the processes -----------------------------------------------------------------------------


def start_camera(processes: Processes, scene: quality_scene.Scene, port: int,
                 sent_log: Path) -> Child:
    args = [sys.executable, "-m", "streamwarden.demo.camera", "--port", str(port),
            "--path", MOUNT, "--width", str(quality_scene.WIDTH), "--height",
            str(quality_scene.HEIGHT), "--fps", str(quality_scene.FPS), "--clip",
            str(scene.clip), "--log", str(sent_log)]
    camera = processes.start("camera", args, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        readable, _, _ = select.select([camera.proc.stdout], [], [], 0.5)
        if readable and camera.proc.stdout.readline().startswith(b"READY"):
            return camera
        check_alive([camera])
    raise RuntimeError("the scene camera did not start")


def start_service(processes: Processes, url: str, args: argparse.Namespace
                  ) -> tuple[Child, httpx.Client, str]:
    """The service on the scene; returns it, an API client and its worker's DetectorSpec."""
    from streamwarden.config.loader import load_config
    from streamwarden.inference.detectors.factory import DetectorSpec

    port = free_port()
    config = {"app": {"database": str(processes.log_dir / "quality.db")},
              "api": {"listen": f"127.0.0.1:{port}", "allow_unauthenticated": True},
              "inference": inference_section(args),
              "streams": [{"id": STREAM, "uri": url, "enable_inference": True}]}
    path = processes.log_dir / "quality.toml"
    path.write_text(toml_text(config))
    spec = DetectorSpec.from_config(load_config(path).inference)
    child = processes.start("service", [sys.executable, "-m", "streamwarden", "run",
                                        "--config", str(path)])
    return child, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10), \
        json.dumps(spec.to_dict())


def health(client: httpx.Client) -> dict[str, Any]:
    entry = next(h for h in client.get("/health").json() if h["id"] == STREAM)
    return entry.get("inference") or {}


def worker_pid(client: httpx.Client) -> int | None:
    return client.get("/inference").json().get("worker_pid")


# ---- reading back what happened ------------------------------------------------------------------


def read_sent(path: Path) -> SentFrames:
    seqs, walls = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == MOUNT:
            seqs.append(int(parts[1]))
            walls.append(float(parts[2]))
    return SentFrames(seqs, walls)


def service_results(messages: list[tuple[float, dict[str, Any]]]) -> list[Result]:
    """WS detection messages as results: PTS counts frames, `time` is when it was decoded."""
    if not messages:
        return []
    first_pts = messages[0][1]["pts"]
    return [Result(decoded=m["time"], relative=round((m["pts"] - first_pts) / FRAME_NS),
                   known=arrived,
                   detections=[(d["label"], d["confidence"], tuple(d["box"]))
                               for d in m["detections"]],
                   object_ids=[d["object_id"] for d in m["detections"]])
            for arrived, m in messages]


def read_naive(path: Path) -> list[dict[str, Any]]:
    """The naive peer's call log: one JSON line per model call."""
    calls = []
    for line in path.read_text().splitlines():
        try:
            calls.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written
    return calls


def naive_results(calls: list[dict[str, Any]]) -> list[Result]:
    return [Result(decoded=call["read"], relative=call["frames"] - 1, known=call["done"],
                   detections=[(label, score, tuple(box))
                               for label, score, box in call["detections"]])
            for call in calls]


def service_events(rows: list[dict[str, Any]], announced: list[tuple[float, dict[str, Any]]]
                   ) -> list[ServiceEvent]:
    """`GET /events` rows, each with when its `new` message reached the bench."""
    heard = {m["event_id"]: arrived for arrived, m in announced}
    return [ServiceEvent(r["object_id"] or f"event-{r['id']}", r["label"],
                         datetime.fromisoformat(r["start"]).timestamp(),
                         datetime.fromisoformat(r["end"]).timestamp(), heard.get(r["id"]))
            for r in rows]


# ---- the run -----------------------------------------------------------------------------------


def measure(processes: Processes, args: argparse.Namespace, scene: quality_scene.Scene,
            truth: Truth) -> dict[str, Any]:
    sent_log = processes.log_dir / "sent.log"
    port = free_port()
    camera = start_camera(processes, scene, port, sent_log)
    url = f"rtsp://127.0.0.1:{port}{MOUNT}"
    service, client, spec = start_service(processes, url, args)
    wait_until(lambda: _answers(client) and health(client).get("model_calls", 0) > 0, 120,
               "the service's first model call")
    ws = WsFollower(str(client.base_url), STREAM)
    ws.start()
    children = [camera, service]
    boxes = processes.log_dir / "naive.jsonl"
    if not args.no_naive:
        naive = processes.start("naive", [sys.executable, str(Path(__file__).with_name(
            "naive_peer.py")), url, str(processes.log_dir / "naive.calls"), "--detections",
            str(boxes), "--spec", spec])
        children.append(naive)
        wait_until(lambda: boxes.is_file() and boxes.stat().st_size > 0, 120,
                   "the naive peer's first model call")
    time.sleep(args.warmup)
    pass_s = (quality_scene.SLOT_OFFSETS_S[-1] + quality_scene.VISIBLE_S
              + quality_scene.GAP_S)
    seconds = args.loops * scene.frames / quality_scene.FPS + pass_s
    pids = {"worker": worker_pid(client), "service": service.pid}
    if not args.no_naive:
        pids["naive"] = children[-1].pid
    start = _snapshot(client, pids)
    deadline = time.time() + seconds
    while time.time() < deadline:
        check_alive(children)
        time.sleep(min(1.0, max(0.0, deadline - time.time())))
    end = _snapshot(client, pids)
    time.sleep(1.0)  # the last results reach /ws
    ws.finish()
    events = client.get("/events", params={"stream_id": STREAM, "limit": 10000}).json()
    final = {"inference": client.get("/inference").json(), "health": health(client)}
    processes.stop(children[::-1])
    sent = read_sent(sent_log)
    naive = None if args.no_naive else read_naive(boxes)
    announced = [(at, m) for at, m in ws.events if m.get("change") == "new"]
    return {"start": start, "end": end, "messages": ws.detections, "announced": announced,
            "events": events, "final": final, "sent": [sent.seqs, sent.walls],
            "spec": json.loads(spec), "naive": naive, "event_score": _event_score(args)}


def _event_score(args: argparse.Namespace) -> float:
    """The `event_score` the service ran with (its per-precision default unless given)."""
    from streamwarden.config.model import InferenceSection

    return InferenceSection(**inference_section(args)).effective_event_score()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _snapshot(client: httpx.Client, pids: dict[str, int | None]) -> dict[str, Any]:
    return {"wall": time.time(), "health": health(client),
            "ticks": {k: cpu_ticks(p) for k, p in pids.items() if p}}


def figures(run: dict[str, Any], truth: Truth, args: argparse.Namespace) -> dict[str, Any]:
    sent = SentFrames(*run["sent"])
    start, end = run["start"], run["end"]
    first, last = sent.sent_before(start["wall"]), sent.sent_before(end["wall"] - 1.0)
    if first is None or last is None:
        raise RuntimeError("the camera's log does not cover the window")
    seconds = end["wall"] - start["wall"]
    calls = end["health"]["model_calls"] - start["health"]["model_calls"]
    window = Window(first, last, calls / seconds)
    confidence = effective_confidence(DetectorSpec(**run["spec"]))
    thresholds = sorted({float(t) for t in args.sweep.split(",") if t.strip()} | {confidence})
    service = service_results(run["messages"])
    service_mapped = place(service, sent, JITTER_LATENCY_S, "mode")
    shift = refit(truth, service, window)
    events = service_events(run["events"], run["announced"])
    cpu = {k: round(pct_of_core(end["ticks"][k] - start["ticks"].get(k, 0), seconds), 1)
           for k in end["ticks"]}
    out: dict[str, Any] = {
        "window_s": round(seconds, 1), "frames": [first, last],
        "model_calls_per_s": round(window.seen_per_second or 0, 2), "cpu_pct_of_core": cpu,
        "latency_ms": {"p50": end["health"].get("latency_ms_p50"),
                       "p95": end["health"].get("latency_ms_p95")},
        "service": {"mapping_within_1_frame": round(service_mapped, 3),
                    "refit_frames": shift, "by_confidence": {
            str(t): client_figures(truth, service, window, sent, t, exact_samples=False)
            for t in thresholds}},
        "events": event_figures(truth, events, service, window, sent),
        "tracker_id_switches": id_switches(truth, service, window),
        "event_score": run.get("event_score"),  # None: a run from before the rule
    }
    if run["naive"] is not None:
        naive = naive_results(run["naive"])
        mapped = place(naive, sent, 0.0, "min")
        out["naive"] = {"mapping_within_1_frame": round(mapped, 3), "by_confidence": {
            str(t): client_figures(truth, naive, window, sent, t, exact_samples=True)
            for t in thresholds}}
    return out


# ---- output --------------------------------------------------------------------------------------


def table(name: str, fig: dict[str, Any]) -> list[str]:
    lines = [f"  {name}: precision {fig['precision']} ({fig['true_positives']} true, "
             f"{fig['false_positives']} false, {fig['duplicates']} duplicate), first detection "
             f"after appearance p50 {fig['first_detection_latency_s']['p50']} s, p95 "
             f"{fig['first_detection_latency_s']['p95']} s"]
    for b in fig["bands"]:
        recall = "-" if b["recall"] is None else f"{b['recall']:.2f}"
        lines.append(f"    {b['label']:<7} {b['band']:>8} px  objects {b['objects']:>3.0f}  "
                     f"chances {b['chances']:>6.1f}  found {b['found']:>5.0f}  recall {recall}"
                     f"  never found {b['missed_entirely']:.0f}")
    return lines


def event_lines(e: dict[str, Any], ids: dict[str, Any]) -> list[str]:
    """Events per object (through their boxes), false events, latency, tracker id switches."""
    histogram = ", ".join(f"{n}: {c}" for n, c in e["covering_histogram"].items())
    first, told = e["event_latency_s"]["first_seen"], e["event_latency_s"]["announced"]
    return [
        f"  events: {e['events']} started in the window for {e['objects']} objects shown "
        f"({e['events_per_object']} per object); events whose boxes matched each object: "
        f"{e['events_covering_each_object']} on average (ideal 1; objects by count {{"
        f"{histogram}}}); {e['objects_without_event']} objects without one",
        f"    false events (no box on any object) {e['false_events']}, over several objects "
        f"{e['events_over_several_objects']}, without boxes in /ws {e['events_without_boxes']}",
        f"    appearance -> event start (first_seen) p50 {first['p50']} s, p95 {first['p95']} "
        f"s; -> event message on /ws p50 {told['p50']} s, p95 {told['p95']} s "
        f"({told['count']} heard)",
        f"  tracker id switches: {ids['switches']} over {ids['objects']} objects "
        f"({ids['per_object']} per object, {ids['objects_with_switches']} objects with any); "
        f"unmatched before a switch p50 {ids['gap_s']['p50']} s, max {ids['gap_s']['max']} s; "
        f"old id back on the same object later: {ids['returned']}",
    ]


def report(figs: dict[str, Any], spec: dict[str, Any]) -> None:
    model = spec["model_path"] or spec["builtin"]
    print(f"\ndetect-quality: model {model} ({spec.get('precision')}), tiles "
          f"{spec['tiles']!r}, classes "
          f"{spec['classes']}, event_score {figs.get('event_score')}; window {figs['window_s']} s, "
          f"{figs['model_calls_per_s']} model calls/s; cpu % of a core {figs['cpu_pct_of_core']};"
          f" model call p50 {figs['latency_ms']['p50']} ms, p95 {figs['latency_ms']['p95']} ms")
    for t, fig in figs["service"]["by_confidence"].items():
        print("\n".join(table(f"streamwarden @ confidence {t}", fig)))
        naive = figs.get("naive", {}).get("by_confidence", {}).get(t)
        if naive is not None:
            print("\n".join(table(f"naive peer   @ confidence {t}", naive)))
    print("\n".join(event_lines(figs["events"], figs["tracker_id_switches"])))
    print(f"  frame mapping within one frame: service "
          f"{figs['service']['mapping_within_1_frame']} (moved "
          f"{figs['service'].get('refit_frames')} frames to fit), naive "
          f"{figs.get('naive', {}).get('mapping_within_1_frame')}")


def replay(path: Path, truth: Truth) -> int:
    """The figures of a saved run, from its `raw` data, with the arithmetic as it is now."""
    saved = json.loads(path.read_text())
    parameters = argparse.Namespace(**saved["parameters"])
    for run in saved["runs"]:
        if "raw" not in run:
            print(f"{path}: no raw data (a run from before --replay)", file=sys.stderr)
            return 1
        report(figures(run["raw"], truth, parameters), run["spec"])
    return 0


def main() -> int:
    args = parse_args()
    from bench.harness import interrupt_on_signals

    interrupt_on_signals()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    print("scene: building or reading it from the cache ...", file=sys.stderr)
    scene = quality_scene.build()
    truth = Truth.from_json(json.loads(scene.truth.read_text()))
    if args.replay is not None:
        return replay(args.replay, truth)

    def body(processes: Processes) -> list[dict[str, Any]]:
        run = measure(processes, args, scene, truth)
        figs = figures(run, truth, args)
        report(figs, run["spec"])
        return [{"spec": run["spec"], "figures": figs, "raw": run}]

    runs = run_in_workspace("detect_quality", args.keep_logs, body)
    if isinstance(runs, int):
        return runs
    save_results("detect-quality", started,
                 {k: v for k, v in vars(args).items() if k != "replay"}, environment(), runs)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GST_DEBUG", "1")
    sys.exit(main())
