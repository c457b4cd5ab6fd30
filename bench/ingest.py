"""Ingest benchmark: N synthetic 720p25 RTSP cameras into streamwarden, against peers.

    .venv/bin/python bench/ingest.py --streams 1,4,16 --duration 20 --warmup 5
    .venv/bin/python bench/ingest.py --streams 1,16 --with-preroll

For each N, one camera server process with N mounts is started, then three clients pull the
same N streams one after the other (never together: on a 2-core box they would steal CPU from
each other): the streamwarden service, `gst-launch-1.0` (one process per camera) and
`ffmpeg -c copy` (one process per camera). Each client's CPU time is read from /proc over the
same measuring window after a warm-up, so start-up costs (imports, plugin loading, RTSP
handshakes) are not counted. The peers do the minimum a receiver can do (depayload, parse,
drop), which makes them a floor for what ingest costs in GStreamer and in FFmpeg.

By default streamwarden measures ingest alone (parse only, no consumers): its config sets
`[stream_defaults] buffer_duration = "0s"`, so no recorder with a pre-event ring is attached.
`--with-preroll` keeps the service's default 10 s ring, to see what it adds.

`--decode` makes both peers decode every frame too (`avdec_h264 max-threads=1` and
`ffmpeg -threads 1`, one thread each, like streamwarden's decoder) and leaves streamwarden
out: it is the floor under what a pixel consumer (inference, MJPEG) costs per stream in each
framework, which is what `bench/inference.py` compares against.

    .venv/bin/python bench/ingest.py --decode --streams 4

Everything runs on 127.0.0.1 on ports chosen at run time. Every child is stopped at the end,
also on Ctrl-C or an error, and dies with the benchmark if that is killed outright.
Results: a table on stdout and JSON in bench/results/ingest-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
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
    code_line,
    comma_list,
    environment,
    interrupt_on_signals,
    merge,
    missing_tools,
    read_extra_config,
    run_in_workspace,
    save_results,
    wait_until,
)
from measure import (
    COMMON_LEFT,
    COMMON_RIGHT,
    Client,
    Column,
    Streamwarden,
    each_client,
    ffmpeg_frames,
    fmt,
    measure,
    ratios,
    start_per_camera,
    table,
    thread_summary,
)

TARGET_CPU_PER_STREAM = 1.5  # % of one core per 720p stream, streamwarden's ingest
CLIENTS = ("streamwarden", "gst-launch", "ffmpeg")
INGEST_ALONE = {"stream_defaults": {"buffer_duration": "0s"}}  # no ring, so no recorder


# ---- clients --------------------------------------------------------------------------------


def launch_streamwarden(processes: Processes, urls: list[str], camera_port: int,
                        args: argparse.Namespace) -> Client:
    return Streamwarden.launch(processes, urls, camera_port, args.service_config)


class GstLaunch(Client):
    """Peer: the minimal GStreamer receiver, one `gst-launch-1.0` per camera."""

    name = "gst-launch"

    @classmethod
    def launch(cls, processes: Processes, urls: list[str], camera_port: int,
               args: argparse.Namespace) -> GstLaunch:
        decode = ["avdec_h264", "max-threads=1", "!"] if args.decode else []
        children = start_per_camera(processes, "gst-launch", urls, lambda _i, url: [
            "gst-launch-1.0", "-q", "rtspsrc", f"location={url}", "protocols=tcp",
            "latency=200", "!", "rtph264depay", "!", "h264parse", "!", *decode, "fakesink",
            "sync=false",
        ])
        return cls(children, camera_port, len(urls))


class Ffmpeg(Client):
    """Peer: FFmpeg remuxing to nothing, one `ffmpeg -c copy` per camera.

    ffmpeg prints `frame=` stats every 0.5 s on stderr (its default; our log file), which gives
    a received rate good to a few percent over the window, not an exact count.
    """

    name = "ffmpeg"

    @classmethod
    def launch(cls, processes: Processes, urls: list[str], camera_port: int,
               args: argparse.Namespace) -> Ffmpeg:
        # -threads 1 before -i sets the decoder's threads; without decoding, -c copy
        output = ["-f", "null", "-"] if args.decode else ["-c", "copy", "-f", "null", "-"]
        threads = ["-threads", "1"] if args.decode else []
        children = start_per_camera(processes, "ffmpeg", urls, lambda _i, url: [
            "ffmpeg", "-nostdin", "-hide_banner", "-rtsp_transport", "tcp", *threads,
            "-i", url, *output,
        ])
        return cls(children, camera_port, len(urls))

    def frames(self) -> dict[str, int]:
        return ffmpeg_frames(self.children)


LAUNCHERS: dict[str, Callable[..., Client]] = {
    "streamwarden": launch_streamwarden,
    "gst-launch": GstLaunch.launch,
    "ffmpeg": Ffmpeg.launch,
}


# ---- the run --------------------------------------------------------------------------------


def bench_client(name: str, processes: Processes, camera: Child, camera_port: int,
                 urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Start one client for all N streams, wait until every stream flows, warm up, measure."""
    client = LAUNCHERS[name](processes, urls, camera_port, args)
    try:
        wait_until(client.ready, args.ready_timeout, f"{name}: {len(urls)} streams flowing")
        time.sleep(args.warmup)
        return measure(client, camera, args.duration)
    except (OSError, ValueError, KeyError) as exc:  # an API or /proc read that failed
        raise BenchError(f"{name}: {exc!r}") from exc
    finally:
        processes.stop(client.children)


