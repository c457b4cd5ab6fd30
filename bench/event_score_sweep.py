"""Events per object, false events and announcement latency under the event-confirmation rule
(streamwarden/inference/confirm.py) at several `event_score`s and history lengths, replayed
from saved `detect_quality.py` runs: nothing is run again.

    .venv/bin/python bench/event_score_sweep.py bench/results/detect-quality-A.json ...
    .venv/bin/python bench/event_score_sweep.py RUN.json --scores 0,0.35,0.45,0.5 --history 3,10

Each tracked object's scores are the `detection` messages' boxes with its object id, in the
order the bench heard them; an object becomes an event on the message whose score confirms
it (its `event` message is published right after that `detection` message), and events of
objects never confirmed are dropped. The event keeps its start (first seen), so the
`first_seen` latency does not move; the `announced` one does. A run made with the rule on
already lacks the events it refused: replaying it at a lower score says nothing about those.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import quality_scene
from bench.detect_quality import JITTER_LATENCY_S, service_events, service_results
from bench.quality_figures import (
    SentFrames,
    ServiceEvent,
    Truth,
    Window,
    appearances,
    band_of,
    event_figures,
    place,
    refit,
    sightings,
)
from streamwarden.inference.confirm import Confirmation


def confirmed_events(raw: dict[str, Any], threshold: float, history: int
                     ) -> list[ServiceEvent]:
    """The run's events as the rule would have let them out, announced when confirmed."""
    rules: dict[str, Confirmation] = {}
    confirmed_at: dict[str, float] = {}
    for arrived, message in raw["messages"]:
        for box in message["detections"]:
            oid = box["object_id"]
            rule = rules.setdefault(oid, Confirmation(threshold, deque(maxlen=history)))
            if rule.add(box["confidence"]):
                confirmed_at[oid] = arrived
    return [dataclasses.replace(e, announced=confirmed_at[e.object_id])
            for e in service_events(raw["events"], raw["announced"])
            if e.object_id in confirmed_at]


def window_of(raw: dict[str, Any]) -> tuple[Window, SentFrames]:
    sent = SentFrames(*raw["sent"])
    start, end = raw["start"], raw["end"]
    first, last = sent.sent_before(start["wall"]), sent.sent_before(end["wall"] - 1.0)
    if first is None or last is None:
        raise RuntimeError("the camera's log does not cover the window")
    calls = end["health"]["model_calls"] - start["health"]["model_calls"]
    return Window(first, last, calls / (end["wall"] - start["wall"])), sent


def without_event(truth: Truth, events: list[ServiceEvent], results: list,
                  window: Window) -> str:
    """The objects no event covers, as label/size band (which ones the rule loses)."""
    seen = sightings(truth, results)
    covered = {key for e in events for key in seen.by_event.get(e.object_id, ())}
    missed = sorted(f"{obj.label}/{band_of(obj.height)}" for obj, loop in
                    appearances(truth, window) if (obj.id, loop) not in covered)
    return ", ".join(missed) or "none"


def line(threshold: float, history: int, e: dict[str, Any]) -> str:
    first, told = e["event_latency_s"]["first_seen"], e["event_latency_s"]["announced"]
    return (f"  score {threshold:<5} history {history:>2}: events {e['events']:>3} "
            f"({e['events_per_object']} per object, covering {e['events_covering_each_object']}"
            f"), objects without {e['objects_without_event']:>2}, false {e['false_events']:>2}"
            f", over several {e['events_over_several_objects']}; appearance -> start p50 "
            f"{first['p50']} s, -> announced p50 {told['p50']} s p95 {told['p95']} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="detect_quality.py JSON files")
    parser.add_argument("--scores", default="0,0.35,0.4,0.45,0.5,0.55,0.6")
    parser.add_argument("--history", default="3,5,10", help="sightings the median is over")
    args = parser.parse_args()
    scene = quality_scene.build()
    truth = Truth.from_json(json.loads(scene.truth.read_text()))
    scores = [float(s) for s in args.scores.split(",")]
    histories = [int(h) for h in args.history.split(",")]
    for path in args.runs:
        for run in json.loads(path.read_text())["runs"]:
            raw = run["raw"]
            window, sent = window_of(raw)
            results = service_results(raw["messages"])
            place(results, sent, JITTER_LATENCY_S, "mode")  # as detect_quality.figures does
            refit(truth, results, window)
            print(f"{path.name}: {run['spec'].get('precision')}, tiles {run['spec']['tiles']!r}")
            for history in histories:
                for threshold in scores:
                    events = confirmed_events(raw, threshold, history)
                    print(line(threshold, history,
                               event_figures(truth, events, results, window, sent)))
                    print(f"      without an event: "
                          f"{without_event(truth, events, results, window)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
