"""False person events on a burnt-in clock: the service on the test camera's timeoverlay.

    .venv/bin/python bench/overlay_events.py                         # int8, default event_score
    .venv/bin/python bench/overlay_events.py --precision int8 --event-score 0 --seconds 60

The test camera (`streamwarden.demo.camera --image astronaut.png`, 640x640, as
tests/test_inference.py runs it) shows the astronaut photograph with GStreamer's
`timeoverlay` clock in its top left corner; INT8 NanoDet-g scores the clock as a person at
up to ~0.42 (fp32 up to ~0.30). One `python -m streamwarden run` detects on it for
`--seconds`; the bench follows `/ws` and reads `/events` at the end, then says: the person
events on the clock (a box in the top left, not the astronaut's) and on her, the clock's
boxes in `detection` messages (how many, their scores, whether any was confirmed) and the
highest median score the confirmation rule (inference/confirm.py) computed for a clock
track: how far below `event_score` the clock stayed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    Processes,
    WsFollower,
    camera_urls,
    check_alive,
    environment,
    free_port,
    run_in_workspace,
    save_results,
    start_camera,
    toml_text,
    wait_until,
)
from streamwarden.inference.confirm import HISTORY, median_score


def astronaut_png() -> str:
    import skimage

    return str(Path(skimage.__file__).parent / "data" / "astronaut.png")


def at_the_clock(box: list[float]) -> bool:
    """The clock's box (about 0, 0, 0.09, 0.29 of the frame), not the astronaut's."""
    return box[2] < 0.2 and box[3] < 0.4


def measure(processes: Processes, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    camera = start_camera(processes, port, 1, 120, Path(astronaut_png()), size=(640, 640))
    api = free_port()
    inference: dict[str, Any] = {"precision": args.precision}
    if args.event_score is not None:
        inference["event_score"] = args.event_score
    config = {"app": {"database": str(processes.log_dir / "overlay.db")},
              "api": {"listen": f"127.0.0.1:{api}", "allow_unauthenticated": True},
              "inference": inference,
              "streams": [{"id": "cam", "uri": camera_urls(port, 1)[0],
                           "enable_inference": True}]}
    path = processes.log_dir / "overlay.toml"
    path.write_text(toml_text(config))
    service = processes.start("service", [sys.executable, "-m", "streamwarden", "run",
                                          "--config", str(path)])
    client = httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10)
    wait_until(lambda: _calls(client) > 0, 120, "the service's first model call")
    messages = WsFollower(str(client.base_url))
    messages.start()
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        check_alive([camera, service])
        time.sleep(0.5)
    messages.finish()
    rows = client.get("/events", params={"stream_id": "cam", "limit": 1000}).json()
    status = client.get("/inference").json()
    processes.stop([service, camera])
    return {"detections": [m for _, m in messages.detections],
            "events": [m for _, m in messages.events], "rows": rows,
            "runtime": status.get("runtime"), "event_score": _event_score(args)}


def _calls(client: httpx.Client) -> int:
    try:
        health = next(h for h in client.get("/health").json() if h["id"] == "cam")
    except (httpx.HTTPError, StopIteration):
        return 0
    return (health.get("inference") or {}).get("model_calls", 0)


def _event_score(args: argparse.Namespace) -> float:
    from streamwarden.config.model import InferenceSection

    section = InferenceSection(precision=args.precision, event_score=args.event_score)
    return section.effective_event_score()


def figures(run: dict[str, Any]) -> dict[str, Any]:
    clock = [(m["time"], d) for m in run["detections"] for d in m["detections"]
             if d["label"] == "person" and at_the_clock(d["box"])]
    scores = [d["confidence"] for _, d in clock]
    histories: dict[str, deque[float]] = {}
    highest = 0.0
    for _, d in clock:  # the rule's median for each clock track, sighting by sighting
        history = histories.setdefault(d["object_id"], deque(maxlen=HISTORY))
        history.append(d["confidence"])
        highest = max(highest, median_score(history))
    people = [r for r in run["rows"] if r["label"] == "person"]
    on_clock = [r for r in people if at_the_clock(r["box"])]
    calls = len(run["detections"])
    return {
        "runtime": run["runtime"], "event_score": run["event_score"],
        "detection_messages": calls,
        "person_events": len(people), "person_events_on_clock": len(on_clock),
        "clock_boxes": len(clock), "clock_tracks": len(histories),
        "clock_boxes_confirmed": sum(1 for _, d in clock if d.get("confirmed", True)),
        "clock_score": {"max": max(scores, default=None),
                        "median": statistics.median(scores) if scores else None},
        "clock_highest_median": round(highest, 3),
        "event_messages": len(run["events"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--event-score", type=float, help="[inference] event_score")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    from bench.harness import interrupt_on_signals

    interrupt_on_signals()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")

    def body(processes: Processes) -> list[dict[str, Any]]:
        run = measure(processes, args)
        figs = figures(run)
        print(json.dumps(figs, indent=2))
        return [{"figures": figs, "raw": run}]

    runs = run_in_workspace("overlay_events", args.keep_logs, body)
    if isinstance(runs, int):
        return runs
    save_results("overlay-events", started, vars(args), environment(), runs)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GST_DEBUG", "1")
    sys.exit(main())