def bench_count(count: int, processes: Processes, args: argparse.Namespace) -> dict[str, Any]:
    """One camera server with `count` mounts, then each client in turn against it."""
    results = each_client(count, processes, args, bench_client)
    return {"streams": count, "clients": results, "ratios": ratios(results, CLIENTS[1:])}


# ---- output ---------------------------------------------------------------------------------


def _frames(r: dict[str, Any]) -> str:
    if "frames_received" not in r:
        return "-"
    return f"{r['frames_received']}/{r['frames_expected']}"


COLUMNS: tuple[Column, ...] = (
    *COMMON_LEFT,
    ("kbps/str", 8, lambda n, c, r: fmt(r.get("recv_kbps_per_stream"), "{:.0f}")),
    ("fps/str", 7, lambda n, c, r: fmt(r.get("fps_per_stream"), "{:.2f}")),
    ("frames recv/exp", 15, lambda n, c, r: _frames(r)),
    ("lost", 4, lambda n, c, r: fmt(r.get("frames_lost"), "{}")),
    ("retries", 7, lambda n, c, r: fmt(r.get("retries"), "{}")),
    *COMMON_RIGHT,
)


def verdicts(runs: list[dict[str, Any]]) -> str:
    """The ratio to each peer and the target, one line per N."""
    lines = []
    for run in runs:
        ours = run["clients"].get("streamwarden", {})
        if "cpu_pct_per_stream" not in ours:
            continue
        ratio = ", ".join(f"{k} {v:.2f}x" for k, v in run["ratios"].items()) or "no peer"
        cpu_ok = ours["cpu_pct_per_stream"] <= TARGET_CPU_PER_STREAM
        frames_ok = not (ours.get("frames_lost") or ours.get("retries_in_window")
                         or ours.get("connections_replaced"))
        early = ours.get("retries", 0) - ours.get("retries_in_window", 0)
        lines.append(
            f"N={run['streams']:<3} {ratio}; "
            f"cpu/stream {ours['cpu_pct_per_stream']:.2f}% "
            f"{'<=' if cpu_ok else '>'} {TARGET_CPU_PER_STREAM}% target; "
            f"{'every frame held' if frames_ok else 'FRAMES LOST or RETRIES'}"
            + (f" in the window ({early} retry(ies) during start-up)" if early else "")
        )
    return "\n".join(lines)


def marginal_cost(runs: list[dict[str, Any]]) -> str | None:
    """CPU per added stream between the smallest and largest N.

    The intercept is not the process's idle cost: per-stream cost also falls as N grows
    (wake-ups batch on a busier CPU); the thread breakdown tells the two apart.
    """
    points = sorted(
        (r["streams"], r["clients"]["streamwarden"]["cpu_pct"]) for r in runs
        if "cpu_pct" in r["clients"].get("streamwarden", {})
    )
    if len(points) < 2 or points[0][0] == points[-1][0]:
        return None
    (n0, c0), (n1, c1) = points[0], points[-1]
    per = (c1 - c0) / (n1 - n0)
    return (f"streamwarden marginal cost {per:.2f}% of one core per added stream "
            f"(N={n0}->{n1}; straight line through both, intercept {c0 - per * n0:.2f}%)")


