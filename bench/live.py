"""Live-view benchmark: the service's CPU for the fMP4 live view at 0, 1 and N viewers, and
how old a frame is when a viewer receives it.

    .venv/bin/python bench/live.py --viewers 0,1,10 --duration 15 --warmup 5

One synthetic camera (1280x720 25 fps H.264, every frame stamped with its send time) and one
streamwarden with that stream (`buffer_duration = "0s"`: no recorder, so the service does
ingest and, with viewers, the live mux only). For each N a viewer process opens N WebSockets
to `/streams/cam1/live.mp4` and reads them to the end of the window. Over the window: the
service's CPU (utime+stime ÷ wall, % of one core) and, per received fragment, receive time
minus the camera's stamp (same host, same clock). That age includes the service's RTSP
jitter buffer (`latency`, 200 ms by default), so it is camera → viewer socket, not glass to
glass: add the browser's buffering (the dashboard keeps it under 1.5 s, typically a few
frames) and decode/paint.

Results: a table on stdout and JSON in bench/results/live-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    BenchError,
    Processes,
    camera_urls,
    cpu_ticks,
    environment,
    free_port,
    interrupt_on_signals,
    pct_of_core,
    start_camera,
    wait_until,
    workspace,
    write_json,
)
from measure import Streamwarden


async def _view(url: str, seconds: float, ages: list[float]) -> int:
    from websockets.asyncio.client import connect

    from streamwarden.demo.stamp import read_stamps

    received = 0
    deadline = time.monotonic() + seconds
    async with connect(url, max_size=None) as socket:
        while time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(socket.recv(), deadline - time.monotonic())
            except TimeoutError:
                break
            if isinstance(message, bytes):
                now = time.time()
                ages.extend(now - stamp.wall_time for stamp in read_stamps(message))
                received += 1
    return received


def run_viewers(url: str, count: int, seconds: float) -> int:
    """Child mode: `count` viewers for `seconds`; prints a JSON line with what they saw."""
    async def main() -> list[tuple[int, list[float]]]:
        results = [[] for _ in range(count)]
        counts = await asyncio.gather(*(_view(url, seconds, ages) for ages in results))
        return list(zip(counts, results, strict=True))

    results = asyncio.run(main())
    ages = sorted(a for _count, viewer in results for a in viewer)
    print(json.dumps({"fragments": [c for c, _ in results], "ages": len(ages),
                      "age_p50_ms": 1000 * statistics.median(ages) if ages else None,
                      "age_p95_ms": 1000 * ages[int(0.95 * (len(ages) - 1))] if ages else None,
                      "age_max_ms": 1000 * ages[-1] if ages else None}), flush=True)
    return 0


def bench(count: int, service: Streamwarden, processes: Processes, args: argparse.Namespace
          ) -> dict[str, Any]:
    pid = service.children[0].pid
    url = f"ws{service.base.removeprefix('http')}/streams/cam1/live.mp4"
    viewers = None
    if count:
        viewers = processes.start(f"viewers-{count}", [
            sys.executable, str(Path(__file__).resolve()), "--viewers-child", url, str(count),
            str(args.warmup + args.duration + 1)], stdout=subprocess.PIPE)
    time.sleep(args.warmup)
    start = (time.monotonic(), cpu_ticks(pid), cpu_ticks(viewers.pid) if viewers else 0)
    live = service.consumer_stats("live")["cam1"]
    time.sleep(args.duration)
    end = (time.monotonic(), cpu_ticks(pid), cpu_ticks(viewers.pid) if viewers else 0)
    seconds = end[0] - start[0]
    result: dict[str, Any] = {
        "viewers": count, "live_viewers_reported": live.get("viewers", 0),
        "service_cpu_pct": round(pct_of_core(end[1] - start[1], seconds), 2),
        "viewer_procs_cpu_pct": round(pct_of_core(end[2] - start[2], seconds), 2)}
    if viewers is not None:
        out, _ = viewers.proc.communicate(timeout=args.duration + 30)
        result.update(json.loads(out.decode().strip().splitlines()[-1]))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="0,1,10")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--ready-timeout", type=float, default=120)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--viewers-child", nargs=3, metavar=("URL", "N", "SECONDS"))
    args = parser.parse_args()
    if args.viewers_child:
        url, count, seconds = args.viewers_child
        return run_viewers(url, int(count), float(seconds))
    interrupt_on_signals()
    runs = []
    with workspace(args.keep_logs) as tmp:
        processes = Processes(tmp)
        try:
            camera_port = free_port()
            start_camera(processes, camera_port, 1, args.ready_timeout)
            service = Streamwarden.launch(processes, camera_urls(camera_port, 1), camera_port,
                                          {"stream_defaults": {"buffer_duration": "0s"}})
            wait_until(service.ready, args.ready_timeout, "cam1 to stream")
            for count in (int(n) for n in args.viewers.split(",")):
                runs.append(bench(count, service, processes, args))
                print(json.dumps(runs[-1]), flush=True)
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            processes.stop_all()
    print(f"\n{'viewers':>7} {'svc cpu%':>9} {'age p50 ms':>11} {'p95':>7} {'max':>7}")
    for run in runs:
        print(f"{run['viewers']:>7} {run['service_cpu_pct']:>9.2f} "
              f"{run.get('age_p50_ms') or 0:>11.0f} {run.get('age_p95_ms') or 0:>7.0f} "
              f"{run.get('age_max_ms') or 0:>7.0f}")
    path = write_json("live", {"environment": environment(), "runs": runs,
                               "args": {k: v for k, v in vars(args).items()
                                        if k != "viewers_child"}})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