def peer_line(runs: list[dict[str, Any]]) -> str:
    """gst-launch against ffmpeg per N: the framework floor when streamwarden is not run."""
    lines = []
    for run in runs:
        gst = run["clients"].get("gst-launch", {}).get("cpu_pct_per_stream")
        ffmpeg = run["clients"].get("ffmpeg", {}).get("cpu_pct_per_stream")
        if gst is not None and ffmpeg:
            lines.append(f"N={run['streams']:<3} gst-launch {gst:.2f}% vs ffmpeg {ffmpeg:.2f}% "
                         f"per stream = {gst / ffmpeg:.2f}x")
    return "\n".join(lines)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any]) -> None:
    mode = ("with the default 10 s pre-event buffer (--with-preroll)" if args.with_preroll
            else 'ingest alone (buffer_duration = "0s": no pre-event buffer, no consumers)')
    if args.decode:
        mode = "not run (--decode: the peers decode every frame, one decoder thread each)"
    print(f"\ningest: {WIDTH}x{HEIGHT}@{FPS} H.264 over RTSP/TCP, {args.duration:g}s window "
          f"after {args.warmup:g}s warm-up, {os.cpu_count()} cores; every % is of one core; "
          f"other% = the rest of the host in the same window (noise)")
    print(f"streamwarden: {mode}")
    print(code_line(env) + "\n")
    print(table(runs, COLUMNS))
    print()
    print(verdicts(runs))
    for line in (peer_line(runs), marginal_cost(runs), thread_summary(runs)):
        if line:
            print(line)


# ---- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="1,4,16",
                        help="comma-separated stream counts (default 1,4,16)")
    parser.add_argument("--duration", type=float, default=20.0, help="measuring window, s")
    parser.add_argument("--warmup", type=float, default=5.0, help="after all stream, s")
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help=f"which clients, in order (default {','.join(CLIENTS)})")
    parser.add_argument("--with-preroll", action="store_true",
                        help="keep the service's default 10 s pre-event buffer per stream "
                             "(default: buffer_duration = 0s, ingest alone)")
    parser.add_argument("--decode", action="store_true",
                        help="the peers decode every frame (one thread each); streamwarden is "
                             "left out (its decoder runs only for a pixel consumer)")
    parser.add_argument("--ready-timeout", type=float, default=30.0,
                        help="for every stream of a client to flow, s")
    parser.add_argument("--camera-timeout", type=float, default=120.0,
                        help="for the camera server (the first run encodes its clip), s")
    parser.add_argument("--extra-config", type=Path, metavar="TOML",
                        help="TOML merged over the generated service config (its keys win), "
                             "e.g. a [stream_defaults] table")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temp dir with configs and per-process logs")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in comma_list(args.streams)]
    args.clients = comma_list(args.clients)
    if args.decode:
        args.clients = [c for c in args.clients if c != "streamwarden"]
    unknown = set(args.clients) - set(CLIENTS)
    if unknown or not args.counts or min(args.counts) < 1 or not args.clients:
        parser.error(f"bad --streams or --clients {sorted(unknown) or ''}")
    args.extra_config, extra = read_extra_config(parser.error, args.extra_config)
    args.service_config = merge({} if args.with_preroll else INGEST_ALONE, extra)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in missing_tools(("gst-launch-1.0", "ffmpeg", "ss")):
        print(f"ingest bench: {tool} not found (run scripts/setup.sh)", file=sys.stderr)
        return 1
    interrupt_on_signals()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = environment()  # before the run: the code state the service is started from

    def measure_all(processes: Processes) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        for count in args.counts:
            runs.append(bench_count(count, processes, args))
        return runs

    outcome = run_in_workspace("ingest bench", args.keep_logs, measure_all)
    if isinstance(outcome, int):
        return outcome
    runs = outcome
    parameters = {"width": WIDTH, "height": HEIGHT, "fps": FPS, "gop": GOP,
                  "duration_s": args.duration, "warmup_s": args.warmup,
                  "target_cpu_pct_per_stream": TARGET_CPU_PER_STREAM,
                  "with_preroll": args.with_preroll, "decode": args.decode,
                  "extra_config": args.extra_config,
                  "service_config": args.service_config}
    report(runs, args, env)
    save_results("ingest", started, parameters, env, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
